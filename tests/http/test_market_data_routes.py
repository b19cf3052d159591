"""Binance's public market data routes, called as the gateway calls them: the JSON they
return for an engine with a book and a trade tape, and the Binance errors they raise."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace
from typing import Any

import pytest

from exchange_support import NOW, SYMBOL, buy, new_engine, px, sell, trades
from http_support import AsgiClient
from sandex.exchange import Engine, MarketData, default_symbols
from sandex.exchange.marketdata import DAY_MS
from sandex.exchange.symbols import symbols_by_name
from sandex.http import Request, Security
from sandex.http.errors import error_for
from sandex.http.market_data import request_weight, routes
from sandex.service.market_feed import MarketFeed, MarketReadModel

MIN = 60_000


class Market:
    """An engine, and the read model and market data its events feed, served through the
    routes as the gateway would."""

    def __init__(self) -> None:
        self.engine: Engine = new_engine()
        self.md = MarketData(default_symbols())
        symbols = symbols_by_name(default_symbols())
        self.feed = MarketFeed(self.engine, symbols, now=NOW - DAY_MS)
        self.model = MarketReadModel(symbols, self.md)
        self.model.load(self.feed.snapshot())
        self.services = SimpleNamespace(
            exchange=SimpleNamespace(book=self.model, market_data=self.md, symbols=symbols)
        )

    def get(self, path: str, now: int = NOW, **params: str) -> Any:
        route = routes.find("GET", path)
        assert route is not None, path
        request = Request("GET", path, b"", b"", {}, "127.0.0.1", now, self.services, params)
        return route.handler(request)

    def error(self, path: str, **params: str) -> tuple[int, int, str]:
        with pytest.raises(Exception) as caught:
            self.get(path, **params)
        status, code, msg, _ = error_for(caught.value)
        return status, code, msg

    def submit(self, *orders: Any, now: int = NOW) -> None:
        for order in orders:
            for trade in trades(self.engine.submit(order, now)):
                self.feed.record(SYMBOL, trade)
            for event in self.feed.take():
                self.model.apply(event)


@pytest.fixture
def market() -> Market:
    m = Market()
    m.submit(
        sell("0.5", "60010.00", account=1),
        sell("0.2", "60020.00", account=1),
        sell("0.3", "60010.00", account=3),
        buy("1.0", "59990.00", account=1),
        buy("0.25", "59980.00", account=3),
        now=NOW - HOUR_AGO,
    )
    m.submit(buy("0.6", "60010.00", account=2), now=NOW - 2 * MIN)  # takes 0.5 + 0.1
    m.submit(sell("0.4", "59990.00", account=2), now=NOW - MIN)
    return m


HOUR_AGO = 3600_000


def test_every_route_is_public() -> None:
    assert {path for _, path in routes.routes} == {
        "/api/v3/exchangeInfo", "/api/v3/depth", "/api/v3/trades", "/api/v3/historicalTrades",
        "/api/v3/aggTrades", "/api/v3/klines", "/api/v3/uiKlines", "/api/v3/avgPrice", "/api/v3/ticker/24hr",
        "/api/v3/ticker/price", "/api/v3/ticker/bookTicker",
    }  # fmt: skip
    assert all(r.security is Security.NONE for r in routes.routes.values())


# -- exchangeInfo -----------------------------------------------------------------------


def test_exchange_info_lists_every_symbol_with_its_filters(market: Market) -> None:
    body = market.get("/api/v3/exchangeInfo")
    assert list(body) == ["timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"]
    assert body["timezone"] == "UTC" and body["serverTime"] == NOW
    assert body["exchangeFilters"] == []
    assert {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
            "limit": 6000} in body["rateLimits"]  # fmt: skip
    assert [s["symbol"] for s in body["symbols"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "ETHBTC"]
    btc = body["symbols"][0]
    assert (btc["baseAsset"], btc["quoteAsset"], btc["status"]) == ("BTC", "USDT", "TRADING")
    price_filter = next(f for f in btc["filters"] if f["filterType"] == "PRICE_FILTER")
    assert price_filter["tickSize"] == "0.01000000"


def test_exchange_info_filters_by_symbol_or_symbols(market: Market) -> None:
    one = market.get("/api/v3/exchangeInfo", symbol="ETHBTC")
    assert [s["symbol"] for s in one["symbols"]] == ["ETHBTC"]
    two = market.get("/api/v3/exchangeInfo", symbols='["SOLUSDT","BTCUSDT"]')
    assert [s["symbol"] for s in two["symbols"]] == ["SOLUSDT", "BTCUSDT"]
    assert market.error("/api/v3/exchangeInfo", symbol="DOGEUSDT") == (
        400,
        -1121,
        "Invalid symbol.",
    )


# -- symbols=[...] ----------------------------------------------------------------------


SYMBOLS_RANGE = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("BTCUSDT", -1100),  # not a JSON array
        ('["BTCUSDT"', -1100),  # broken JSON
        ('{"a":"BTCUSDT"}', -1100),
        ('["btcusdt"]', -1100),  # names are upper case
        ("[1]", -1100),
        ("[]", -1102),
        ("", -1102),
    ],
)
def test_a_malformed_symbols_list_is_refused_as_binance_does(
    market: Market, value: str, code: int
) -> None:
    status, got, msg = market.error("/api/v3/ticker/price", symbols=value)
    assert (status, got) == (400, code)
    if code == -1100:
        assert msg == (
            f"Illegal characters found in parameter 'symbols'; legal range is '{SYMBOLS_RANGE}'."
        )
    else:
        assert msg.startswith("Mandatory parameter 'symbols'")


def test_symbols_list_accepts_json_spacing_and_refuses_unknown_names(market: Market) -> None:
    body = market.get("/api/v3/ticker/price", symbols='["ETHBTC", "BTCUSDT"]')
    assert [t["symbol"] for t in body] == ["ETHBTC", "BTCUSDT"]
    error = market.error("/api/v3/ticker/price", symbols='["BTCUSDT","DOGEUSDT"]')
    assert error == (400, -1121, "Invalid symbol.")
    assert market.error("/api/v3/ticker/price", symbol="BTCUSDT", symbols='["BTCUSDT"]')[1] == -1128


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, (-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")),
        ({"symbol": ""}, (-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")),
        ({"symbol": "btcusdt"}, (-1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.")),
        ({"symbol": "DOGEUSDT"}, (-1121, "Invalid symbol.")),
    ],
)  # fmt: skip
@pytest.mark.parametrize(
    "path",
    ["/api/v3/depth", "/api/v3/trades", "/api/v3/aggTrades", "/api/v3/avgPrice", "/api/v3/klines"],
)
def test_a_missing_or_invalid_symbol_is_a_400_with_binance_codes(
    market: Market, path: str, params: dict[str, str], error: tuple[int, str]
) -> None:
    assert market.error(path, interval="1m", **params) == (400, *error)


# -- depth ------------------------------------------------------------------------------


def test_depth_shows_the_book_as_strings_best_first(market: Market) -> None:
    body = market.get("/api/v3/depth", symbol=SYMBOL)
    assert body["lastUpdateId"] == market.model.update_id(SYMBOL)
    start = (NOW - DAY_MS) * 1000
    assert body["lastUpdateId"] == start + 7  # one update per order that moved the book
    assert body["asks"] == [["60010.00000000", "0.20000000"], ["60020.00000000", "0.20000000"]]
    assert body["bids"] == [["59990.00000000", "0.60000000"], ["59980.00000000", "0.25000000"]]
    top = market.get("/api/v3/depth", symbol=SYMBOL, limit="1")
    assert top["asks"] == [["60010.00000000", "0.20000000"]] and len(top["bids"]) == 1


@pytest.mark.parametrize(
    ("limit", "code"), [("0", -1130), ("-5", -1100), ("ten", -1100), ("1.5", -1100), ("", -1105)]
)
def test_depth_limit_is_validated(market: Market, limit: str, code: int) -> None:
    assert market.error("/api/v3/depth", symbol=SYMBOL, limit=limit)[:2] == (400, code)


def test_depth_limit_above_5000_is_cut_to_5000(market: Market) -> None:
    assert len(market.get("/api/v3/depth", symbol=SYMBOL, limit="100000")["bids"]) == 2


def test_variable_weights_follow_binance() -> None:
    assert [request_weight("/api/v3/depth", {"limit": n}) for n in ("5", "100", "101", "500",
            "1000", "5000", "9999")] == [5, 5, 25, 25, 50, 250, 250]  # fmt: skip
    assert request_weight("/api/v3/depth", {}) == 5
    assert request_weight("/api/v3/ticker/24hr", {"symbol": SYMBOL}) == 2
    assert request_weight("/api/v3/ticker/24hr", {}) == 80
    many = json.dumps([f"S{i}" for i in range(21)])
    assert request_weight("/api/v3/ticker/24hr", {"symbols": many}) == 40
    assert request_weight("/api/v3/ticker/price", {}) == 4
    assert request_weight("/api/v3/ticker/bookTicker", {"symbol": SYMBOL}) == 2
    assert request_weight("/api/v3/klines", {}) is None
    assert routes.routes[("GET", "/api/v3/exchangeInfo")].weight == 20
    assert routes.routes[("GET", "/api/v3/trades")].weight == 25


# -- trades -----------------------------------------------------------------------------


def test_recent_and_historical_trades(market: Market) -> None:
    body = market.get("/api/v3/trades", symbol=SYMBOL)
    assert [t["id"] for t in body] == [1, 2, 3]
    assert body[0] == {
        "id": 1,
        "price": "60010.00000000",
        "qty": "0.50000000",
        "quoteQty": "30005.00000000",
        "time": NOW - 2 * MIN,
        "isBuyerMaker": False,
        "isBestMatch": True,
    }
    assert body[2]["isBuyerMaker"] is True and body[2]["price"] == "59990.00000000"
    assert [t["id"] for t in market.get("/api/v3/trades", symbol=SYMBOL, limit="1")] == [3]
    older = market.get("/api/v3/historicalTrades", symbol=SYMBOL, fromId="2", limit="1")
    assert [t["id"] for t in older] == [2]
    assert market.error("/api/v3/historicalTrades", symbol=SYMBOL, fromId="x")[1] == -1100


def test_agg_trades_join_one_takers_fills_at_one_price(market: Market) -> None:
    body = market.get("/api/v3/aggTrades", symbol=SYMBOL)
    assert body[0] == {
        "a": 1,
        "p": "60010.00000000",
        "q": "0.60000000",  # 0.5 from one maker, 0.1 from another
        "f": 1,
        "l": 2,
        "T": NOW - 2 * MIN,
        "m": False,
        "M": True,
    }
    assert [(a["a"], a["f"], a["l"], a["m"]) for a in body] == [(1, 1, 2, False), (2, 3, 3, True)]
    start = str(NOW - MIN)
    assert [a["a"] for a in market.get("/api/v3/aggTrades", symbol=SYMBOL, startTime=start)] == [2]
    assert [a["a"] for a in market.get("/api/v3/aggTrades", symbol=SYMBOL, fromId="2")] == [2]


def test_agg_trades_window_is_at_most_an_hour(market: Market) -> None:
    hour = {"startTime": str(NOW - 3600_000), "endTime": str(NOW)}
    assert len(market.get("/api/v3/aggTrades", symbol=SYMBOL, **hour)) == 2  # ccxt sends 1h
    too_long = {"startTime": str(NOW - 3600_001), "endTime": str(NOW)}
    assert market.error("/api/v3/aggTrades", symbol=SYMBOL, **too_long) == (
        400, -1127, "More than 1 hours between startTime and endTime.",
    )  # fmt: skip
    backwards = {"startTime": str(NOW), "endTime": str(NOW - 1)}
    assert market.error("/api/v3/aggTrades", symbol=SYMBOL, **backwards)[1] == -1023


# -- klines -----------------------------------------------------------------------------


def test_klines_rows_are_binance_rows(market: Market) -> None:
    rows = market.get("/api/v3/klines", symbol=SYMBOL, interval="1m", limit="3")
    assert [r[0] for r in rows] == [NOW - 2 * MIN, NOW - MIN, NOW]
    assert rows[0] == [
        NOW - 2 * MIN,
        "60010.00000000",
        "60010.00000000",
        "60010.00000000",
        "60010.00000000",
        "0.60000000",
        NOW - MIN - 1,
        "36006.00000000",
        2,
        "0.60000000",
        "36006.00000000",
        "0",
    ]
    assert rows[1][4] == "59990.00000000" and rows[1][9] == "0.00000000"  # a seller took
    assert rows[2][1:6] == ["59990.00000000"] * 4 + ["0.00000000"]  # quiet: flat at the close


def test_klines_start_end_and_limit(market: Market) -> None:
    market.md.backfill(SYMBOL, NOW - HOUR_AGO, px("60000"), seed=5)
    rows = market.get("/api/v3/klines", symbol=SYMBOL, interval="1h")
    assert len(rows) == 500 and rows[-1][0] == NOW  # default limit, newest last
    assert len(market.get("/api/v3/klines", symbol=SYMBOL, interval="1h", limit="5000")) == 1000
    start = NOW - 10 * 3600_000
    rows = market.get(
        "/api/v3/klines", symbol=SYMBOL, interval="1h", startTime=str(start), limit="2"
    )
    assert [r[0] for r in rows] == [start, start + 3600_000]
    rows = market.get("/api/v3/klines", symbol=SYMBOL, interval="1d", endTime=str(NOW - DAY_MS))
    assert rows[-1][0] <= NOW - DAY_MS < rows[-1][6]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, (-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")),
        ({"interval": "2m"}, (-1120, "Invalid interval.")),
        ({"interval": "1H"}, (-1120, "Invalid interval.")),
        ({"interval": "1m", "startTime": "soon"}, (-1100, "Illegal characters found in parameter 'startTime'; legal range is '^[0-9]{1,20}$'.")),
        ({"interval": "1m", "startTime": "2", "endTime": "1"}, (-1023, "Start time is greater than end time.")),
        ({"interval": "1m", "limit": "0"}, (-1130, "Data sent for parameter 'limit' is not valid.")),
    ],
)  # fmt: skip
def test_klines_refuse_bad_intervals_and_times(
    market: Market, params: dict[str, str], error: tuple[int, str]
) -> None:
    assert market.error("/api/v3/klines", symbol=SYMBOL, **params) == (400, *error)


def test_klines_time_zone_aligns_the_windows_and_keeps_times_in_utc(market: Market) -> None:
    market.md.backfill(SYMBOL, NOW - HOUR_AGO, px("60000"), seed=5)
    utc = market.get("/api/v3/klines", symbol=SYMBOL, interval="1d", limit="3")
    east = market.get("/api/v3/klines", symbol=SYMBOL, interval="1d", limit="3", timeZone="8")
    assert [r[0] for r in east] == [r[0] - 8 * 3600_000 for r in utc]  # days from 16:00 UTC
    assert all(r[6] == r[0] + DAY_MS - 1 for r in east)
    india = market.get("/api/v3/klines", symbol=SYMBOL, interval="1h", limit="2", timeZone="05:30")
    assert india[-1][0] % 3600_000 == 30 * MIN and india[-1][0] <= NOW <= india[-1][6]
    west = market.get("/api/v3/klines", symbol=SYMBOL, interval="1d", limit="1", timeZone="-1:00")
    assert west[0][0] % DAY_MS == 3600_000
    # startTime and endTime stay UTC: the +8 day that opens at 16:00 UTC
    start = utc[-2][0] - 8 * 3600_000
    rows = market.get(
        "/api/v3/klines", symbol=SYMBOL, interval="1d", startTime=str(start), timeZone="+8:00"
    )
    assert rows[0][0] == start
    minutes = market.get(
        "/api/v3/klines", symbol=SYMBOL, interval="1m", startTime=str(start), limit="1000"
    )
    assert rows[0][1] == minutes[0][1]  # the +8 day opens with its first minute


@pytest.mark.parametrize("zone", ["abc", "8h", "15", "-13", "14:01", "-12:30", "05:60", "+"])
def test_klines_refuse_a_time_zone_out_of_range(market: Market, zone: str) -> None:
    for path in ("/api/v3/klines", "/api/v3/uiKlines"):
        assert market.error(path, symbol=SYMBOL, interval="1d", timeZone=zone) == (
            400, -1130, "Data sent for parameter 'timeZone' is not valid.",
        )  # fmt: skip


def test_klines_refuse_an_empty_time_zone(market: Market) -> None:
    assert market.error("/api/v3/klines", symbol=SYMBOL, interval="1d", timeZone="") == (
        400, -1105, "Parameter 'timeZone' was empty.",
    )  # fmt: skip


@pytest.mark.parametrize("zone", ["14", "-12", "+14:00", "-12:00", "0", "05:45"])
def test_klines_accept_every_time_zone_in_range(market: Market, zone: str) -> None:
    assert len(market.get("/api/v3/klines", symbol=SYMBOL, interval="1w", timeZone=zone)) == 1


def test_ui_klines_answer_as_klines_do(market: Market) -> None:
    market.md.backfill(SYMBOL, NOW - HOUR_AGO, px("60000"), seed=5)
    for params in (
        {"interval": "1m", "limit": "3"},
        {"interval": "4h", "startTime": str(NOW - 3 * DAY_MS), "limit": "7"},
        {"interval": "1d", "timeZone": "8", "endTime": str(NOW - DAY_MS)},
    ):
        ui = market.get("/api/v3/uiKlines", symbol=SYMBOL, **params)
        assert ui == market.get("/api/v3/klines", symbol=SYMBOL, **params) and ui
    assert market.error("/api/v3/uiKlines", symbol=SYMBOL, interval="2m")[1] == -1120
    route = routes.find("GET", "/api/v3/uiKlines")
    assert route is not None and route.security is Security.NONE and route.weight == 2


# -- prices and tickers -----------------------------------------------------------------


def test_avg_price_is_the_engines_average(market: Market) -> None:
    body = market.get("/api/v3/avgPrice", symbol=SYMBOL)  # (60010 * 0.6 + 59990 * 0.4) / 1
    assert body == {"mins": 5, "price": "60002.00000000", "closeTime": NOW - MIN}
    assert market.get("/api/v3/avgPrice", symbol="ETHUSDT")["price"] == "0.00000000"


def test_ticker_24hr_full(market: Market) -> None:
    expected = {
        "symbol": "BTCUSDT",
        "priceChange": "-20.00000000",
        "priceChangePercent": "-0.033",
        "weightedAvgPrice": "60002.00000000",
        "prevClosePrice": "0.00000000",
        "lastPrice": "59990.00000000",
        "lastQty": "0.40000000",
        "bidPrice": "59990.00000000",
        "bidQty": "0.60000000",
        "askPrice": "60010.00000000",
        "askQty": "0.20000000",
        "openPrice": "60010.00000000",
        "highPrice": "60010.00000000",
        "lowPrice": "59990.00000000",
        "volume": "1.00000000",
        "quoteVolume": "60002.00000000",
        "openTime": NOW - DAY_MS,
        "closeTime": NOW,
        "firstId": 1,
        "lastId": 3,
        "count": 3,
    }
    body = market.get("/api/v3/ticker/24hr", symbol=SYMBOL)
    assert body == expected
    assert list(body) == list(expected)  # in Binance's order


def test_ticker_24hr_mini_several_and_all(market: Market) -> None:
    mini = market.get("/api/v3/ticker/24hr", symbol=SYMBOL, type="MINI")
    assert list(mini) == [
        "symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume",
        "openTime", "closeTime", "firstId", "lastId", "count",
    ]  # fmt: skip
    several = market.get("/api/v3/ticker/24hr", symbols='["ETHBTC","BTCUSDT"]')
    assert [t["symbol"] for t in several] == ["ETHBTC", "BTCUSDT"]
    every = market.get("/api/v3/ticker/24hr")
    assert [t["symbol"] for t in every] == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "ETHBTC"]
    idle = every[1]
    assert (idle["lastPrice"], idle["bidPrice"], idle["count"], idle["firstId"]) == (
        "0.00000000", "0.00000000", 0, -1,
    )  # fmt: skip
    assert market.error("/api/v3/ticker/24hr", type="FAST") == (400, -1139, "Invalid ticker type.")


def test_ticker_24hr_of_a_backfilled_symbol_has_sensible_values() -> None:
    m = Market()
    m.md.backfill("ETHUSDT", NOW, 300_000, seed=2)
    t = m.get("/api/v3/ticker/24hr", symbol="ETHUSDT")
    assert t["lastPrice"] == "3000.00000000"
    assert float(t["volume"]) > 0 and float(t["openPrice"]) > 0 and float(t["prevClosePrice"]) > 0
    assert float(t["lowPrice"]) <= float(t["weightedAvgPrice"]) <= float(t["highPrice"])
    assert m.get("/api/v3/ticker/price", symbol="ETHUSDT")["price"] == "3000.00000000"


def test_price_and_book_tickers(market: Market) -> None:
    assert market.get("/api/v3/ticker/price", symbol=SYMBOL) == {
        "symbol": "BTCUSDT",
        "price": "59990.00000000",
    }
    assert len(market.get("/api/v3/ticker/price")) == 4
    assert market.get("/api/v3/ticker/bookTicker", symbol=SYMBOL) == {
        "symbol": "BTCUSDT",
        "bidPrice": "59990.00000000",
        "bidQty": "0.60000000",
        "askPrice": "60010.00000000",
        "askQty": "0.20000000",
    }
    books = market.get("/api/v3/ticker/bookTicker", symbols='["BTCUSDT","ETHBTC"]')
    assert [b["symbol"] for b in books] == ["BTCUSDT", "ETHBTC"]
    assert books[1]["askPrice"] == "0.00000000"


def test_the_gateway_charges_a_public_request_its_parameter_dependent_weight(
    make_gateway: Any,
) -> None:
    _, gateway = make_gateway()
    client = AsgiClient(gateway)
    used = [
        int(client.get(path).headers["x-mbx-used-weight-1m"])
        for path in (
            "/api/v3/ping",
            "/api/v3/depth?symbol=BTCUSDT&limit=1000",  # 50, as Binance
            "/api/v3/ticker/24hr",  # every symbol: 80
            "/api/v3/ticker/price?symbol=BTCUSDT",  # 2
        )
    ]
    assert [b - a for a, b in itertools.pairwise(used)] == [50, 80, 2]

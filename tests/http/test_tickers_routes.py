"""``GET /api/v3/ticker`` (rolling window) and ``/api/v3/ticker/tradingDay`` (issue 10,
finding 5: both answered 404)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from test_market_data_routes import Market

from exchange_support import NOW, buy, sell
from http_support import AsgiClient
from sandex.bootstrap import Sandex
from sandex.http import Gateway, Request
from sandex.http.errors import error_for
from sandex.http.tickers import routes, tickers_weight

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
FULL = [
    "symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "openPrice",
    "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume", "openTime", "closeTime",
    "firstId", "lastId", "count",
]  # fmt: skip
MINI = ["symbol", *FULL[4:]]


@pytest.fixture
def market() -> Market:
    m = Market()
    m.submit(sell("0.4", "60000.00", account=1), now=NOW - 3 * HOUR)
    m.submit(buy("0.4", "60000.00", account=2), now=NOW - 3 * HOUR)  # trade 1
    m.submit(sell("0.5", "61000.00", account=1), now=NOW - 30 * MIN)
    m.submit(buy("0.5", "61000.00", account=2), now=NOW - 30 * MIN)  # trade 2
    return m


def _get(market: Market, path: str, **params: str) -> Any:
    """Call a route of this module as the gateway would."""
    route = routes.find("GET", path)
    assert route is not None
    request = Request("GET", path, b"", b"", {}, "127.0.0.1", NOW, market.services, params)
    return route.handler(request)


def test_rolling_window_sees_only_its_window(market: Market) -> None:
    hour = _get(market, "/api/v3/ticker", symbol="BTCUSDT", windowSize="1h")
    assert list(hour) == FULL
    assert hour["count"] == 1 and hour["firstId"] == hour["lastId"] == 2
    assert hour["openPrice"] == hour["lastPrice"] == "61000.00000000"
    assert hour["volume"] == "0.50000000" and hour["priceChange"] == "0.00000000"
    assert hour["openTime"] == (NOW - HOUR) // MIN * MIN and hour["closeTime"] == NOW
    day = _get(market, "/api/v3/ticker", symbol="BTCUSDT")  # default 1d
    assert (day["count"], day["firstId"], day["lastId"]) == (2, 1, 2)
    assert day["openPrice"] == "60000.00000000" and day["lastPrice"] == "61000.00000000"
    assert day["priceChangePercent"] == "1.667" and day["volume"] == "0.90000000"
    assert day["weightedAvgPrice"] == "60555.55555556"
    mini = _get(market, "/api/v3/ticker", symbols='["BTCUSDT","ETHUSDT"]', type="MINI")
    assert [list(t) for t in mini] == [MINI, MINI]
    assert mini[1]["count"] == 0 and mini[1]["firstId"] == -1


def test_trading_day_opens_at_midnight_in_its_time_zone(market: Market) -> None:
    midnight = NOW // DAY * DAY
    assert NOW - midnight > 3 * HOUR  # both trades are on today's UTC date
    utc = _get(market, "/api/v3/ticker/tradingDay", symbol="BTCUSDT")
    assert list(utc) == FULL
    assert (utc["openTime"], utc["closeTime"]) == (midnight, midnight + DAY - 1)
    assert utc["count"] == 2
    east = _get(market, "/api/v3/ticker/tradingDay", symbol="BTCUSDT", timeZone="14:00")
    assert east["openTime"] == (NOW + 14 * HOUR) // DAY * DAY - 14 * HOUR
    mini = _get(market, "/api/v3/ticker/tradingDay", symbols='["BTCUSDT"]', type="MINI")
    assert [list(t) for t in mini] == [MINI]


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/api/v3/ticker", {}, -1102),
        ("/api/v3/ticker", {"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'}, -1128),
        ("/api/v3/ticker", {"symbol": "NOPE"}, -1121),
        ("/api/v3/ticker", {"symbol": "btc usdt"}, -1100),
        ("/api/v3/ticker", {"symbols": "BTCUSDT"}, -1100),
        ("/api/v3/ticker", {"symbols": "[]"}, -1102),
        ("/api/v3/ticker", {"symbols": '["BTCUSDT"]' * 2}, -1100),
        ("/api/v3/ticker", {"symbols": str([f"S{i}" for i in range(101)]).replace("'", '"')}, -1101),
        ("/api/v3/ticker", {"symbol": "BTCUSDT", "windowSize": "8d"}, -1130),
        ("/api/v3/ticker", {"symbol": "BTCUSDT", "windowSize": "1d2h"}, -1130),
        ("/api/v3/ticker", {"symbol": "BTCUSDT", "type": "HALF"}, -1139),
        ("/api/v3/ticker/tradingDay", {"symbol": "BTCUSDT", "timeZone": "UTC"}, -1130),
        ("/api/v3/ticker/tradingDay", {"symbol": "BTCUSDT", "timeZone": "15"}, -1130),
        ("/api/v3/ticker/tradingDay", {}, -1102),
    ],
)  # fmt: skip
def test_bad_parameters_are_binance_errors(
    market: Market, path: str, params: dict[str, str], code: int
) -> None:
    with pytest.raises(Exception) as caught:
        _get(market, path, **params)
    status, got, _, _ = error_for(caught.value)
    assert (status, got) == (400, code)


def test_weight_is_four_per_symbol_capped_at_200() -> None:
    many = '["' + '","'.join(f"S{i}" for i in range(60)) + '"]'
    assert tickers_weight({"symbol": "BTCUSDT"}) == 4
    assert tickers_weight({"symbols": '["BTCUSDT","ETHUSDT"]'}) == 8
    assert tickers_weight({"symbols": many}) == 200


def test_both_routes_are_served_by_the_gateway(
    make_gateway: Callable[..., tuple[Sandex, Gateway]],
) -> None:
    _, gateway = make_gateway(simulate=False)
    client = AsgiClient(gateway)
    for path in ("/api/v3/ticker", "/api/v3/ticker/tradingDay"):
        r = client.get(path, params={"symbols": '["BTCUSDT","ETHUSDT"]'})
        assert r.status_code == 200, r.text
        assert [t["symbol"] for t in r.json()] == ["BTCUSDT", "ETHUSDT"]
    r = client.get("/api/v3/ticker", params={"symbol": "BTCUSDT", "windowSize": "7d"})
    assert r.status_code == 200 and list(r.json()) == FULL

"""The routes and rate-limit details bots hit, driven by unmodified ccxt and python-binance
on a real ``sandex serve`` (issue 10, findings 4 and 5).

One server (SQLite) serves the module, with an order limit of 3 per 10 seconds so that
a bot reaches it in a few orders. Each test trades as a user of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from e2e.clients import (
    BinanceAPIException,
    binance_client,
    new_key,
    spot_ccxt_client,
    wait_for_balance,
)
from e2e.conftest import Server, running, server_env
from sandex.bootstrap import Sandex
from sandex.keys import Permission

TRADE = Permission.READ | Permission.SPOT_TRADE
ORDERS_10S = 3

pytestmark = pytest.mark.usefixtures("server_alive")


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The module's server, with a small order-rate limit."""
    tmp = tmp_path_factory.mktemp("sandex-e2e-bot-routes")
    env = server_env(SANDEX_ORDERS_10S=str(ORDERS_10S))
    with running(tmp / "data", tmp / "server.log", env=env) as server:
        yield server


def _ccxt(operator: Sandex, base: str, name: str) -> ccxt.binance:
    creds = new_key(operator, f"e2e-bot-{name}@example.com", label=name, permissions=TRADE)
    ex = spot_ccxt_client(base, creds)
    ex.load_markets()
    wait_for_balance(ex, "USDT", Decimal(10_000))
    return ex


def _python_binance(operator: Sandex, base: str, name: str) -> Any:
    creds = new_key(operator, f"e2e-bot-{name}@example.com", label=name, permissions=TRADE)
    client = binance_client(base, creds)
    deadline = time.monotonic() + 5.0
    while (client.get_asset_balance("USDT") or {}).get("free") != "10000.00000000":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return client


def _low_bid(bid: float) -> str:
    return str((Decimal(str(bid)) * Decimal("0.8")).quantize(Decimal("0.01")))


def _email(name: str) -> str:
    return f"e2e-bot-{name}@example.com"


def _self_trade(client: Any, cli: Callable[..., None], email: str) -> tuple[Any, Any]:
    """A bid inside the makers' spread and the same account's sell at its price with
    EXPIRE_TAKER: the sell expires in match (a prevented match). The simulated market
    may move between the two orders (the sell then trades with a maker): try again after
    the order-rate window."""
    cli("balances", "credit", email, "BTC", "0.01")
    deadline = time.monotonic() + 5.0
    while Decimal((client.get_asset_balance("BTC") or {}).get("free") or "0") < Decimal("0.01"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for attempt in range(3):
        if attempt:
            time.sleep(10)  # ORDERS_10S: two orders an attempt
        book = client.get_order_book(symbol="BTCUSDT", limit=5)
        bid, ask = Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])
        price = ((bid + ask) / 2).quantize(Decimal("0.01"))
        if not bid < price < ask:
            continue
        order = {"symbol": "BTCUSDT", "type": "LIMIT", "price": str(price)}
        maker = client.create_order(
            side="BUY", timeInForce="GTC", quantity="0.002", newOrderRespType="FULL", **order
        )
        taker = client.create_order(
            side="SELL",
            timeInForce="IOC",
            quantity="0.001",
            selfTradePreventionMode="EXPIRE_TAKER",
            newOrderRespType="FULL",
            **order,
        )
        client.cancel_order(symbol="BTCUSDT", orderId=maker["orderId"])
        if taker["status"] == "EXPIRED_IN_MATCH":
            return maker, taker
    raise AssertionError("the simulated market kept moving between the two orders")


def _usage_headers_once(raw: Any) -> None:
    """Each X-MBX header once, and an int: ``int(headers[...])`` must not crash."""
    names = [name.lower() for name in raw]
    usage = [n for n in names if n.startswith("x-mbx-")]
    assert usage and len(usage) == len(set(usage)), list(raw.items())
    for name in usage:
        int(raw[name])


# -- finding 4: the order-rate limit ---------------------------------------------------------


def test_python_binance_gets_too_many_orders_with_each_header_once(
    base: str, operator: Sandex
) -> None:
    client = _python_binance(operator, base, "pb-limit")
    price = _low_bid(float(client.get_order_book(symbol="BTCUSDT", limit=5)["bids"][0][0]))
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    for _ in range(ORDERS_10S):
        client.create_order(**order, quantity="0.001", price=price)
    with pytest.raises(BinanceAPIException) as caught:
        client.create_order(**order, quantity="0.001", price=price)
    exc = caught.value
    assert (exc.status_code, exc.code) == (429, -1015)
    assert exc.message == (
        f"Too many new orders; current limit is {ORDERS_10S} orders per 10 SECOND."
    )
    headers = exc.response.headers
    _usage_headers_once(exc.response.raw.headers)
    assert int(headers["x-mbx-order-count-10s"]) == ORDERS_10S + 1
    assert int(headers["retry-after"]) >= 1
    counts = client.get_current_order_count()
    assert [(c["interval"], c["limit"]) for c in counts] == [
        ("SECOND", ORDERS_10S),
        ("DAY", 200_000),
    ]
    assert counts[1]["count"] == ORDERS_10S + 1


def test_ccxt_sees_the_order_limit_as_binance_s(base: str, operator: Sandex) -> None:
    ex = _ccxt(operator, base, "ccxt-limit")
    bid = ex.fetch_order_book("BTC/USDT", 5)["bids"][0][0]
    price = float(_low_bid(bid))
    for _ in range(ORDERS_10S):
        ex.create_limit_buy_order("BTC/USDT", 0.001, price)
    with pytest.raises(ccxt.BaseError) as caught:
        ex.create_limit_buy_order("BTC/USDT", 0.001, price)
    # ccxt's binance raises DDoSProtection for any 429 before it reads the code (-1015
    # is RateLimitExceeded in its table, reached only on another status)
    assert type(caught.value) is ccxt.DDoSProtection
    assert '"code":-1015' in str(caught.value)
    assert "current limit is 3 orders per 10 SECOND" in str(caught.value)
    _usage_headers_once(ex.last_response_headers)


# -- finding 5: the routes -----------------------------------------------------------------------


def test_ccxt_reads_commission_order_count_status_and_window_tickers(
    base: str, operator: Sandex
) -> None:
    ex = _ccxt(operator, base, "ccxt-routes")
    fees = ex.private_get_account_commission({"symbol": "BTCUSDT"})
    assert fees["symbol"] == "BTCUSDT"
    assert Decimal(fees["standardCommission"]["taker"]) == Decimal("0.001")
    counts = ex.private_get_ratelimit_order()
    assert [c["count"] for c in counts] == [0, 0]
    assert ex.sapi_get_account_status() == {"data": "Normal"}
    placed = ex.create_limit_buy_order(
        "BTC/USDT", 0.001, float(_low_bid(ex.fetch_order_book("BTC/USDT", 5)["bids"][0][0]))
    )
    assert ex.private_get_mypreventedmatches({"symbol": "BTCUSDT", "orderId": placed["id"]}) == []
    rolling = ex.fetch_ticker("BTC/USDT", {"rolling": True})
    assert rolling["last"] > 0 and rolling["info"]["closeTime"] > rolling["info"]["openTime"]
    several = ex.fetch_tickers(["BTC/USDT", "ETH/USDT"], {"rolling": True})
    assert set(several) == {"BTC/USDT", "ETH/USDT"}
    day = ex.public_get_ticker_tradingday({"symbol": "BTCUSDT", "timeZone": "8"})
    assert int(day["closeTime"]) - int(day["openTime"]) == 86_400_000 - 1


def test_python_binance_reads_status_commission_and_tickers(
    base: str, operator: Sandex, cli: Callable[..., None]
) -> None:
    client = _python_binance(operator, base, "pb-routes")
    assert client.get_account_status() == {"data": "Normal"}
    assert client.get_account_api_trading_status()["data"]["isLocked"] is False
    fees = client.v3_get_account_commission(symbol="ETHBTC")
    assert fees["symbol"] == "ETHBTC" and "specialCommission" in fees
    assert client.get_prevented_matches(symbol="BTCUSDT", preventedMatchId=1) == []
    maker, taker = _self_trade(client, cli, _email("pb-routes"))
    [match] = client.get_prevented_matches(symbol="BTCUSDT", orderId=taker["orderId"])
    assert match["takerOrderId"] == taker["orderId"]
    assert match["makerOrderId"] == maker["orderId"]
    assert taker["preventedMatchId"] == match["preventedMatchId"]
    assert taker["preventedQuantity"] == match["takerPreventedQuantity"] == "0.00100000"
    assert match["selfTradePreventionMode"] == "EXPIRE_TAKER"
    assert Decimal(match["price"]) == Decimal(maker["price"])
    again = client.get_prevented_matches(
        symbol="BTCUSDT", preventedMatchId=match["preventedMatchId"]
    )
    assert again == [match]
    day = client.v3_get_ticker_trading_day(symbol="BTCUSDT", type="MINI")
    assert day["symbol"] == "BTCUSDT" and "priceChange" not in day


def test_a_futures_call_says_sandex_does_not_offer_futures(base: str, operator: Sandex) -> None:
    ex = _ccxt(operator, base, "ccxt-futures")
    with pytest.raises(ccxt.BadRequest) as caught:
        ex.fapiprivatev2_get_account()
    assert "Sandex does not offer USDⓈ-M futures yet (/fapi)" in str(caught.value)

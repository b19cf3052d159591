"""Unmodified python-binance trades spot on a real ``sandex serve``.

One server (SQLite) serves the module. The Client is built as reference §8 says
(``ping=False``, the spot and sapi URLs moved to the server): it signs its parameters
sorted and unencoded, and sends a DELETE's parameters in a form body. Each test trades
as a user of its own, who starts with 10,000 USDT.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from e2e.clients import BinanceAPIException, binance_client, new_key
from sandex.bootstrap import Sandex
from sandex.keys import Permission

TRADE = Permission.READ | Permission.SPOT_TRADE
SYMBOL = "BTCUSDT"
START_USDT = Decimal(10_000)
FEE_RATE = Decimal("0.001")
ZERO = Decimal(0)


pytestmark = pytest.mark.usefixtures("server_alive")


def _client(operator: Sandex, base: str, name: str) -> Any:
    """A new user's trading key in a python-binance Client, once the 10,000 USDT are in."""
    creds = new_key(operator, f"e2e-spot-pb-{name}@example.com", label=name, permissions=TRADE)
    client = binance_client(base, creds)
    deadline = time.monotonic() + 5.0
    while (client.get_asset_balance("USDT") or {}).get("free") != "10000.00000000":
        assert time.monotonic() < deadline, client.get_account()["balances"]
        time.sleep(0.1)
    return client


def _balances(client: Any) -> dict[str, tuple[Decimal, Decimal]]:
    out = {}
    for row in client.get_account()["balances"]:
        free, locked = Decimal(row["free"]), Decimal(row["locked"])
        if free or locked:
            out[row["asset"]] = (free, locked)
    return out


def _limit_price(client: Any) -> str:
    """A buy price 10% under the best bid, on the 0.01 tick."""
    bid = Decimal(client.get_order_book(symbol=SYMBOL, limit=5)["bids"][0][0])
    return str((bid * Decimal("0.9")).quantize(Decimal("0.01")))


def _error(call: Any) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as info:
        call()
    assert info.value.status_code == 400, info.value.status_code
    return info.value


def test_symbol_info_and_account(base: str, operator: Sandex) -> None:
    client = _client(operator, base, "info")
    info = client.get_symbol_info(SYMBOL)
    assert info is not None
    assert (info["symbol"], info["baseAsset"], info["quoteAsset"], info["status"]) == (
        SYMBOL,
        "BTC",
        "USDT",
        "TRADING",
    )
    filters = {f["filterType"]: f for f in info["filters"]}
    assert Decimal(filters["PRICE_FILTER"]["tickSize"]) == Decimal("0.01")
    assert Decimal(filters["LOT_SIZE"]["stepSize"]) == Decimal("0.00001")
    assert client.get_symbol_info("NOSUCHUSDT") is None

    account = client.get_account()
    assert account["canTrade"] is True and account["accountType"] == "SPOT"
    assert _balances(client) == {"USDT": (START_USDT, ZERO)}
    assert client.get_asset_balance("USDT") == {
        "asset": "USDT",
        "free": "10000.00000000",
        "locked": "0.00000000",
    }


def test_limit_and_market_orders_queried_listed_and_canceled(base: str, operator: Sandex) -> None:
    client = _client(operator, base, "orders")
    price = _limit_price(client)

    limit = client.order_limit_buy(symbol=SYMBOL, quantity="0.001", price=price)
    assert (limit["status"], limit["type"], limit["side"], limit["timeInForce"]) == (
        "NEW",
        "LIMIT",
        "BUY",
        "GTC",
    )
    assert Decimal(limit["price"]) == Decimal(price) and Decimal(limit["origQty"]) == Decimal(
        "0.001"
    )
    assert limit["clientOrderId"].startswith("x-HNA2TXFJ")  # python-binance's own id

    market = client.order_market_buy(symbol=SYMBOL, quantity="0.001")
    assert market["status"] == "FILLED" and Decimal(market["executedQty"]) == Decimal("0.001")
    spent = Decimal(market["cummulativeQuoteQty"])
    assert spent == sum(Decimal(f["price"]) * Decimal(f["qty"]) for f in market["fills"])
    fee = sum(Decimal(f["commission"]) for f in market["fills"])
    assert fee == Decimal("0.001") * FEE_RATE
    hold = Decimal(price) * Decimal("0.001")
    assert _balances(client) == {
        "BTC": (Decimal("0.001") - fee, ZERO),
        "USDT": (START_USDT - spent - hold, hold),
    }
    assert client.get_asset_balance("BTC")["free"] == f"{Decimal('0.001') - fee:.8f}"

    found = client.get_order(symbol=SYMBOL, orderId=limit["orderId"])
    assert (found["orderId"], found["status"], found["clientOrderId"]) == (
        limit["orderId"],
        "NEW",
        limit["clientOrderId"],
    )
    by_client_id = client.get_order(symbol=SYMBOL, origClientOrderId=limit["clientOrderId"])
    assert by_client_id["orderId"] == limit["orderId"]
    assert client.get_order(symbol=SYMBOL, orderId=market["orderId"])["status"] == "FILLED"

    assert [o["orderId"] for o in client.get_open_orders(symbol=SYMBOL)] == [limit["orderId"]]
    assert [o["orderId"] for o in client.get_open_orders()] == [limit["orderId"]]
    assert {o["orderId"]: o["status"] for o in client.get_all_orders(symbol=SYMBOL)} == {
        limit["orderId"]: "NEW",
        market["orderId"]: "FILLED",
    }
    trades = client.get_my_trades(symbol=SYMBOL)
    assert trades and {t["orderId"] for t in trades} == {market["orderId"]}

    canceled = client.cancel_order(symbol=SYMBOL, orderId=limit["orderId"])  # a DELETE body
    assert (canceled["orderId"], canceled["status"]) == (limit["orderId"], "CANCELED")
    assert canceled["origClientOrderId"] == limit["clientOrderId"]
    assert client.get_order(symbol=SYMBOL, orderId=limit["orderId"])["status"] == "CANCELED"
    assert client.get_open_orders(symbol=SYMBOL) == []
    assert _balances(client) == {
        "BTC": (Decimal("0.001") - fee, ZERO),
        "USDT": (START_USDT - spent, ZERO),
    }

    # a client order id of one's own, canceled by that id
    mine = client.order_limit_buy(
        symbol=SYMBOL, quantity="0.001", price=price, newClientOrderId="my-order_1"
    )
    assert mine["clientOrderId"] == "my-order_1"
    gone = client.cancel_order(symbol=SYMBOL, origClientOrderId="my-order_1")
    assert (gone["orderId"], gone["status"]) == (mine["orderId"], "CANCELED")


def test_test_order_places_nothing(base: str, operator: Sandex) -> None:
    client = _client(operator, base, "test-order")
    assert (
        client.create_test_order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.001") == {}
    )
    assert (
        client.create_test_order(
            symbol=SYMBOL,
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price=_limit_price(client),
        )
        == {}
    )
    assert client.get_all_orders(symbol=SYMBOL) == []
    assert _balances(client) == {"USDT": (START_USDT, ZERO)}


def test_errors_carry_binance_codes(base: str, operator: Sandex) -> None:
    client = _client(operator, base, "errors")

    poor = _error(lambda: client.order_market_buy(symbol=SYMBOL, quantity="1"))
    assert poor.code == -2010
    assert poor.message == "Account has insufficient balance for requested action."
    assert (
        _error(
            lambda: client.order_limit_buy(symbol=SYMBOL, quantity="1", price=_limit_price(client))
        ).code
        == -2010
    )

    unknown = _error(lambda: client.get_order(symbol=SYMBOL, orderId=987654321))
    assert (unknown.code, unknown.message) == (-2013, "Order does not exist.")
    not_canceled = _error(lambda: client.cancel_order(symbol=SYMBOL, orderId=987654321))
    assert (not_canceled.code, not_canceled.message) == (-2011, "Unknown order sent.")

    notional = _error(
        lambda: client.order_limit_buy(
            symbol=SYMBOL, quantity="0.00002", price=_limit_price(client)
        )
    )
    assert (notional.code, notional.message) == (-1013, "Filter failure: NOTIONAL")
    bad_symbol = _error(lambda: client.get_order(symbol="NOSUCHUSDT", orderId=1))
    assert bad_symbol.code == -1121

    assert client.get_all_orders(symbol=SYMBOL) == []
    assert _balances(client) == {"USDT": (START_USDT, ZERO)}

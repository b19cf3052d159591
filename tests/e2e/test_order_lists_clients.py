"""Order lists from unmodified clients on a real ``sandex serve``: python-binance's
``order_oco_sell`` / ``get_open_oco_orders`` / ``v3_post_order_list_otoco`` and ccxt's
``privatePostOrderListOco`` / ``privatePostOrderListOto``, as a bot protects a position
with a take-profit and a stop-loss; then a flash crash triggers the stop-loss and the
take-profit expires.

One server (SQLite, simulated market makers around BTCUSDT ~60000) serves the module;
each test trades as a user of its own, who starts with 10,000 USDT and buys the BTC
it protects. Prices come from the live book, because the market moves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from e2e.clients import (
    BinanceAPIException,
    binance_client,
    new_key,
    spot_ccxt_client,
    wait_for_balance,
)
from sandex.bootstrap import Sandex
from sandex.keys import Permission

TRADE = Permission.READ | Permission.SPOT_TRADE
SYMBOL = "BTCUSDT"
TICK = Decimal("0.01")
QTY = "0.005"

pytestmark = pytest.mark.usefixtures("server_alive")


def _python_binance(operator: Sandex, base: str, name: str) -> Any:
    creds = new_key(operator, f"e2e-oco-{name}@example.com", label=name, permissions=TRADE)
    client = binance_client(base, creds)
    deadline = time.monotonic() + 5.0
    while (client.get_asset_balance("USDT") or {}).get("free") != "10000.00000000":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    client.order_market_buy(symbol=SYMBOL, quantity="0.01")
    return client


def _btc(client: Any) -> tuple[Decimal, Decimal]:
    row = client.get_asset_balance("BTC")
    return Decimal(row["free"]), Decimal(row["locked"])


def _px(value: Decimal) -> str:
    return str(value.quantize(TICK))


def _oco_prices(client: Any) -> dict[str, str]:
    """A take-profit 10 % over the best ask, a stop 1 % under the best bid that sells
    down to 10 % under it."""
    book = client.get_order_book(symbol=SYMBOL, limit=5)
    bid, ask = Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])
    return {
        "abovePrice": _px(ask * Decimal("1.1")),
        "belowStopPrice": _px(bid * Decimal("0.99")),
        "belowPrice": _px(bid * Decimal("0.9")),
    }


def _tp_sl(client: Any, **extra: str) -> dict[str, str]:
    return {
        "symbol": SYMBOL,
        "quantity": QTY,
        "aboveType": "LIMIT_MAKER",
        "belowType": "STOP_LOSS_LIMIT",
        "belowTimeInForce": "GTC",
        **_oco_prices(client),
        **extra,
    }


def test_python_binance_places_queries_and_cancels_an_oco(base: str, operator: Sandex) -> None:
    client = _python_binance(operator, base, "pb")
    free, locked = _btc(client)
    assert locked == 0

    placed = client.order_oco_sell(**_tp_sl(client, listClientOrderId="pb-protect"))
    assert (placed["contingencyType"], placed["listStatusType"]) == ("OCO", "EXEC_STARTED")
    assert placed["listClientOrderId"] == "pb-protect"
    types = [r["type"] for r in placed["orderReports"]]
    assert types == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]
    assert _btc(client) == (free - Decimal(QTY), Decimal(QTY))  # held once

    list_id = placed["orderListId"]
    [listed] = client.get_open_oco_orders()
    assert listed["orderListId"] == list_id and listed["listOrderStatus"] == "EXECUTING"
    assert client.v3_get_order_list(orderListId=list_id)["orders"] == placed["orders"]
    orders = client.get_open_orders(symbol=SYMBOL)
    assert {o["orderListId"] for o in orders} == {list_id}

    canceled = client.v3_delete_order_list(symbol=SYMBOL, listClientOrderId="pb-protect")
    assert (canceled["listStatusType"], canceled["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert [r["status"] for r in canceled["orderReports"]] == ["CANCELED", "CANCELED"]
    assert _btc(client) == (free, Decimal(0))
    assert client.get_open_oco_orders() == []
    [done] = client.v3_get_all_order_list()
    assert done["orderListId"] == list_id and done["listStatusType"] == "ALL_DONE"

    with pytest.raises(BinanceAPIException) as info:
        client.order_oco_sell(**_tp_sl(client, abovePrice="1.00"))
    assert (info.value.status_code, info.value.code) == (400, -2010)
    assert "relationship of the prices" in info.value.message


def test_ccxt_places_an_oco_through_its_implicit_api(base: str, operator: Sandex) -> None:
    creds = new_key(operator, "e2e-oco-ccxt@example.com", label="ccxt", permissions=TRADE)
    ex = spot_ccxt_client(base, creds)
    ex.load_markets()
    wait_for_balance(ex, "USDT", Decimal(10_000))
    ex.create_order("BTC/USDT", "market", "buy", 0.01)
    pb = binance_client(base, None)  # public book reads
    placed = ex.privatePostOrderListOco({**_tp_sl(pb), "side": "SELL"})
    assert placed["contingencyType"] == "OCO"
    assert placed["listClientOrderId"]  # ccxt generated the list's and both orders' ids
    ids = {str(o["orderId"]) for o in placed["orders"]}
    assert {o["id"] for o in ex.fetch_open_orders("BTC/USDT")} == ids
    assert ex.fetch_balance()["BTC"]["used"] == float(QTY)
    [listed] = ex.privateGetOpenOrderList()
    assert listed["orderListId"] == placed["orderListId"]
    # canceling one order of the list cancels the list
    one = next(iter(ids))
    assert ex.cancel_order(one, "BTC/USDT")["status"] == "canceled"
    assert ex.fetch_open_orders("BTC/USDT") == []
    assert ex.privateGetOpenOrderList() == []
    assert ex.fetch_balance()["BTC"]["used"] == 0


def test_python_binance_otoco_buys_then_protects(base: str, operator: Sandex) -> None:
    creds = new_key(operator, "e2e-oco-otoco@example.com", label="otoco", permissions=TRADE)
    client = binance_client(base, creds)
    deadline = time.monotonic() + 5.0
    while (client.get_asset_balance("USDT") or {}).get("free") != "10000.00000000":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    book = client.get_order_book(symbol=SYMBOL, limit=5)
    ask = Decimal(book["asks"][0][0])
    prices = _oco_prices(client)
    placed = client.v3_post_order_list_otoco(
        symbol=SYMBOL,
        workingType="LIMIT",
        workingSide="BUY",
        workingPrice=_px(ask * Decimal("1.01")),  # crosses: fills at once
        workingQuantity=QTY,
        workingTimeInForce="GTC",
        pendingSide="SELL",
        pendingQuantity="0.004",
        pendingAboveType="LIMIT_MAKER",
        pendingAbovePrice=prices["abovePrice"],
        pendingBelowType="STOP_LOSS_LIMIT",
        pendingBelowStopPrice=prices["belowStopPrice"],
        pendingBelowPrice=prices["belowPrice"],
        pendingBelowTimeInForce="GTC",
    )
    assert placed["contingencyType"] == "OTO"
    working, stop, take = (r["orderId"] for r in placed["orderReports"])
    assert client.get_order(symbol=SYMBOL, orderId=working)["status"] == "FILLED"
    assert [client.get_order(symbol=SYMBOL, orderId=i)["status"] for i in (stop, take)] == [
        "NEW",
        "NEW",
    ]
    assert _btc(client)[1] == Decimal("0.004")  # the pair holds its quantity once
    canceled = client.v3_delete_order_list(symbol=SYMBOL, orderListId=placed["orderListId"])
    assert [r["status"] for r in canceled["orderReports"]] == ["CANCELED", "CANCELED"]
    assert _btc(client)[1] == 0


def test_ccxt_oto_through_its_implicit_api(base: str, operator: Sandex) -> None:
    creds = new_key(operator, "e2e-oco-ccxt-oto@example.com", label="oto", permissions=TRADE)
    ex = spot_ccxt_client(base, creds)
    ex.load_markets()
    wait_for_balance(ex, "USDT", Decimal(10_000))
    bid = Decimal(str(ex.fetch_order_book("BTC/USDT", 5)["bids"][0][0]))
    placed = ex.privatePostOrderListOto(
        {
            "symbol": SYMBOL,
            "workingType": "LIMIT",
            "workingSide": "BUY",
            "workingPrice": _px(bid * Decimal("0.9")),  # rests
            "workingQuantity": QTY,
            "workingTimeInForce": "GTC",
            "pendingType": "LIMIT_MAKER",
            "pendingSide": "SELL",
            "pendingPrice": _px(bid * Decimal("1.2")),
            "pendingQuantity": "0.004",
        }
    )
    working, pending = placed["orderReports"]
    assert (working["status"], pending["status"]) == ("NEW", "PENDING_NEW")
    assert pending["clientOrderId"]  # ccxt generated it
    found = ex.fetch_order(str(pending["orderId"]), "BTC/USDT")
    assert found["info"]["status"] == "PENDING_NEW"
    assert ex.cancel_order(str(working["orderId"]), "BTC/USDT")["status"] == "canceled"
    found = ex.fetch_order(str(pending["orderId"]), "BTC/USDT")
    assert found["info"]["status"] == "CANCELED"
    assert ex.privateGetOpenOrderList() == []


# -- last: the crash moves BTCUSDT for the rest of the module ---------------------------------


def test_a_flash_crash_fills_the_stop_loss_and_expires_the_take_profit(
    base: str, operator: Sandex, cli: Callable[..., None]
) -> None:
    client = _python_binance(operator, base, "crash")
    free, _ = _btc(client)
    placed = client.order_oco_sell(**_tp_sl(client))
    stop, take = placed["orderReports"]

    cli("market", "crash", "BTCUSDT", "--drop", "5%", "--over", "2s")
    deadline = time.monotonic() + 20.0
    while client.get_open_oco_orders() and time.monotonic() < deadline:
        time.sleep(0.25)
    got_stop = client.get_order(symbol=SYMBOL, orderId=stop["orderId"])
    got_take = client.get_order(symbol=SYMBOL, orderId=take["orderId"])
    assert (got_stop["status"], got_take["status"]) == ("FILLED", "EXPIRED"), got_stop
    listed = client.v3_get_order_list(orderListId=placed["orderListId"])
    assert listed["listOrderStatus"] == "ALL_DONE"
    assert _btc(client) == (free - Decimal(QTY), Decimal(0))

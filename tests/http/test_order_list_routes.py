"""Binance's order list routes over HTTP (OCO): a take-profit plus a stop-loss placed,
queried, expired by the other order's fill and canceled as a bot does it, each order
counted against the order-rate limit, and a Binance error for every mistake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from exchange_support import buy, sell
from http_support import AsgiClient, now_ms, signed_query
from sandex.bootstrap import Sandex
from sandex.http import Gateway
from sandex.keys import IpAllowlist, KeySettings, Permission, RiskPolicy
from support import OPERATOR, make_user
from trading_support import new_exchange

OTHER, THIRD = 999, 998
UNIT = 10**8
OCO = "/api/v3/orderList/oco"
TP_SL = [
    ("symbol", "BTCUSDT"),
    ("side", "SELL"),
    ("quantity", "0.5"),
    ("aboveType", "LIMIT_MAKER"),
    ("abovePrice", "55000"),
    ("belowType", "STOP_LOSS_LIMIT"),
    ("belowStopPrice", "45000"),
    ("belowPrice", "44900"),
    ("belowTimeInForce", "GTC"),
]
"""Protect 0.5 BTC bought at 50,000: take profit at 55,000, stop out at 45,000."""
LIST_FIELDS = [
    "orderListId",
    "contingencyType",
    "listStatusType",
    "listOrderStatus",
    "listClientOrderId",
    "transactionTime",
    "symbol",
    "orders",
]


def with_(params: list[tuple[str, str]], **changes: str) -> list[tuple[str, str]]:
    out = [(k, changes.pop(k, v)) for k, v in params]
    out += list(changes.items())
    return [(k, v) for k, v in out if v != ""]


class Bot:
    """A user with 1 BTC and a trading key; the last price is 50,000."""

    def __init__(self, sx: Sandex, gateway: Gateway) -> None:
        self.trading = new_exchange(sx, simulate=sx.settings.simulate)
        gateway.services.exchange = self.trading.trading  # the routes use this one
        self.client = AsgiClient(gateway)
        self.user = make_user(sx, now=now_ms())
        settings = KeySettings(
            "bot", Permission.SPOT_TRADE, IpAllowlist.parse(["127.0.0.1"]), None, RiskPolicy()
        )
        self.key = sx.keys.create(self.user.id, settings, now=now_ms(), actor=OPERATOR)
        self._last = 0
        self.trading.start(now_ms())
        for account, asset, amount in (
            (self.user.id, "BTC", "1"),
            (OTHER, "BTC", "10"),
            (OTHER, "USDT", "1000000"),
            (THIRD, "USDT", "1000000"),
        ):
            self.trading.store.add_credit(
                account, asset, int(Decimal(amount) * UNIT), "credit", now_ms()
            )
        self.trading.apply_credits(self.trading.store.pending_credits(), now_ms())
        self.other(sell("0.01", "50000", account=OTHER), buy("0.01", "50000", account=THIRD))

    def other(self, *orders: Any) -> None:
        for order in orders:
            assert self.trading.place(order, now_ms()).rejected is None
        self.trading.durable()

    def request(
        self, method: str, path: str, params: list[tuple[str, str]] | None = None
    ) -> httpx.Response:
        assert self.key.secret is not None
        self._last = max(now_ms(), self._last + 1)
        query = signed_query(self.key.secret, params, timestamp=self._last)
        return self.client.request(
            method, f"{path}?{query}", headers={"X-MBX-APIKEY": self.key.api_key}
        )

    def ok(self, method: str, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        r = self.request(method, path, params)
        assert r.status_code == 200, r.text
        return r.json()

    def error(
        self, method: str, path: str, params: list[tuple[str, str]] | None = None
    ) -> tuple[int, str]:
        r = self.request(method, path, params)
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        body = r.json()
        assert set(body) == {"code", "msg"}, body
        return body["code"], body["msg"]

    def btc(self) -> tuple[str, str]:
        account = self.ok("GET", "/api/v3/account")
        [b] = [b for b in account["balances"] if b["asset"] == "BTC"]
        return b["free"], b["locked"]


@pytest.fixture
def bot(make_gateway: Callable[..., tuple[Sandex, Gateway]]) -> Iterator[Bot]:
    made = Bot(*make_gateway(simulate=False))
    yield made
    made.trading.close()


def test_an_oco_answers_as_binance_and_holds_the_quantity_once(bot: Bot) -> None:
    r = bot.request("POST", OCO, with_(TP_SL, listClientOrderId="protect-1"))
    assert r.status_code == 200, r.text
    assert r.headers["x-mbx-order-count-10s"] == "2"  # each order of the list counts
    body = r.json()
    assert list(body) == [*LIST_FIELDS, "orderReports"]
    assert (body["contingencyType"], body["listStatusType"], body["listOrderStatus"]) == (
        "OCO",
        "EXEC_STARTED",
        "EXECUTING",
    )
    assert body["listClientOrderId"] == "protect-1"
    stop, limit = body["orderReports"]
    assert (stop["type"], limit["type"]) == ("STOP_LOSS_LIMIT", "LIMIT_MAKER")
    assert stop["orderListId"] == limit["orderListId"] == body["orderListId"]
    assert stop["stopPrice"] == "45000.00000000" and limit["price"] == "55000.00000000"
    assert (stop["workingTime"], stop["status"], limit["status"]) == (-1, "NEW", "NEW")
    assert [o["orderId"] for o in body["orders"]] == [stop["orderId"], limit["orderId"]]
    assert bot.btc() == ("0.50000000", "0.50000000")

    [listed] = bot.ok("GET", "/api/v3/openOrderList")
    assert list(listed) == LIST_FIELDS and listed["orders"] == body["orders"]
    by_id = bot.ok("GET", "/api/v3/orderList", [("orderListId", str(body["orderListId"]))])
    by_cid = bot.ok("GET", "/api/v3/orderList", [("origClientOrderId", "protect-1")])
    assert by_id == by_cid == listed
    orders = bot.ok("GET", "/api/v3/openOrders", [("symbol", "BTCUSDT")])
    assert {o["orderListId"] for o in orders} == {body["orderListId"]}


def test_a_partial_take_profit_expires_the_stop_loss(bot: Bot) -> None:
    body = bot.ok("POST", OCO, TP_SL)
    stop, limit = body["orderReports"]
    bot.other(buy("0.2", "55000", account=THIRD))
    got = bot.ok("GET", "/api/v3/order", [("symbol", "BTCUSDT"), ("orderId", str(stop["orderId"]))])
    assert got["status"] == "EXPIRED" and got["orderListId"] == body["orderListId"]
    got = bot.ok(
        "GET", "/api/v3/order", [("symbol", "BTCUSDT"), ("orderId", str(limit["orderId"]))]
    )
    assert got["status"] == "PARTIALLY_FILLED"
    listed = bot.ok("GET", "/api/v3/orderList", [("orderListId", str(body["orderListId"]))])
    assert listed["listStatusType"] == "EXEC_STARTED"
    assert bot.btc() == ("0.50000000", "0.30000000")
    bot.other(buy("0.3", "55000", account=THIRD))
    listed = bot.ok("GET", "/api/v3/orderList", [("orderListId", str(body["orderListId"]))])
    assert (listed["listStatusType"], listed["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert bot.ok("GET", "/api/v3/openOrderList") == []
    assert bot.btc() == ("0.50000000", "0.00000000")


def test_the_stop_loss_triggering_expires_the_take_profit(bot: Bot) -> None:
    body = bot.ok("POST", OCO, TP_SL)
    stop, limit = body["orderReports"]
    bot.other(buy("1", "44900", account=THIRD))
    bot.other(sell("0.01", "45000", account=OTHER), buy("0.01", "45000", account=THIRD))
    got = bot.ok(
        "GET", "/api/v3/order", [("symbol", "BTCUSDT"), ("orderId", str(limit["orderId"]))]
    )
    assert got["status"] == "EXPIRED"
    got = bot.ok("GET", "/api/v3/order", [("symbol", "BTCUSDT"), ("orderId", str(stop["orderId"]))])
    assert got["status"] == "FILLED"
    assert bot.btc() == ("0.50000000", "0.00000000")


def test_cancel_order_list_cancels_both_and_frees_the_hold(bot: Bot) -> None:
    body = bot.ok("POST", OCO, with_(TP_SL, listClientOrderId="c1"))
    canceled = bot.ok(
        "DELETE", "/api/v3/orderList", [("symbol", "BTCUSDT"), ("listClientOrderId", "c1")]
    )
    assert list(canceled) == [*LIST_FIELDS, "orderReports"]
    assert (canceled["listStatusType"], canceled["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert [o["status"] for o in canceled["orderReports"]] == ["CANCELED", "CANCELED"]
    assert bot.btc() == ("1.00000000", "0.00000000")
    again = [("symbol", "BTCUSDT"), ("orderListId", str(body["orderListId"]))]
    assert bot.error("DELETE", "/api/v3/orderList", again)[0] == -2011
    [done] = bot.ok("GET", "/api/v3/allOrderList")
    assert done["orderListId"] == body["orderListId"] and done["listStatusType"] == "ALL_DONE"
    # canceling one order of a list cancels the list
    body = bot.ok("POST", OCO, with_(TP_SL, listClientOrderId="c1"))
    stop = body["orderReports"][0]
    bot.ok("DELETE", "/api/v3/order", [("symbol", "BTCUSDT"), ("orderId", str(stop["orderId"]))])
    assert bot.ok("GET", "/api/v3/openOrderList") == []
    assert bot.btc() == ("1.00000000", "0.00000000")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"aboveType": "LIMIT"}, -1158),
        ({"aboveType": "NOPE"}, -1116),
        ({"aboveType": ""}, -1102),
        ({"quantity": ""}, -1102),
        ({"side": "SIDEWAYS"}, -1117),
        ({"abovePrice": "45000"}, -2010),  # the take-profit under the last price
        ({"aboveType": "STOP_LOSS", "aboveStopPrice": "55000"}, -1197),
        ({"quantity": "2"}, -2010),  # more than the account has
        ({"aboveTrailingDelta": "100"}, -1014),
        ({"belowPrice": "abc"}, -1100),
        ({"listClientOrderId": "no spaces"}, -1100),
        ({"newOrderRespType": "ALL"}, -1130),
    ],
)
def test_mistakes_are_binance_errors_and_change_nothing(
    bot: Bot, changes: dict[str, str], code: int
) -> None:
    assert bot.error("POST", OCO, with_(TP_SL, **changes))[0] == code
    assert bot.btc() == ("1.00000000", "0.00000000")
    assert bot.ok("GET", "/api/v3/openOrderList") == []


def test_query_and_cancel_mistakes(bot: Bot) -> None:
    assert bot.error("GET", "/api/v3/orderList")[0] == -1102
    assert bot.error("GET", "/api/v3/orderList", [("orderListId", "12345")])[0] == -2013
    assert bot.error("DELETE", "/api/v3/orderList", [("symbol", "BTCUSDT")])[0] == -1102
    assert bot.error("GET", "/api/v3/orderList", [("orderListId", "x")])[0] == -1100
    window = [("fromId", "1"), ("startTime", "1")]
    assert bot.error("GET", "/api/v3/allOrderList", window)[0] == -1106


BUY_THEN_TP = [
    ("symbol", "BTCUSDT"),
    ("workingType", "LIMIT"),
    ("workingSide", "BUY"),
    ("workingPrice", "49000"),
    ("workingQuantity", "0.1"),
    ("workingTimeInForce", "GTC"),
    ("pendingType", "LIMIT_MAKER"),
    ("pendingSide", "SELL"),
    ("pendingPrice", "55000"),
    ("pendingQuantity", "0.1"),
]
"""Buy 0.1 BTC at 49,000; once bought, offer it at 55,000."""


def test_an_oto_waits_then_places_its_pending_order(bot: Bot) -> None:
    r = bot.request("POST", "/api/v3/orderList/oto", with_(BUY_THEN_TP, listClientOrderId="o1"))
    assert r.status_code == 200, r.text
    assert r.headers["x-mbx-order-count-10s"] == "2"
    body = r.json()
    assert list(body) == [*LIST_FIELDS, "orderReports"]
    assert (body["contingencyType"], body["listClientOrderId"]) == ("OTO", "o1")
    working, pending = body["orderReports"]
    assert (working["status"], pending["status"]) == ("NEW", "PENDING_NEW")
    assert (working["type"], pending["type"]) == ("LIMIT", "LIMIT_MAKER")
    assert pending["orderId"] == working["orderId"] + 1 and pending["workingTime"] == -1
    assert bot.btc() == ("1.00000000", "0.00000000")  # the pending sell holds nothing yet

    def status(order: dict[str, Any]) -> str:
        got = bot.ok(
            "GET", "/api/v3/order", [("symbol", "BTCUSDT"), ("orderId", str(order["orderId"]))]
        )
        assert got["orderListId"] == body["orderListId"]
        return str(got["status"])

    assert status(pending) == "PENDING_NEW"
    bot.other(sell("0.1", "49000", account=OTHER))
    assert (status(working), status(pending)) == ("FILLED", "NEW")
    btc = bot.btc()
    assert Decimal(btc[1]) == Decimal("0.1")  # now it holds what it sells
    [listed] = bot.ok("GET", "/api/v3/openOrderList")
    assert listed["orderListId"] == body["orderListId"]
    bot.other(buy("0.1", "55000", account=THIRD))
    assert status(pending) == "FILLED"
    assert bot.ok("GET", "/api/v3/openOrderList") == []


def test_canceling_an_otos_pending_order_cancels_the_list(bot: Bot) -> None:
    body = bot.ok("POST", "/api/v3/orderList/oto", BUY_THEN_TP)
    _, pending = body["orderReports"]
    canceled = bot.ok(
        "DELETE", "/api/v3/order", [("symbol", "BTCUSDT"), ("orderId", str(pending["orderId"]))]
    )
    assert canceled["status"] == "CANCELED"
    assert bot.ok("GET", "/api/v3/openOrders", [("symbol", "BTCUSDT")]) == []
    listed = bot.ok("GET", "/api/v3/orderList", [("orderListId", str(body["orderListId"]))])
    assert listed["listStatusType"] == "ALL_DONE"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"workingType": "MARKET"}, -1158),
        ({"workingSide": ""}, -1102),
        ({"pendingQuantity": ""}, -1102),
        ({"pendingType": "SIDEWAYS"}, -1116),
        ({"workingQuantity": "100"}, -2010),  # more than the account can pay
    ],
)
def test_oto_mistakes_are_binance_errors(bot: Bot, changes: dict[str, str], code: int) -> None:
    assert bot.error("POST", "/api/v3/orderList/oto", with_(BUY_THEN_TP, **changes))[0] == code
    assert bot.ok("GET", "/api/v3/openOrderList") == []


BUY_THEN_PROTECT = [
    ("symbol", "BTCUSDT"),
    ("workingType", "LIMIT"),
    ("workingSide", "BUY"),
    ("workingPrice", "49000"),
    ("workingQuantity", "0.1"),
    ("workingTimeInForce", "GTC"),
    ("pendingSide", "SELL"),
    ("pendingQuantity", "0.1"),
    ("pendingAboveType", "LIMIT_MAKER"),
    ("pendingAbovePrice", "55000"),
    ("pendingBelowType", "STOP_LOSS_LIMIT"),
    ("pendingBelowStopPrice", "45000"),
    ("pendingBelowPrice", "44900"),
    ("pendingBelowTimeInForce", "GTC"),
]
"""Buy 0.1 BTC at 49,000; once bought, take profit at 55,000 or stop out at 45,000."""


def test_an_otoco_places_its_oco_pair_once_the_working_order_fills(bot: Bot) -> None:
    r = bot.request("POST", "/api/v3/orderList/otoco", BUY_THEN_PROTECT)
    assert r.status_code == 200, r.text
    assert r.headers["x-mbx-order-count-10s"] == "3"
    body = r.json()
    assert body["contingencyType"] == "OTO"  # as Binance reports an OTOCO
    working, stop, take = body["orderReports"]
    assert [o["type"] for o in (working, stop, take)] == [
        "LIMIT",
        "STOP_LOSS_LIMIT",
        "LIMIT_MAKER",
    ]
    assert [o["status"] for o in (working, stop, take)] == ["NEW", "PENDING_NEW", "PENDING_NEW"]
    assert [o["orderId"] for o in body["orders"]] == [o["orderId"] for o in (working, stop, take)]
    bot.other(sell("0.1", "49000", account=OTHER))

    def status(order: dict[str, Any]) -> str:
        got = bot.ok(
            "GET", "/api/v3/order", [("symbol", "BTCUSDT"), ("orderId", str(order["orderId"]))]
        )
        return str(got["status"])

    assert [status(o) for o in (working, stop, take)] == ["FILLED", "NEW", "NEW"]
    assert Decimal(bot.btc()[1]) == Decimal("0.1")  # the pair holds the 0.1 BTC once
    bot.other(buy("0.05", "55000", account=THIRD))
    assert [status(o) for o in (stop, take)] == ["EXPIRED", "PARTIALLY_FILLED"]


def test_otoco_mistakes_are_binance_errors(bot: Bot) -> None:
    bad = with_(BUY_THEN_PROTECT, pendingAboveType="STOP_LOSS", pendingAboveStopPrice="56000")
    assert bot.error("POST", "/api/v3/orderList/otoco", bad)[0] == -1197
    assert (
        bot.error("POST", "/api/v3/orderList/otoco", with_(BUY_THEN_PROTECT, pendingSide=""))[0]
        == -1102
    )
    assert bot.ok("GET", "/api/v3/openOrderList") == []


def test_the_deprecated_order_oco_endpoint_places_the_same_list(bot: Bot) -> None:
    legacy = [
        ("symbol", "BTCUSDT"),
        ("side", "SELL"),
        ("quantity", "0.5"),
        ("price", "55000"),
        ("stopPrice", "45000"),
        ("stopLimitPrice", "44900"),
        ("stopLimitTimeInForce", "GTC"),
        ("limitClientOrderId", "tp-1"),
        ("stopClientOrderId", "sl-1"),
    ]
    r = bot.request("POST", "/api/v3/order/oco", legacy)
    assert r.status_code == 200, r.text
    assert r.headers["x-mbx-order-count-10s"] == "2"
    stop, limit = r.json()["orderReports"]
    assert (stop["type"], stop["clientOrderId"]) == ("STOP_LOSS_LIMIT", "sl-1")
    assert (limit["type"], limit["clientOrderId"]) == ("LIMIT_MAKER", "tp-1")
    assert bot.btc() == ("0.50000000", "0.50000000")
    assert bot.error("POST", "/api/v3/order/oco", with_(legacy, stopPrice=""))[0] == -1102

"""Binance's signed spot routes over HTTP, as a bot sees them: orders placed, queried and
canceled with every response type, balances and history, and a Binance error (4xx with
``code`` and ``msg``) for every mistake a client can make, never a 500.

The gateway is driven in process (no lifespan), so each test starts the exchange itself.
Without the simulated market the only other trader is ``OTHER``, an account whose orders
the test places straight on the trading service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from exchange_support import sell
from http_support import AsgiClient, now_ms, signed_query
from sandex.bootstrap import Sandex
from sandex.http import Gateway
from sandex.keys import IpAllowlist, KeySettings, Mode, Permission, RiskPolicy
from sandex.service import IssuedKey
from sandex.service.ports import History
from support import OPERATOR, make_user
from trading_support import new_exchange

OTHER = 999
UNIT = 10**8
ORDER = "/api/v3/order"
LIMIT_BUY = [
    ("symbol", "BTCUSDT"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "0.01"),
    ("price", "50000"),
]
"""A resting bid for 500 USDT, well inside the starting balance of 10000 USDT."""


def with_(params: list[tuple[str, str]], **changes: str) -> list[tuple[str, str]]:
    """``params`` with some values replaced (or added); an empty value drops the param."""
    out = [(k, changes.pop(k, v)) for k, v in params]
    out += list(changes.items())
    return [(k, v) for k, v in out if v != ""]


class Spot:
    """A user with a trading key, on an exchange started over the test database."""

    def __init__(self, sx: Sandex, gateway: Gateway) -> None:
        self.sx = sx
        self.trading = new_exchange(sx, simulate=sx.settings.simulate)
        gateway.services.exchange = self.trading.trading  # the routes use this one
        self.client = AsgiClient(gateway)
        self.user = make_user(sx, now=now_ms())  # queues the starting balance: 10000 USDT
        self.key = self.new_key("bot", Permission.SPOT_TRADE)
        self._last = 0
        self.trading.start(now_ms())

    def new_key(
        self,
        label: str,
        permissions: Permission = Permission.READ,
        policy: RiskPolicy | None = None,
    ) -> IssuedKey:
        settings = KeySettings(
            label, permissions, IpAllowlist.parse(["127.0.0.1"]), None, policy or RiskPolicy()
        )
        return self.sx.keys.create(self.user.id, settings, now=now_ms(), actor=OPERATOR)

    def _timestamp(self) -> int:
        """Now, but never twice the same: two identical requests would be a replay."""
        self._last = max(now_ms(), self._last + 1)
        return self._last

    def request(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]] | None = None,
        key: IssuedKey | None = None,
    ) -> httpx.Response:
        key = key or self.key
        assert key.secret is not None
        query = signed_query(key.secret, params, timestamp=self._timestamp())
        return self.client.request(method, f"{path}?{query}", headers={"X-MBX-APIKEY": key.api_key})

    def ok(
        self, method: str, path: str, params: list[tuple[str, str]] | None = None, **kw: Any
    ) -> Any:
        r = self.request(method, path, params, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    def error(
        self, method: str, path: str, params: list[tuple[str, str]] | None = None, **kw: Any
    ) -> tuple[int, int, str]:
        r = self.request(method, path, params, **kw)
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        body = r.json()
        assert set(body) == {"code", "msg"}, body
        return r.status_code, body["code"], body["msg"]

    def place(self, params: list[tuple[str, str]]) -> Any:
        return self.ok("POST", ORDER, params)

    def balances(self) -> dict[str, tuple[str, str]]:
        account = self.ok("GET", "/api/v3/account")
        return {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}

    def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return self.ok("GET", "/api/v3/openOrders", [("symbol", symbol)] if symbol else [])

    def fund(self, account: int, asset: str, amount: str) -> None:
        store = self.trading.store
        store.add_credit(account, asset, int(Decimal(amount) * UNIT), "operator credit", now_ms())
        self.trading.apply_credits(store.pending_credits(), now_ms())
        self.trading.durable()

    def other(self, *orders: Any) -> None:
        """Place orders for ``OTHER`` straight on the exchange."""
        for order in orders:
            assert self.trading.place(order, now_ms()).rejected is None
        self.trading.durable()


@pytest.fixture
def make_spot(make_gateway: Callable[..., tuple[Sandex, Gateway]]) -> Iterator[Callable[..., Spot]]:
    made: list[Spot] = []

    def make(**overrides: Any) -> Spot:
        spot = Spot(*make_gateway(**overrides))
        made.append(spot)
        return spot

    yield make
    for spot in made:
        spot.trading.close()


@pytest.fixture
def spot(make_spot: Callable[..., Spot]) -> Spot:
    """An exchange without market makers."""
    return make_spot(simulate=False)


@pytest.fixture
def market(make_spot: Callable[..., Spot]) -> Spot:
    """An exchange whose seeded market makers quote BTCUSDT around 60000."""
    return make_spot(simulate=True, market_seed=11)


# -- placing orders ---------------------------------------------------------------------------

ACK_FIELDS = ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
RESULT_FIELDS = [
    *ACK_FIELDS,
    "price",
    "origQty",
    "executedQty",
    "origQuoteOrderQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
    "workingTime",
    "selfTradePreventionMode",
]


@pytest.mark.parametrize(
    ("response", "fields"),
    [("ACK", ACK_FIELDS), ("RESULT", RESULT_FIELDS), ("FULL", [*RESULT_FIELDS, "fills"])],
)
def test_a_new_order_answers_in_the_response_type_asked_for(
    spot: Spot, response: str, fields: list[str]
) -> None:
    before = now_ms()
    body = spot.place(with_(LIMIT_BUY, newOrderRespType=response, newClientOrderId="my-bot_1"))
    assert list(body) == fields
    assert (body["symbol"], body["orderListId"], body["clientOrderId"]) == (
        "BTCUSDT",
        -1,
        "my-bot_1",
    )
    assert isinstance(body["orderId"], int) and before <= body["transactTime"] <= now_ms()
    if response != "ACK":
        assert body["price"] == "50000.00000000" and body["origQty"] == "0.01000000"
        assert (body["executedQty"], body["cummulativeQuoteQty"]) == ("0.00000000", "0.00000000")
        assert (body["status"], body["timeInForce"], body["type"], body["side"]) == (
            "NEW",
            "GTC",
            "LIMIT",
            "BUY",
        )
    if response == "FULL":
        assert body["fills"] == []


def test_without_a_response_type_limit_and_market_answer_full_and_others_ack(spot: Spot) -> None:
    assert "fills" in spot.place(LIMIT_BUY)
    maker = spot.place(with_(LIMIT_BUY, type="LIMIT_MAKER", timeInForce="", price="49000"))
    assert list(maker) == ACK_FIELDS


def test_a_crossing_order_reports_its_fills_and_moves_both_balances(spot: Spot) -> None:
    spot.fund(OTHER, "BTC", "1")
    spot.other(sell("0.01", "60000", account=OTHER))
    body = spot.place(with_(LIMIT_BUY, quantity="0.02", price="60000"))
    assert (body["status"], body["executedQty"], body["cummulativeQuoteQty"]) == (
        "PARTIALLY_FILLED",
        "0.01000000",
        "600.00000000",
    )
    (fill,) = body["fills"]
    assert fill == {
        "price": "60000.00000000",
        "qty": "0.01000000",
        "commission": "0.00001000",
        "commissionAsset": "BTC",
        "tradeId": fill["tradeId"],
    }
    # 600 spent, 600 more held for the rest; the BTC bought less the 0.1 % taker fee
    assert spot.balances() == {
        "USDT": ("8800.00000000", "600.00000000"),
        "BTC": ("0.00999000", "0.00000000"),
    }


def test_a_market_buy_fills_against_the_makers(market: Spot) -> None:
    body = market.place(
        [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.05")]
    )
    assert body["status"] == "FILLED" and body["executedQty"] == "0.05000000"
    fills = body["fills"]
    assert fills and sum(Decimal(f["qty"]) for f in fills) == Decimal("0.05")
    quote = sum(Decimal(f["price"]) * Decimal(f["qty"]) for f in fills)
    assert Decimal(body["cummulativeQuoteQty"]) == quote
    assert sum(Decimal(f["commission"]) for f in fills) == Decimal("0.00005")
    assert {f["commissionAsset"] for f in fills} == {"BTC"}

    trades = market.ok("GET", "/api/v3/myTrades", [("symbol", "BTCUSDT")])
    assert [t["id"] for t in trades] == [f["tradeId"] for f in fills]
    assert all(
        t["orderId"] == body["orderId"] and t["isBuyer"] and not t["isMaker"] for t in trades
    )
    assert market.balances()["USDT"] == (f"{Decimal(10_000) - quote:.8f}", "0.00000000")


def test_a_market_buy_for_a_quote_amount_spends_at_most_that(market: Spot) -> None:
    body = market.place(
        [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quoteOrderQty", "100")]
    )
    assert body["status"] == "FILLED" and body["origQuoteOrderQty"] == "100.00000000"
    assert Decimal(0) < Decimal(body["cummulativeQuoteQty"]) <= Decimal(100)


def test_a_stop_order_waits_unworking_with_its_stop_price(spot: Spot) -> None:
    spot.fund(OTHER, "BTC", "1")
    spot.other(sell("0.01", "60000", account=OTHER))
    spot.place(with_(LIMIT_BUY, price="60000"))  # the last price is now 60000
    stop_loss = [
        ("symbol", "BTCUSDT"),
        ("side", "SELL"),
        ("type", "STOP_LOSS_LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.005"),
        ("price", "54900"),
        ("stopPrice", "55000"),
    ]
    ack = spot.place(stop_loss)
    assert list(ack) == ACK_FIELDS  # not LIMIT or MARKET: ACK unless asked
    shown = spot.ok("GET", ORDER, [("symbol", "BTCUSDT"), ("orderId", str(ack["orderId"]))])
    assert (shown["type"], shown["status"], shown["isWorking"], shown["workingTime"]) == (
        "STOP_LOSS_LIMIT",
        "NEW",
        False,
        -1,
    )
    assert (shown["stopPrice"], shown["price"]) == ("55000.00000000", "54900.00000000")
    assert spot.balances()["BTC"] == ("0.00499000", "0.00500000")
    assert spot.error("POST", ORDER, with_(stop_loss, quantity="0.001", stopPrice="61000")) == (
        400,
        -2010,
        "Stop price would trigger immediately.",
    )


def test_concurrent_orders_are_each_acknowledged_once_and_all_stored(spot: Spot) -> None:
    """Many clients at once: group commit answers each only when its order is stored."""
    assert spot.key.secret is not None
    secret, headers = spot.key.secret, {"X-MBX-APIKEY": spot.key.api_key}
    base = now_ms()

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=spot.client.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sandex.test") as c:
            return await asyncio.gather(
                *(
                    c.post(
                        f"{ORDER}?"
                        + signed_query(
                            secret,
                            with_(LIMIT_BUY, price=str(40_000 + i), newClientOrderId=f"c-{i}"),
                            timestamp=base + i,
                        ),
                        headers=headers,
                    )
                    for i in range(20)
                )
            )

    answers = asyncio.run(send_all())
    assert [r.status_code for r in answers] == [200] * 20
    ids = sorted(r.json()["orderId"] for r in answers)
    assert len(set(ids)) == 20
    stored = spot.trading.store.orders(spot.user.id, "BTCUSDT", History(limit=100))
    assert sorted(o.order_id for o in stored) == ids
    locked = sum(Decimal(40_000 + i) * Decimal("0.01") for i in range(20))
    assert spot.balances()["USDT"] == (f"{10_000 - locked:.8f}", f"{locked:.8f}")


# -- refusals ---------------------------------------------------------------------------------

MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
NUMBER_RANGE = "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'."
CID_RANGE = "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'."


BAD_ORDERS: list[tuple[dict[str, str], int, str]] = [
    ({"symbol": ""}, -1102, MANDATORY.format("symbol")),
    ({"side": ""}, -1102, MANDATORY.format("side")),
    ({"type": ""}, -1102, MANDATORY.format("type")),
    ({"price": ""}, -1102, MANDATORY.format("price")),
    ({"quantity": ""}, -1102, MANDATORY.format("quantity")),
    ({"timeInForce": ""}, -1102, MANDATORY.format("timeInForce")),
    ({"side": "HOLD"}, -1117, "Invalid side."),
    ({"type": "LIMITED"}, -1116, "Invalid orderType."),
    ({"timeInForce": "GTX"}, -1115, "Invalid timeInForce."),
    ({"symbol": "DOGEUSDT"}, -1121, "Invalid symbol."),
    ({"price": "50000.001"}, -1013, "Filter failure: PRICE_FILTER"),
    ({"price": "0"}, -1013, "Filter failure: PRICE_FILTER"),
    ({"price": "2000000"}, -1013, "Filter failure: PRICE_FILTER"),
    ({"quantity": "0.000001"}, -1013, "Filter failure: LOT_SIZE"),
    ({"quantity": "0"}, -1013, "Filter failure: LOT_SIZE"),
    ({"quantity": "0.00001"}, -1013, "Filter failure: NOTIONAL"),  # 0.50 USDT
    ({"quantity": "-1"}, -1100, f"Illegal characters found in parameter 'quantity'; {NUMBER_RANGE}"),
    ({"quantity": "1e-2"}, -1100, f"Illegal characters found in parameter 'quantity'; {NUMBER_RANGE}"),
    ({"price": "5e4"}, -1100, f"Illegal characters found in parameter 'price'; {NUMBER_RANGE}"),
    ({"price": "abc"}, -1100, f"Illegal characters found in parameter 'price'; {NUMBER_RANGE}"),
    ({"quantity": "0.000000001"}, -1111, "Parameter 'quantity' has too much precision."),
    ({"newClientOrderId": "no spaces"}, -1100, f"Illegal characters found in parameter 'newClientOrderId'; {CID_RANGE}"),
    ({"newClientOrderId": "x" * 37}, -1100, f"Illegal characters found in parameter 'newClientOrderId'; {CID_RANGE}"),
    ({"newClientOrderId": "ends-in-newline\n"}, -1100, f"Illegal characters found in parameter 'newClientOrderId'; {CID_RANGE}"),
    ({"selfTradePreventionMode": "NOPE"}, -1130, "Data sent for parameter 'selfTradePreventionMode' is not valid."),
    ({"newOrderRespType": "ALL"}, -1130, "Data sent for parameter 'newOrderRespType' is not valid."),
    ({"icebergQty": "0.001"}, -1014, "Unsupported order combination."),
]  # fmt: skip
"""Changes to LIMIT_BUY, and Binance's answer to each."""


def test_a_bad_new_order_is_refused_with_binances_code_and_nothing_changes(spot: Spot) -> None:
    balances = spot.balances()
    answers = [
        spot.error("POST", ORDER, with_(LIMIT_BUY, **changes)) for changes, _, _ in BAD_ORDERS
    ]
    assert answers == [(400, code, msg) for _, code, msg in BAD_ORDERS]
    assert spot.balances() == balances and spot.open_orders() == []


def test_an_open_client_order_id_cannot_be_used_twice(spot: Spot) -> None:
    first = spot.place(with_(LIMIT_BUY, newClientOrderId="grid-1"))
    assert spot.error(
        "POST", ORDER, with_(LIMIT_BUY, newClientOrderId="grid-1", price="49000")
    ) == (
        400,
        -2010,
        "Duplicate order sent.",
    )
    assert [o["orderId"] for o in spot.open_orders()] == [first["orderId"]]


@pytest.mark.parametrize(
    "params",
    [
        with_(LIMIT_BUY, quantity="0.3"),  # 15000 USDT of 10000
        with_(LIMIT_BUY, side="SELL"),  # no BTC at all
        [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quoteOrderQty", "10001")],
    ],
)
def test_an_order_the_account_cannot_pay_for_changes_nothing(
    market: Spot, params: list[tuple[str, str]]
) -> None:
    kept = market.place(LIMIT_BUY)
    balances = market.balances()
    assert market.error("POST", ORDER, params) == (
        400,
        -2010,
        "Account has insufficient balance for requested action.",
    )
    assert market.balances() == balances
    assert [o["orderId"] for o in market.open_orders()] == [kept["orderId"]]


def test_a_limit_maker_that_would_cross_is_refused(spot: Spot) -> None:
    spot.fund(OTHER, "BTC", "1")
    spot.other(sell("0.01", "50000", account=OTHER))
    maker = with_(LIMIT_BUY, type="LIMIT_MAKER", timeInForce="")
    assert spot.error("POST", ORDER, maker) == (
        400,
        -2010,
        "Order would immediately match and take.",
    )
    assert spot.balances()["USDT"] == ("10000.00000000", "0.00000000")
    assert spot.place(with_(maker, price="49999.99", newOrderRespType="RESULT"))["status"] == "NEW"


def test_a_read_only_key_cannot_place_an_order(spot: Spot) -> None:
    reader = spot.new_key("reader")
    status, code, msg = spot.error("POST", ORDER, LIMIT_BUY, key=reader)
    assert (status, code) == (401, -2015) and "SPOT_TRADE" in msg
    assert spot.open_orders() == []


def test_a_cancel_only_key_may_cancel_but_not_place(spot: Spot) -> None:
    placed = spot.place(LIMIT_BUY)
    pulling = spot.new_key("pull", Permission.SPOT_TRADE, RiskPolicy(mode=Mode.CANCEL_ONLY))
    status, code, msg = spot.error("POST", ORDER, with_(LIMIT_BUY, price="49000"), key=pulling)
    assert (status, code) == (401, -2015) and "has no operation privilege" in msg
    canceled = spot.ok(
        "DELETE", ORDER, [("symbol", "BTCUSDT"), ("orderId", str(placed["orderId"]))], key=pulling
    )
    assert canceled["status"] == "CANCELED" and spot.open_orders() == []


@pytest.mark.parametrize(
    ("policy", "params", "words"),
    [
        (RiskPolicy(symbols=frozenset({"ETHUSDT"})), LIMIT_BUY, "has no operation privilege"),
        (RiskPolicy(max_notional=Decimal(400)), LIMIT_BUY, "max order notional 400"),
    ],
)
def test_a_keys_risk_policy_refuses_an_order_with_a_message_naming_the_limit(
    spot: Spot, policy: RiskPolicy, params: list[tuple[str, str]], words: str
) -> None:
    limited = spot.new_key("limited", Permission.SPOT_TRADE, policy)
    status, code, msg = spot.error("POST", ORDER, params, key=limited)
    assert (status, code) == (400, -2010) and words in msg
    assert spot.open_orders() == []


def test_a_keys_open_order_limit_counts_its_own_orders(spot: Spot) -> None:
    limited = spot.new_key("limited", Permission.SPOT_TRADE, RiskPolicy(max_open_orders=1))
    spot.ok("POST", ORDER, LIMIT_BUY, key=limited)
    status, code, msg = spot.error("POST", ORDER, with_(LIMIT_BUY, price="49000"), key=limited)
    assert (status, code) == (400, -2010) and "its limit is 1" in msg
    spot.place(with_(LIMIT_BUY, price="49000"))  # the other key is not limited


# -- querying and canceling -------------------------------------------------------------------


def test_an_order_is_found_by_id_or_client_id_and_canceled_once(spot: Spot) -> None:
    placed = spot.place(with_(LIMIT_BUY, newClientOrderId="bot-7"))
    by_id = spot.ok("GET", ORDER, [("symbol", "BTCUSDT"), ("orderId", str(placed["orderId"]))])
    by_cid = spot.ok("GET", ORDER, [("symbol", "BTCUSDT"), ("origClientOrderId", "bot-7")])
    assert by_id == by_cid
    assert (by_id["status"], by_id["origQty"], by_id["isWorking"]) == ("NEW", "0.01000000", True)

    canceled = spot.ok("DELETE", ORDER, [("symbol", "BTCUSDT"), ("origClientOrderId", "bot-7")])
    assert (canceled["orderId"], canceled["origClientOrderId"], canceled["status"]) == (
        placed["orderId"],
        "bot-7",
        "CANCELED",
    )
    assert spot.balances()["USDT"] == ("10000.00000000", "0.00000000")
    query = [("symbol", "BTCUSDT"), ("orderId", str(placed["orderId"]))]
    assert spot.ok("GET", ORDER, query)["status"] == "CANCELED"
    assert spot.error("DELETE", ORDER, query) == (400, -2011, "Unknown order sent.")
    spot.place(with_(LIMIT_BUY, newClientOrderId="bot-7"))  # a closed order's id is free again


def test_unknown_orders_are_binances_2013_and_2011(spot: Spot) -> None:
    unknown = [("symbol", "BTCUSDT"), ("orderId", "424242")]
    assert spot.error("GET", ORDER, unknown) == (400, -2013, "Order does not exist.")
    assert spot.error("DELETE", ORDER, unknown) == (400, -2011, "Unknown order sent.")
    assert spot.error("GET", ORDER, [("symbol", "BTCUSDT"), ("origClientOrderId", "nope")]) == (
        400,
        -2013,
        "Order does not exist.",
    )
    neither = "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
    assert spot.error("GET", ORDER, [("symbol", "BTCUSDT")]) == (400, -1102, neither)
    assert spot.error("DELETE", ORDER, [("symbol", "BTCUSDT")]) == (400, -1102, neither)


def test_an_order_of_another_user_is_not_found(spot: Spot) -> None:
    spot.fund(OTHER, "BTC", "1")
    spot.other(sell("0.01", "70000", account=OTHER))
    (theirs,) = spot.trading.venue.open_orders(OTHER)
    query = [("symbol", "BTCUSDT"), ("orderId", str(theirs.order_id))]
    assert spot.error("GET", ORDER, query)[1] == -2013
    assert spot.error("DELETE", ORDER, query)[1] == -2011
    assert spot.trading.venue.open_orders(OTHER) == [theirs]


def test_open_orders_on_one_symbol_or_all_and_cancel_them_all(spot: Spot) -> None:
    btc = spot.place(LIMIT_BUY)
    eth = spot.place(with_(LIMIT_BUY, symbol="ETHUSDT", quantity="0.1", price="3000"))
    assert [o["orderId"] for o in spot.open_orders("BTCUSDT")] == [btc["orderId"]]
    assert [(o["symbol"], o["orderId"]) for o in spot.open_orders()] == [
        ("BTCUSDT", btc["orderId"]),
        ("ETHUSDT", eth["orderId"]),
    ]
    second = spot.place(with_(LIMIT_BUY, price="49000"))

    canceled = spot.ok("DELETE", "/api/v3/openOrders", [("symbol", "BTCUSDT")])
    assert sorted(o["orderId"] for o in canceled) == sorted([btc["orderId"], second["orderId"]])
    assert {o["status"] for o in canceled} == {"CANCELED"}
    assert [o["symbol"] for o in spot.open_orders()] == ["ETHUSDT"]
    assert spot.balances()["USDT"] == ("9700.00000000", "300.00000000")
    assert spot.error("DELETE", "/api/v3/openOrders", [("symbol", "BTCUSDT")]) == (
        400,
        -2011,
        "Unknown order sent.",
    )


def test_cancel_replace_swaps_an_order_for_a_new_one(spot: Spot) -> None:
    old = spot.place(LIMIT_BUY)
    body = spot.ok(
        "POST",
        "/api/v3/order/cancelReplace",
        with_(
            LIMIT_BUY,
            price="51000",
            cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrderId=str(old["orderId"]),
            newOrderRespType="RESULT",
        ),
    )
    assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert body["cancelResponse"]["orderId"] == old["orderId"]
    assert body["cancelResponse"]["status"] == "CANCELED"
    new = body["newOrderResponse"]
    assert new["status"] == "NEW" and new["price"] == "51000.00000000"
    assert [o["orderId"] for o in spot.open_orders()] == [new["orderId"]]
    assert spot.balances()["USDT"] == ("9490.00000000", "510.00000000")


def test_cancel_replace_of_an_unknown_order_fails_and_places_nothing(spot: Spot) -> None:
    status, code, _ = spot.error(
        "POST",
        "/api/v3/order/cancelReplace",
        with_(LIMIT_BUY, cancelReplaceMode="STOP_ON_FAILURE", cancelOrderId="4242"),
    )
    assert (status, code) == (400, -2022)
    assert spot.open_orders() == []


# -- history ------------------------------------------------------------------------------------


def _orders_at_distinct_times(spot: Spot, count: int) -> list[dict[str, Any]]:
    placed = []
    for i in range(count):
        placed.append(spot.place(with_(LIMIT_BUY, price=str(40_000 + i))))
        time.sleep(0.002)  # a millisecond of its own for each, for startTime
    return placed


def test_all_orders_pages_by_limit_order_id_and_time(spot: Spot) -> None:
    placed = _orders_at_distinct_times(spot, 5)
    ids = [p["orderId"] for p in placed]
    spot.ok("DELETE", ORDER, [("symbol", "BTCUSDT"), ("orderId", str(ids[0]))])

    def all_orders(**params: str) -> list[Any]:
        return spot.ok("GET", "/api/v3/allOrders", list({"symbol": "BTCUSDT", **params}.items()))

    every = all_orders()
    assert [o["orderId"] for o in every] == ids
    assert [o["status"] for o in every] == ["CANCELED", "NEW", "NEW", "NEW", "NEW"]
    assert [o["orderId"] for o in all_orders(limit="2")] == ids[-2:]  # the newest
    assert [o["orderId"] for o in all_orders(orderId=str(ids[1]), limit="2")] == ids[1:3]
    start = str(placed[3]["transactTime"])
    assert [o["orderId"] for o in all_orders(startTime=start)] == ids[3:]
    end = str(placed[1]["transactTime"])
    assert [o["orderId"] for o in all_orders(endTime=end)] == ids[:2]
    assert all_orders(symbol="ETHUSDT") == []


def test_my_trades_pages_by_limit_from_id_time_and_order(spot: Spot) -> None:
    spot.fund(OTHER, "BTC", "1")
    spot.other(*(sell("0.01", str(60_000 + i), account=OTHER) for i in range(4)))
    taken = []
    for i in range(4):
        body = spot.place(with_(LIMIT_BUY, price=str(60_000 + i)))
        taken.append(body)
        time.sleep(0.002)
    ids = [b["fills"][0]["tradeId"] for b in taken]

    def my_trades(**params: str) -> list[Any]:
        return spot.ok("GET", "/api/v3/myTrades", list({"symbol": "BTCUSDT", **params}.items()))

    every = my_trades()
    assert [t["id"] for t in every] == ids
    first = every[0]
    assert first == {
        "symbol": "BTCUSDT",
        "id": ids[0],
        "orderId": taken[0]["orderId"],
        "orderListId": -1,
        "price": "60000.00000000",
        "qty": "0.01000000",
        "quoteQty": "600.00000000",
        "commission": "0.00001000",
        "commissionAsset": "BTC",
        "time": first["time"],
        "isBuyer": True,
        "isMaker": False,
        "isBestMatch": True,
    }
    assert [t["id"] for t in my_trades(limit="1")] == ids[-1:]
    assert [t["id"] for t in my_trades(fromId=str(ids[1]), limit="2")] == ids[1:3]
    assert [t["id"] for t in my_trades(startTime=str(every[2]["time"]))] == ids[2:]
    assert [t["id"] for t in my_trades(orderId=str(taken[3]["orderId"]))] == ids[3:]


# -- account and fees ---------------------------------------------------------------------------


def test_the_account_shows_balances_as_strings_and_the_commission_rates(spot: Spot) -> None:
    spot.place(LIMIT_BUY)
    account = spot.ok("GET", "/api/v3/account")
    assert list(account) == [
        "makerCommission", "takerCommission", "buyerCommission", "sellerCommission",
        "commissionRates", "canTrade", "canWithdraw", "canDeposit", "brokered",
        "requireSelfTradePrevention", "preventSor", "updateTime", "accountType", "balances",
        "permissions", "uid",
    ]  # fmt: skip
    assert account["balances"] == [
        {"asset": "USDT", "free": "9500.00000000", "locked": "500.00000000"}
    ]
    assert account["commissionRates"] == {
        "maker": "0.00100000",
        "taker": "0.00100000",
        "buyer": "0.00000000",
        "seller": "0.00000000",
    }
    assert (account["makerCommission"], account["takerCommission"]) == (10, 10)
    assert (account["canTrade"], account["canWithdraw"], account["accountType"]) == (
        True,
        False,
        "SPOT",
    )
    assert account["uid"] == spot.user.id
    reader = spot.new_key("reader")
    assert spot.ok("GET", "/api/v3/account", key=reader)["canTrade"] is False


def test_trade_fee_lists_every_symbol_or_one(make_spot: Callable[..., Spot]) -> None:
    spot = make_spot(simulate=False, maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0007"))
    fees = spot.ok("GET", "/sapi/v1/asset/tradeFee")
    assert [f["symbol"] for f in fees] == ["BTCUSDT", "ETHBTC", "ETHUSDT", "SOLUSDT"]
    assert spot.ok("GET", "/sapi/v1/asset/tradeFee", [("symbol", "ETHBTC")]) == [
        {"symbol": "ETHBTC", "makerCommission": "0.0002", "takerCommission": "0.0007"}
    ]
    assert spot.error("GET", "/sapi/v1/asset/tradeFee", [("symbol", "NOPE")]) == (
        400,
        -1121,
        "Invalid symbol.",
    )


# -- no client mistake is a 500 -----------------------------------------------------------------

TOO_BIG = "9999999999999999999"  # 19 digits, above the largest 64-bit integer

CLIENT_MISTAKES: list[tuple[str, str, list[tuple[str, str]], int]] = [
    ("GET", ORDER, [("symbol", "BTCUSDT"), ("orderId", TOO_BIG)], -1100),
    ("GET", ORDER, [("symbol", "BTCUSDT"), ("orderId", "12345678901234567890")], -1100),
    ("GET", ORDER, [("symbol", "BTCUSDT"), ("orderId", "-1")], -1100),
    ("GET", ORDER, [("symbol", "BTCUSDT"), ("orderId", "²")], -1100),
    ("DELETE", ORDER, [("symbol", "BTCUSDT"), ("orderId", TOO_BIG)], -1100),
    ("GET", "/api/v3/allOrders", [("symbol", "BTCUSDT"), ("orderId", TOO_BIG)], -1100),
    ("GET", "/api/v3/allOrders", [("symbol", "BTCUSDT"), ("startTime", TOO_BIG)], -1100),
    ("GET", "/api/v3/allOrders", [("symbol", "BTCUSDT"), ("limit", "0")], -1130),
    ("GET", "/api/v3/allOrders", [("symbol", "BTCUSDT"), ("limit", "1001")], -1130),
    ("GET", "/api/v3/allOrders", [], -1102),
    ("GET", "/api/v3/myTrades", [("symbol", "BTCUSDT"), ("fromId", TOO_BIG)], -1100),
    ("GET", "/api/v3/myTrades", [("symbol", "BTCUSDT"), ("orderId", TOO_BIG)], -1100),
    ("GET", "/api/v3/myTrades", [("symbol", "BTCUSDT"), ("endTime", TOO_BIG)], -1100),
    ("GET", "/api/v3/myTrades", [("symbol", "BTCUSDT"), ("startTime", "yesterday")], -1100),
    ("GET", "/api/v3/myTrades", [("symbol", "NOPE")], -1121),
    ("GET", "/api/v3/openOrders", [("symbol", "NOPE")], -1121),
    ("DELETE", "/api/v3/openOrders", [], -1102),
    ("POST", "/api/v3/order/cancelReplace", with_(LIMIT_BUY, cancelReplaceMode="STOP_ON_FAILURE"), -1102),
    ("POST", "/api/v3/order/cancelReplace", with_(LIMIT_BUY, cancelOrderId="1"), -1102),
    ("POST", "/api/v3/order/cancelReplace", with_(LIMIT_BUY, cancelReplaceMode="MAYBE", cancelOrderId="1"), -1130),
    ("POST", "/api/v3/order/cancelReplace", with_(LIMIT_BUY, cancelReplaceMode="STOP_ON_FAILURE", cancelOrderId=TOO_BIG), -1100),
    ("POST", ORDER, with_(LIMIT_BUY, quantity=TOO_BIG + "0"), -1013),
    ("POST", ORDER, with_(LIMIT_BUY, price="9" * 20 + "." + "9" * 8), -1013),
    ("POST", ORDER, [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET")], -1102),
    ("POST", ORDER, [("symbol", "BTCUSDT"), ("side", "SELL"), ("type", "MARKET"), ("quoteOrderQty", "9" * 20)], -2010),
    ("POST", ORDER, [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "STOP_LOSS"), ("quantity", "0.01")], -1102),
    ("POST", ORDER, [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "STOP_LOSS"), ("quantity", "0.01"), ("stopPrice", "x")], -1100),
]  # fmt: skip


def test_a_client_mistake_is_a_binance_error_never_a_500(spot: Spot) -> None:
    answers = []
    for method, path, params, _ in CLIENT_MISTAKES:
        r = spot.request(method, path, params)
        body = r.json()
        assert set(body) == {"code", "msg"} and body["msg"], body
        answers.append((method, path, params, r.status_code, body["code"]))
    assert answers == [(m, p, q, 400, code) for m, p, q, code in CLIENT_MISTAKES]

"""Routes bots call that answered 404 (issue 10, finding 5): commission rates, the
unfilled order count, prevented matches, the account status; the ``X-MBX-TIME-UNIT``
header; and the futures and options routes Sandex does not offer, which say so."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Final

import pytest
from test_spot_routes import LIMIT_BUY, ORDER, Spot, with_

from http_support import AsgiClient, now_ms, signed_query
from sandex.bootstrap import Sandex
from sandex.http import Gateway
from sandex.http.time_unit import in_microseconds
from sandex.keys import IpAllowlist, KeySettings, Mode, Permission, RiskPolicy
from sandex.service import IssuedKey
from support import OPERATOR, REDIS_URL, make_user

Make = Callable[..., tuple[Sandex, Gateway]]


@pytest.fixture
def make_spot(make_gateway: Make) -> Iterator[Callable[..., Spot]]:
    made: list[Spot] = []

    def make(**overrides: object) -> Spot:
        spot = Spot(*make_gateway(simulate=False, **overrides))
        made.append(spot)
        return spot

    yield make
    for spot in made:
        spot.trading.close()


@pytest.fixture
def spot(make_spot: Callable[..., Spot]) -> Spot:
    return make_spot()


def test_commission_rates_of_a_symbol(make_spot: Callable[..., Spot]) -> None:
    spot = make_spot(maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0007"))
    body = spot.ok("GET", "/api/v3/account/commission", [("symbol", "ETHBTC")])
    zero = "0.00000000"
    assert body == {
        "symbol": "ETHBTC",
        "standardCommission": {"maker": "0.00020000", "taker": "0.00070000", "buyer": zero,
                               "seller": zero},
        "specialCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
        "taxCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
        "discount": {"enabledForAccount": False, "enabledForSymbol": False,
                     "discountAsset": "BNB", "discount": zero},
    }  # fmt: skip
    assert spot.error("GET", "/api/v3/account/commission")[:2] == (400, -1102)
    assert spot.error("GET", "/api/v3/account/commission", [("symbol", "NOPE")])[:2] == (
        400,
        -1121,
    )


def test_unfilled_order_count_counts_this_accounts_orders(make_spot: Callable[..., Spot]) -> None:
    spot = make_spot(orders_10s=7, orders_1d=1000)
    path = "/api/v3/rateLimit/order"
    assert [(c["interval"], c["limit"], c["count"]) for c in spot.ok("GET", path)] == [
        ("SECOND", 7, 0),
        ("DAY", 1000, 0),
    ]
    spot.place(LIMIT_BUY)
    spot.place(with_(LIMIT_BUY, price="49000"))
    counts = spot.ok("GET", path)
    assert counts == [
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 7,
         "count": 2},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 1000,
         "count": 2},
    ]  # fmt: skip
    assert spot.ok("GET", path)[0]["count"] == 2  # reading the count does not add to it


def test_unfilled_order_count_is_every_workers_when_they_share_redis(
    make_spot: Callable[..., Spot], make_gateway: Make, redis_namespace: str
) -> None:
    """Two gateways on one Redis namespace (two workers): orders placed through one are
    in the counts the other reports, read through its awaited Redis connection."""
    shared = {"redis_url": REDIS_URL, "redis_namespace": redis_namespace}
    spot = make_spot(orders_10s=7, orders_1d=1000, **shared)
    _, second = make_gateway(simulate=False, orders_10s=7, orders_1d=1000, **shared)
    assert second.services.limiter.gate is not None
    other = AsgiClient(second)
    secret = spot.key.secret
    assert secret is not None
    headers = {"X-MBX-APIKEY": spot.key.api_key}

    def counts() -> list[tuple[str, int, int]]:
        query = signed_query(secret, timestamp=spot._timestamp())
        r = other.get(f"/api/v3/rateLimit/order?{query}", headers=headers)
        assert r.status_code == 200, r.text
        return [(c["interval"], c["limit"], c["count"]) for c in r.json()]

    assert counts() == [("SECOND", 7, 0), ("DAY", 1000, 0)]
    spot.place(LIMIT_BUY)
    spot.place(with_(LIMIT_BUY, price="49000"))
    assert counts() == [("SECOND", 7, 2), ("DAY", 1000, 2)]
    assert counts()[0][2] == 2  # reading the count does not add to it


def test_prevented_matches_refuse_bad_parameters(spot: Spot) -> None:
    placed = spot.place(LIMIT_BUY)
    path = "/api/v3/myPreventedMatches"
    assert spot.ok("GET", path, [("symbol", "BTCUSDT"), ("orderId", str(placed["orderId"]))]) == []
    assert spot.ok("GET", path, [("symbol", "BTCUSDT"), ("preventedMatchId", "1")]) == []
    assert spot.error("GET", path, [("symbol", "BTCUSDT")])[:2] == (400, -1102)
    assert spot.error("GET", path, [("orderId", "1")])[:2] == (400, -1102)
    assert spot.error("GET", path, [("symbol", "BTCUSDT"), ("orderId", "x")])[:2] == (400, -1100)
    bad_limit = [("symbol", "BTCUSDT"), ("orderId", "1"), ("limit", "1001")]
    assert spot.error("GET", path, bad_limit)[:2] == (400, -1130)


PREVENTED: Final = "/api/v3/myPreventedMatches"
_SELL = with_(LIMIT_BUY, side="SELL")


def _prevented(spot: Spot, *params: tuple[str, str], key: IssuedKey | None = None) -> Any:
    return spot.ok("GET", PREVENTED, [("symbol", "BTCUSDT"), *params], key=key)


@pytest.mark.parametrize(
    ("mode", "maker_left", "taker_status", "maker_status", "prevented"),
    [
        ("EXPIRE_TAKER", True, "EXPIRED_IN_MATCH", "NEW", {"takerPreventedQuantity": "0.00400000"}),
        ("EXPIRE_MAKER", False, "NEW", "EXPIRED_IN_MATCH", {"makerPreventedQuantity": "0.01000000"}),
        ("EXPIRE_BOTH", False, "EXPIRED_IN_MATCH", "EXPIRED_IN_MATCH",
         {"takerPreventedQuantity": "0.00400000", "makerPreventedQuantity": "0.01000000"}),
    ],
)  # fmt: skip
def test_a_self_trade_prevented_is_listed_by_order_and_by_id(
    spot: Spot,
    mode: str,
    maker_left: bool,
    taker_status: str,
    maker_status: str,
    prevented: dict[str, str],
) -> None:
    spot.fund(spot.user.id, "BTC", "1")
    maker = spot.place(LIMIT_BUY)
    taker = spot.place(with_(_SELL, quantity="0.004", selfTradePreventionMode=mode))
    assert taker["status"] == taker_status and taker["fills"] == []
    maker_now = spot.ok("GET", ORDER, [("symbol", "BTCUSDT"), ("orderId", str(maker["orderId"]))])
    assert maker_now["status"] == maker_status
    assert bool(spot.open_orders("BTCUSDT")) is (maker_left or taker_status == "NEW")
    # the orders it expired carry the match's id and what it expired of them
    taker_now = spot.ok("GET", ORDER, [("symbol", "BTCUSDT"), ("orderId", str(taker["orderId"]))])
    for order, field in ((taker, "taker"), (taker_now, "taker"), (maker_now, "maker")):
        expired = prevented.get(f"{field}PreventedQuantity")
        if expired is None:
            assert "preventedMatchId" not in order and "preventedQuantity" not in order
        else:
            assert (order["preventedMatchId"], order["preventedQuantity"]) == (1, expired)

    by_taker = _prevented(spot, ("orderId", str(taker["orderId"])))
    assert by_taker == [
        {
            "symbol": "BTCUSDT",
            "preventedMatchId": 1,
            "takerOrderId": taker["orderId"],
            "makerSymbol": "BTCUSDT",
            "makerOrderId": maker["orderId"],
            "tradeGroupId": -1,
            "selfTradePreventionMode": mode,
            "price": "50000.00000000",
            **prevented,
            "transactTime": taker["transactTime"],
        }
    ]
    assert _prevented(spot, ("orderId", str(maker["orderId"]))) == by_taker
    assert _prevented(spot, ("preventedMatchId", "1")) == by_taker
    assert _prevented(spot, ("preventedMatchId", "2")) == []
    assert _prevented(spot, ("orderId", str(taker["orderId"])), ("fromPreventedMatchId", "2")) == []
    assert _prevented(spot, ("orderId", str(maker["orderId"])), ("limit", "1")) == by_taker


def test_prevented_match_ids_go_on_per_symbol_and_only_the_owner_sees_them(spot: Spot) -> None:
    spot.fund(spot.user.id, "BTC", "1")
    maker = spot.place(LIMIT_BUY)
    takers = [
        spot.place(with_(_SELL, quantity="0.001", selfTradePreventionMode="EXPIRE_TAKER"))
        for _ in range(3)
    ]
    maker_id = ("orderId", str(maker["orderId"]))
    ids = [m["preventedMatchId"] for m in _prevented(spot, maker_id)]
    assert ids == [1, 2, 3]
    assert [m["takerOrderId"] for m in _prevented(spot, maker_id)] == [t["orderId"] for t in takers]
    assert [m["preventedMatchId"] for m in _prevented(spot, maker_id, ("limit", "2"))] == [1, 2]
    assert [
        m["preventedMatchId"] for m in _prevented(spot, maker_id, ("fromPreventedMatchId", "2"))
    ] == [2, 3]
    # ETHBTC has its own sequence
    assert _prevented(spot, ("preventedMatchId", "1"))[0]["symbol"] == "BTCUSDT"
    assert spot.ok("GET", PREVENTED, [("symbol", "ETHBTC"), ("preventedMatchId", "1")]) == []

    # another account sees none of them, by id or by order id
    mallory = make_user(spot.sx, "mallory@example.com", now=now_ms())
    settings = KeySettings(
        "m", Permission.SPOT_TRADE, IpAllowlist.parse(["127.0.0.1"]), None, RiskPolicy()
    )
    key = spot.sx.keys.create(mallory.id, settings, now=now_ms(), actor=OPERATOR)
    assert _prevented(spot, ("preventedMatchId", "1"), key=key) == []
    assert _prevented(spot, maker_id, key=key) == []
    assert _prevented(spot, ("orderId", str(takers[0]["orderId"])), key=key) == []


def test_account_status_is_normal(spot: Spot) -> None:
    assert spot.ok("GET", "/sapi/v1/account/status") == {"data": "Normal"}
    assert spot.client.get("/sapi/v1/account/status").status_code == 401  # signed


def test_api_trading_status_reports_a_frozen_or_cancel_only_key_as_locked(spot: Spot) -> None:
    body = spot.ok("GET", "/sapi/v1/account/apiTradingStatus")
    assert body["data"]["isLocked"] is False and body["data"]["plannedRecoverTime"] == 0
    assert set(body["data"]) == {
        "isLocked", "plannedRecoverTime", "triggerCondition", "indicators", "updateTime",
    }  # fmt: skip
    for mode in (Mode.FROZEN, Mode.CANCEL_ONLY):
        key = spot.new_key(f"k-{mode.value}", Permission.SPOT_TRADE, RiskPolicy(mode=mode))
        locked = spot.ok("GET", "/sapi/v1/account/apiTradingStatus", key=key)
        assert locked["data"]["isLocked"] is True
    assert spot.client.get("/sapi/v1/account/apiTradingStatus").status_code == 401  # signed


# -- X-MBX-TIME-UNIT ----------------------------------------------------------------------------


def test_microsecond_time_unit_converts_every_time_field(spot: Spot) -> None:
    micro = {"X-MBX-TIME-UNIT": "MICROSECOND"}
    client = spot.client
    before = now_ms() * 1000
    server = client.get("/api/v3/time", headers=micro).json()["serverTime"]
    assert before <= server <= now_ms() * 1000 + 999
    assert (
        client.get("/api/v3/time", headers={"X-MBX-TIME-UNIT": "millisecond"}).json()["serverTime"]
        < 10**13
    )

    def signed(method: str, path: str, params: list[tuple[str, str]]) -> object:
        assert spot.key.secret is not None
        q = signed_query(spot.key.secret, params, timestamp=spot._timestamp())
        headers = {"X-MBX-APIKEY": spot.key.api_key, **micro}
        r = client.request(method, f"{path}?{q}", headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    placed = signed("POST", ORDER, LIMIT_BUY)
    assert isinstance(placed, dict)
    assert placed["transactTime"] >= before and placed["workingTime"] >= before
    order = signed("GET", ORDER, [("symbol", "BTCUSDT"), ("orderId", str(placed["orderId"]))])
    assert isinstance(order, dict)
    assert order["time"] >= before and order["updateTime"] >= before
    assert order["orderId"] == placed["orderId"]  # ids are not times
    rows = client.get(
        "/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "limit": "2"},
        headers=micro,
    ).json()
    plain = client.get(
        "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": "2"}
    ).json()
    assert [(r[0], r[6]) for r in rows] == [(p[0] * 1000, p[6] * 1000 + 999) for p in plain]
    ticker = client.get(
        "/api/v3/ticker/24hr", params={"symbol": "BTCUSDT", "type": "MINI"}, headers=micro
    ).json()
    assert ticker["openTime"] % 60_000_000 == 0 and ticker["closeTime"] >= before
    day = client.get(
        "/api/v3/ticker/tradingDay", params={"symbol": "BTCUSDT"}, headers=micro
    ).json()
    assert day["closeTime"] - day["openTime"] == 86_400_000_000 - 1


def test_an_unknown_time_unit_is_refused_before_anything_is_done(spot: Spot) -> None:
    assert spot.key.secret is not None
    q = signed_query(spot.key.secret, LIMIT_BUY, timestamp=spot._timestamp())
    r = spot.client.post(
        f"{ORDER}?{q}", headers={"X-MBX-APIKEY": spot.key.api_key, "X-MBX-TIME-UNIT": "SECOND"}
    )
    assert r.status_code == 400
    assert r.json() == {
        "code": -1194,
        "msg": "Invalid value for time unit; expected either MICROSECOND or MILLISECOND.",
    }
    assert spot.open_orders() == []  # the order was not placed


# -- products Sandex does not offer ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "product"),
    [
        ("/fapi/v1/order", "USDⓈ-M futures yet (/fapi)"),
        ("/fapi/v2/account", "USDⓈ-M futures yet (/fapi)"),
        ("/dapi/v1/order", "COIN-M futures yet (/dapi)"),
        ("/eapi/v1/order", "options yet (/eapi)"),
        ("/papi/v1/um/order", "portfolio margin yet (/papi)"),
    ],
)
def test_a_product_sandex_does_not_offer_says_so(
    make_gateway: Make, path: str, product: str
) -> None:
    _, gateway = make_gateway(simulate=False)
    r = AsgiClient(gateway).post(path)
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == -1020
    assert body["msg"].startswith(f"Sandex does not offer {product}: {path} is not served.")


def test_other_unknown_routes_are_still_plain_404s(make_gateway: Make) -> None:
    _, gateway = make_gateway(simulate=False)
    r = AsgiClient(gateway).get("/api/v3/nothing")
    assert (r.status_code, r.json()["code"]) == (404, -9001)


def test_time_fields_are_converted_by_name_and_ids_and_none_are_not() -> None:
    body = {
        "orderId": 5,
        "lastUpdateId": 1_800_000_000_000,
        "transactTime": 1_800_000_000_001,
        "workingTime": -1,
        "orderReports": [{"time": 2, "updateTime": 3}],
        "transactionTime": 4,
    }
    assert in_microseconds("/api/v3/order", body) == {
        "orderId": 5,
        "lastUpdateId": 1_800_000_000_000,
        "transactTime": 1_800_000_000_001_000,
        "workingTime": -1,
        "orderReports": [{"time": 2000, "updateTime": 3000}],
        "transactionTime": 4000,
    }
    day = {"openTime": 0, "closeTime": 86_399_999}
    assert in_microseconds("/api/v3/ticker/tradingDay", day) == {
        "openTime": 0,
        "closeTime": 86_399_999_999,
    }
    assert in_microseconds("/api/v3/ticker", day)["closeTime"] == 86_399_999_000  # an instant

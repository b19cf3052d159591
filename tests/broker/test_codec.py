"""The broker codec: every command, answer and public event a gateway and the engine
exchange comes back equal to what went out; anything this release does not write (an
unknown record or enumeration, a field of the wrong type, the wrong number of fields) is
refused with CodecError, never built."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import orjson
import pytest

from exchange_support import NOW, SYMBOL, buy, sell
from sandex.broker.codec import CodecError, decode, encode
from sandex.exchange import (
    CancelAll,
    CancelOrder,
    CancelReplace,
    CancelReplaceMode,
    CancelRestriction,
    Rejected,
    SelfTradePrevention,
    default_symbols,
)
from sandex.exchange.book import Level
from sandex.exchange.events import (
    Accepted,
    Canceled,
    Expired,
    ReplaceFailed,
    SelfTradePrevented,
    Trade,
    Triggered,
)
from sandex.exchange.order_lists import ContingencyType, NewOco, NewOto, NewOtoco, OrderList
from sandex.exchange.venue import Venue
from sandex.keys import RiskPolicy
from sandex.keys.policy import Mode
from sandex.service.engine_commands import (
    Cancel,
    CancelList,
    CancelOpen,
    Check,
    Place,
    PlaceList,
    PolicyRefusal,
    Replace,
    Reply,
    Snapshot,
    Watch,
)
from sandex.service.market_feed import BookChange, BookState, MarketSnapshot, PublicTradeEvent

UNIT = 10**8
POLICY = RiskPolicy(
    symbols=frozenset({"BTCUSDT", "ETHUSDT"}),
    max_notional=Decimal("1234.5"),
    max_open_orders=7,
    mode=Mode.NORMAL,
)
ABOVE = sell("0.01", "60000", cid="above", stp=SelfTradePrevention.EXPIRE_BOTH)
BELOW = buy("0.01", "40000")

COMMANDS = [
    Place(buy("0.01", "50000", cid="a-1")),
    Place(sell("0.5", "51000", account=3, cid="s"), key_id=9, policy=POLICY),
    Check(buy("0.01", "50000"), key_id=2, policy=RiskPolicy()),
    Cancel(CancelOrder(SYMBOL, 1, order_id=5)),
    Cancel(CancelOrder(SYMBOL, 1, client_order_id="x", restriction=CancelRestriction.ONLY_NEW)),
    CancelOpen(CancelAll(SYMBOL, 1)),
    Replace(CancelReplace(CancelOrder(SYMBOL, 1, order_id=5), BELOW), key_id=1, policy=POLICY),
    Replace(CancelReplace(CancelOrder(SYMBOL, 1, 5), ABOVE, CancelReplaceMode.ALLOW_FAILURE)),
    PlaceList(NewOco(ABOVE, BELOW, "oco-1"), key_id=4, policy=POLICY),
    PlaceList(NewOto(BELOW, ABOVE, None)),
    PlaceList(NewOtoco(BELOW, ABOVE, BELOW, "otoco")),
    CancelList(SYMBOL, 1, 3, None),
    CancelList(SYMBOL, 1, None, "oco-1"),
    Snapshot(),
    Watch((1, 42), NOW + 30_000),
]


def _traded_reply() -> Reply:
    """A reply as the engine builds it for an order that traded: Accepted, Trades, the
    taker's record with its fills, copies taken at apply time."""
    venue = Venue(default_symbols())
    venue.credit(1, "BTC", 10 * UNIT)
    venue.credit(2, "USDT", 10**6 * UNIT)
    assert venue.place(sell("0.01", "50000", account=1), NOW).rejected is None
    assert venue.place(sell("0.02", "50001", account=1), NOW).rejected is None
    result = venue.place(buy("0.025", "50001", account=2, cid="taker"), NOW, key_id=7)
    assert any(type(e) is Trade for e in result.events)
    orders = [dataclasses.replace(o, fills=list(o.fills)) for o in result.orders]
    return Reply(result.events, orders, changed=True)


REPLIES = [
    _traded_reply(),
    Reply(events=[Rejected(-2010, "Account has insufficient balance for requested action.")]),
    Reply(refusal=PolicyRefusal("the key's policy refuses it", "max_notional")),
    Reply(checked=Rejected(-1013, "Filter failure: PRICE_FILTER")),
    Reply(checked=None),
    Reply(
        events=[
            Accepted(5, BELOW, SelfTradePrevention.EXPIRE_MAKER, False, NOW),
            Canceled(5, 1, 100, NOW),
            Expired(6, 1, 50, True, NOW),
            Triggered(6, 1, NOW),
            SelfTradePrevented(6, 5, 5_000_000, 10, 10, SelfTradePrevention.EXPIRE_BOTH, NOW),
            ReplaceFailed(-2021, "failed", "SUCCESS", "FAILURE", None, Rejected(-2010, "no")),
        ],
        order_list=OrderList(3, ContingencyType.OCO, SYMBOL, 1, "oco-1", NOW, (5, 6)),
        changed=True,
    ),
]

EVENTS = [
    MarketSnapshot([BookState(SYMBOL, 17, [Level(5, 1), Level(4, 2)], [Level(6, 3)], None)]),
    [
        BookChange(SYMBOL, 18, 19, [Level(5, 0)], []),
        PublicTradeEvent(SYMBOL, _traded_reply().events[1]),  # type: ignore[arg-type]
    ],
]


@pytest.mark.parametrize("value", COMMANDS + REPLIES + EVENTS, ids=lambda v: type(v).__name__)
def test_what_goes_out_comes_back_equal(value: object) -> None:
    data = encode(value)
    assert decode(data) == value
    assert b"\n" not in data  # the broker joins several messages with newlines


def test_an_order_record_comes_back_with_its_enumerations_and_fills() -> None:
    reply = _traded_reply()
    (taker,) = (o for o in reply.orders if o.client_order_id == "taker")
    back = decode(encode(reply))
    (again,) = (o for o in back.orders if o.client_order_id == "taker")
    assert again == taker and again.fills == taker.fills and len(again.fills) == 2
    assert type(again.side) is type(taker.side) and type(again.status) is type(taker.status)


def _tampered(value: object, change: object) -> bytes:
    raw = orjson.loads(encode(value))
    change(raw)  # type: ignore[operator]
    return orjson.dumps(raw)


@pytest.mark.parametrize(
    "data",
    [
        b'{"t": "Popen", "f": [["sh"]]}',
        b'{"t": "__import__", "f": ["os"]}',
        b'{"e": "Signals", "v": 9}',
        b'{"e": "Side", "v": "SIDEWAYS"}',
        b'{"x": 1}',
        b"not json",
        b'{"t": "Place", "f": "abc"}',
    ],
)
def test_unknown_records_enumerations_and_shapes_are_refused(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode(data)


def test_a_field_of_the_wrong_type_or_count_is_refused_not_built() -> None:
    place = Place(buy("0.01", "50000"), key_id=3)

    def quantity_as_text(raw: dict) -> None:  # type: ignore[type-arg]
        raw["f"][0][4] = "1000"

    def account_as_record(raw: dict) -> None:  # type: ignore[type-arg]
        raw["f"][0][1] = {"t": "Snapshot", "f": []}

    def side_unknown(raw: dict) -> None:  # type: ignore[type-arg]
        raw["f"][0][2] = "SIDEWAYS"

    def one_field_short(raw: dict) -> None:  # type: ignore[type-arg]
        raw["f"][0].pop()

    def policy_of_another_kind(raw: dict) -> None:  # type: ignore[type-arg]
        raw["f"][2] = {"d": "1"}

    for change in (
        quantity_as_text,
        account_as_record,
        side_unknown,
        one_field_short,
        policy_of_another_kind,
    ):
        with pytest.raises(CodecError):
            decode(_tampered(place, change))


def test_what_is_not_registered_does_not_encode() -> None:
    with pytest.raises(CodecError):
        encode(object())
    with pytest.raises(CodecError):
        encode(Place(buy("0.01", "50000"), policy=object()))  # type: ignore[arg-type]

"""Cancel, cancel all, cancel restrictions and cancel-replace."""

from __future__ import annotations

from dataclasses import replace

from exchange_support import (
    BTC,
    NOW,
    SYMBOL,
    accepted,
    buy,
    kinds,
    new_engine,
    px,
    qty,
    rejected,
    sell,
    stop,
)
from sandex.exchange import (
    Accepted,
    CancelAll,
    Canceled,
    CancelOrder,
    CancelReplace,
    CancelReplaceMode,
    CancelRestriction,
    Engine,
    Level,
    OrderType,
    Rejected,
    ReplaceFailed,
    Side,
)

UNKNOWN = Rejected(-2011, "Unknown order sent.")
ALLOW = CancelReplaceMode.ALLOW_FAILURE


def test_cancel_by_order_id():
    engine = new_engine()
    engine.submit(buy("0.5", "60000"), NOW)
    assert engine.submit(CancelOrder(SYMBOL, 1, order_id=1), NOW + 5) == [
        Canceled(1, 1, qty("0.5"), NOW + 5)
    ]
    assert engine.depth(SYMBOL) == ([], [])
    assert engine.submit(CancelOrder(SYMBOL, 1, order_id=1), NOW) == [UNKNOWN]


def test_cancel_by_client_order_id_and_by_both():
    engine = new_engine()
    engine.submit(buy("0.5", "60000", cid="mine"), NOW)
    engine.submit(buy("0.5", "60000", cid="other"), NOW)
    assert engine.submit(CancelOrder(SYMBOL, 1, order_id=1, client_order_id="other"), NOW) == [
        UNKNOWN
    ]
    assert kinds(engine.submit(CancelOrder(SYMBOL, 1, client_order_id="mine"), NOW)) == ["Canceled"]
    assert kinds(
        engine.submit(CancelOrder(SYMBOL, 1, order_id=2, client_order_id="other"), NOW)
    ) == ["Canceled"]


def test_cancel_needs_an_order_id_or_a_client_order_id():
    assert new_engine().submit(CancelOrder(SYMBOL, 1), NOW) == [
        Rejected(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    ]


def test_an_account_cannot_cancel_another_accounts_order():
    engine = new_engine()
    engine.submit(buy("0.5", "60000", account=2, cid="x"), NOW)
    assert engine.submit(CancelOrder(SYMBOL, 1, order_id=1), NOW) == [UNKNOWN]
    assert engine.submit(CancelOrder(SYMBOL, 1, client_order_id="x"), NOW) == [UNKNOWN]
    assert engine.depth(SYMBOL)[0] == [Level(px("60000"), qty("0.5"))]


def test_a_filled_order_cannot_be_canceled():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(buy("0.1", "60000"), NOW)
    assert engine.submit(CancelOrder(SYMBOL, 2, order_id=1), NOW) == [UNKNOWN]


def test_a_partly_filled_order_cancels_its_remainder():
    engine = new_engine()
    engine.submit(sell("0.3", "60000", account=2), NOW)
    engine.submit(buy("0.1", "60000"), NOW)
    assert engine.submit(CancelOrder(SYMBOL, 2, order_id=1), NOW) == [
        Canceled(1, 2, qty("0.2"), NOW)
    ]


def test_cancel_restrictions():
    engine = new_engine()
    engine.submit(sell("0.3", "60000", account=2), NOW)  # 1: will be partly filled
    engine.submit(sell("0.3", "60001", account=2), NOW)  # 2: stays new
    engine.submit(buy("0.1", "60000"), NOW)
    restricted = Rejected(-2011, "Order was not canceled due to cancel restrictions.")
    only_new, only_partly = CancelRestriction.ONLY_NEW, CancelRestriction.ONLY_PARTIALLY_FILLED
    assert engine.submit(CancelOrder(SYMBOL, 2, 1, restriction=only_new), NOW) == [restricted]
    assert engine.submit(CancelOrder(SYMBOL, 2, 2, restriction=only_partly), NOW) == [restricted]
    assert kinds(engine.submit(CancelOrder(SYMBOL, 2, 1, restriction=only_partly), NOW)) == [
        "Canceled"
    ]
    assert kinds(engine.submit(CancelOrder(SYMBOL, 2, 2, restriction=only_new), NOW)) == [
        "Canceled"
    ]


def test_cancel_all_cancels_resting_orders_and_pending_stops_of_one_account():
    engine = new_engine()
    engine.submit(buy("0.1", "59000"), NOW)
    engine.submit(sell("0.1", "61000", account=2), NOW)
    engine.submit(stop(OrderType.STOP_LOSS, Side.SELL, "0.1", "58000"), NOW)
    engine.submit(sell("0.2", "62000"), NOW)
    events = engine.submit(CancelAll(SYMBOL, 1), NOW)
    assert events == [
        Canceled(1, 1, qty("0.1"), NOW),
        Canceled(3, 1, qty("0.1"), NOW),
        Canceled(4, 1, qty("0.2"), NOW),
    ]
    assert engine.depth(SYMBOL) == ([], [Level(px("61000"), qty("0.1"))])
    assert engine.pending_stops(SYMBOL) == []
    assert engine.submit(CancelAll(SYMBOL, 1), NOW) == [UNKNOWN]


def test_unknown_symbol():
    engine = new_engine()
    invalid = [Rejected(-1121, "Invalid symbol.")]
    assert engine.submit(CancelAll("NOPE", 1), NOW) == invalid
    assert engine.submit(CancelOrder("NOPE", 1, 1), NOW) == invalid
    assert engine.submit(buy("1", "1")._replace(symbol="NOPE"), NOW) == invalid


# -- cancel-replace -----------------------------------------------------------------------


def replace_order(order_id: int, new, mode=CancelReplaceMode.STOP_ON_FAILURE) -> CancelReplace:
    return CancelReplace(CancelOrder(SYMBOL, new.account, order_id=order_id), new, mode)


def test_cancel_replace_moves_an_order():
    engine = new_engine()
    engine.submit(buy("0.1", "59000", cid="bot-1"), NOW)
    events = engine.submit(replace_order(1, buy("0.2", "59500", cid="bot-1")), NOW)
    assert kinds(events) == ["Canceled", "Accepted"]
    assert events[0] == Canceled(1, 1, qty("0.1"), NOW)
    assert accepted(events[1:]).order_id == 2
    assert engine.depth(SYMBOL)[0] == [Level(px("59500"), qty("0.2"))]


def test_cancel_replace_whose_new_order_fails_a_filter_does_nothing():
    engine = new_engine()
    engine.submit(buy("0.1", "59000"), NOW)
    events = engine.submit(replace_order(1, buy("0.00001", "59000")), NOW)
    assert rejected(events) == Rejected(-1013, "Filter failure: NOTIONAL")
    assert engine.depth(SYMBOL)[0] == [Level(px("59000"), qty("0.1"))]


def test_cancel_replace_stop_on_failure():
    engine = new_engine()
    events = engine.submit(replace_order(7, buy("0.1", "59000")), NOW)
    assert events == [
        ReplaceFailed(
            -2022, "Order cancel-replace failed.", "FAILURE", "NOT_ATTEMPTED", UNKNOWN, None
        )
    ]
    assert engine.depth(SYMBOL) == ([], [])


def test_cancel_replace_allow_failure_places_anyway():
    engine = new_engine()
    events = engine.submit(replace_order(7, buy("0.1", "59000"), ALLOW), NOW)
    assert kinds(events) == ["Accepted", "ReplaceFailed"]
    assert events[-1] == ReplaceFailed(
        -2021, "Order cancel-replace partially failed.", "FAILURE", "SUCCESS", UNKNOWN, None
    )


def test_cancel_replace_whose_new_order_is_refused_by_the_engine():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(buy("0.1", "59000"), NOW)
    maker = buy("0.1", "60000", kind=OrderType.LIMIT_MAKER, tif=None)
    would_take = Rejected(-2010, "Order would immediately match and take.")
    events = engine.submit(replace_order(2, maker), NOW)
    assert kinds(events) == ["Canceled", "ReplaceFailed"]
    assert events[-1] == ReplaceFailed(
        -2021, "Order cancel-replace partially failed.", "SUCCESS", "FAILURE", None, would_take
    )
    events = engine.submit(replace_order(2, maker, ALLOW), NOW)
    assert events == [
        ReplaceFailed(
            -2022, "Order cancel-replace failed.", "FAILURE", "FAILURE", UNKNOWN, would_take
        )
    ]


def test_cancel_replace_parts_must_agree():
    engine = new_engine()
    command = CancelReplace(CancelOrder(SYMBOL, 2, order_id=1), buy("0.1", "59000", account=1))
    assert rejected(engine.submit(command, NOW)).code == -1130


def test_cancel_replace_can_be_switched_off():
    engine = Engine([replace(BTC, cancel_replace_allowed=False)])
    assert rejected(engine.submit(replace_order(1, buy("0.1", "59000")), NOW)) == Rejected(
        -2010, "Order cancel-replace is not supported for this symbol."
    )


def test_cancel_replace_with_a_taking_new_order():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(buy("0.1", "59000"), NOW)
    events = engine.submit(replace_order(2, buy("0.1", "60000")), NOW)
    assert kinds(events) == ["Canceled", "Accepted", "Trade"]
    assert isinstance(events[1], Accepted)

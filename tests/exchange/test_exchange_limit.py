"""LIMIT orders and time in force: GTC, IOC, FOK, and LIMIT_MAKER (post-only)."""

from __future__ import annotations

from exchange_support import (
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
    trades,
)
from sandex.exchange import (
    Expired,
    Level,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Rejected,
    Side,
    TimeInForce,
    Trade,
    outcome,
)

IOC, FOK = TimeInForce.IOC, TimeInForce.FOK


def test_a_gtc_order_that_does_not_cross_rests():
    engine = new_engine()
    events = engine.submit(buy("0.5", "60000"), NOW)
    assert kinds(events) == ["Accepted"]
    first = accepted(events)
    assert first.order_id == 1 and first.working and first.time == NOW
    assert engine.depth(SYMBOL) == ([Level(px("60000"), qty("0.5"))], [])


def test_order_ids_and_trade_ids_count_up_per_symbol():
    engine = new_engine()
    assert accepted(engine.submit(sell("1", "60000", account=2), NOW)).order_id == 1
    events = engine.submit(buy("0.4", "60000"), NOW)
    assert accepted(events).order_id == 2
    assert trades(events)[0].trade_id == 1
    events = engine.submit(buy("0.4", "60000"), NOW)
    assert trades(events)[0].trade_id == 2
    other = PlaceOrder(
        "ETHUSDT", 1, Side.BUY, OrderType.LIMIT, 10_000, 300_000, TimeInForce.GTC
    )  # 1 ETH at 3000
    assert accepted(engine.submit(other, NOW)).order_id == 1


def test_a_crossing_order_trades_at_the_makers_price():
    engine = new_engine()
    engine.submit(sell("0.5", "60000", account=2), NOW)
    events = engine.submit(buy("0.5", "60100"), NOW + 1)
    assert kinds(events) == ["Accepted", "Trade"]
    trade = trades(events)[0]
    assert trade == Trade(
        trade_id=1,
        price=px("60000"),
        quantity=qty("0.5"),
        taker_order_id=2,
        maker_order_id=1,
        taker_account=1,
        maker_account=2,
        taker_side=Side.BUY,
        taker_remaining=0,
        maker_remaining=0,
        time=NOW + 1,
    )
    assert engine.depth(SYMBOL) == ([], [])
    assert engine.last_price(SYMBOL) == px("60000")


def test_a_taker_sweeps_levels_best_price_first_then_rests():
    engine = new_engine()
    engine.submit(sell("0.1", "60002", account=2), NOW)
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(sell("0.1", "60001", account=2), NOW)
    engine.submit(sell("0.1", "60003", account=2), NOW)
    events = engine.submit(buy("0.35", "60002"), NOW)
    fills = [(t.price, t.quantity, t.maker_order_id) for t in trades(events)]
    assert fills == [
        (px("60000"), qty("0.1"), 2),
        (px("60001"), qty("0.1"), 3),
        (px("60002"), qty("0.1"), 1),
    ]
    assert [t.taker_remaining for t in trades(events)] == [qty("0.25"), qty("0.15"), qty("0.05")]
    # the rest of the buy rests at its limit; the 60003 ask is untouched
    assert engine.depth(SYMBOL) == (
        [Level(px("60002"), qty("0.05"))],
        [Level(px("60003"), qty("0.1"))],
    )
    assert outcome(events, 5, qty("0.35")).status is OrderStatus.PARTIALLY_FILLED


def test_time_priority_within_a_level():
    engine = new_engine()
    for account in (2, 3, 4):
        engine.submit(sell("0.1", "60000", account=account), NOW)
    events = engine.submit(buy("0.15", "60000"), NOW)
    assert [(t.maker_account, t.quantity, t.maker_remaining) for t in trades(events)] == [
        (2, qty("0.1"), 0),
        (3, qty("0.05"), qty("0.05")),
    ]
    events = engine.submit(buy("0.1", "60000"), NOW)
    assert [t.maker_account for t in trades(events)] == [3, 4]


def test_sell_taker_against_bids():
    engine = new_engine()
    engine.submit(buy("0.2", "59990", account=2), NOW)
    engine.submit(buy("0.2", "60000", account=3), NOW)
    events = engine.submit(sell("0.3", "59990"), NOW)
    assert [(t.price, t.maker_account, t.taker_side) for t in trades(events)] == [
        (px("60000"), 3, Side.SELL),
        (px("59990"), 2, Side.SELL),
    ]
    assert engine.best_bid(SYMBOL) == Level(px("59990"), qty("0.1"))
    assert engine.best_ask(SYMBOL) is None


def test_ioc_fills_what_it_can_and_expires_the_rest():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    events = engine.submit(buy("0.3", "60000", tif=IOC), NOW)
    assert kinds(events) == ["Accepted", "Trade", "Expired"]
    assert events[-1] == Expired(2, 1, qty("0.2"), False, NOW)
    assert outcome(events, 2, qty("0.3")).status is OrderStatus.EXPIRED
    assert engine.depth(SYMBOL) == ([], [])


def test_ioc_that_does_not_cross_expires_whole():
    engine = new_engine()
    events = engine.submit(buy("0.3", "60000", tif=IOC), NOW)
    assert kinds(events) == ["Accepted", "Expired"]
    assert events[-1] == Expired(1, 1, qty("0.3"), False, NOW)
    assert engine.depth(SYMBOL) == ([], [])


def test_fok_fills_completely_across_levels():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(sell("0.2", "60001", account=2), NOW)
    events = engine.submit(buy("0.3", "60001", tif=FOK), NOW)
    assert kinds(events) == ["Accepted", "Trade", "Trade"]
    assert outcome(events, 3, qty("0.3")).status is OrderStatus.FILLED


def test_fok_that_cannot_fill_completely_expires_without_trading():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(sell("0.2", "60002", account=2), NOW)
    events = engine.submit(buy("0.3", "60001", tif=FOK), NOW)
    assert kinds(events) == ["Accepted", "Expired"]
    assert events[-1] == Expired(3, 1, qty("0.3"), False, NOW)
    assert engine.depth(SYMBOL)[1] == [
        Level(px("60000"), qty("0.1")),
        Level(px("60002"), qty("0.2")),
    ]
    assert engine.last_price(SYMBOL) is None


def test_fok_that_does_not_cross_expires():
    engine = new_engine()
    events = engine.submit(buy("0.3", "60001", tif=FOK), NOW)
    assert kinds(events) == ["Accepted", "Expired"]


def test_limit_maker_rests_when_it_would_not_take():
    engine = new_engine()
    engine.submit(sell("0.1", "60001", account=2), NOW)
    events = engine.submit(buy("0.1", "60000", kind=OrderType.LIMIT_MAKER, tif=None), NOW)
    assert kinds(events) == ["Accepted"]
    assert engine.best_bid(SYMBOL) == Level(px("60000"), qty("0.1"))


def test_limit_maker_that_would_take_is_rejected():
    engine = new_engine()
    engine.submit(sell("0.1", "60001", account=2), NOW)
    for price in ("60001", "60005"):
        events = engine.submit(buy("0.1", price, kind=OrderType.LIMIT_MAKER, tif=None), NOW)
        assert rejected(events) == Rejected(-2010, "Order would immediately match and take.")
    engine.submit(buy("0.1", "59990", account=2), NOW)
    events = engine.submit(sell("0.1", "59990", kind=OrderType.LIMIT_MAKER, tif=None), NOW)
    assert rejected(events).msg == "Order would immediately match and take."
    # nothing was numbered for the rejected orders
    assert accepted(engine.submit(buy("0.1", "100"), NOW)).order_id == 3


def test_a_rejected_order_changes_nothing():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    before = engine.snapshot(SYMBOL)
    assert kinds(engine.submit(buy("0.1", "60000", tif=None), NOW)) == ["Rejected"]
    assert engine.snapshot(SYMBOL) == before

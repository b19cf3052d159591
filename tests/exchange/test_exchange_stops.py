"""Stop and take-profit orders: where they may sit, and what triggers them (the last trade)."""

from __future__ import annotations

import pytest

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
    stop,
    trades,
)
from sandex.exchange import (
    Canceled,
    CancelOrder,
    Engine,
    Level,
    OrderStatus,
    OrderType,
    Rejected,
    Side,
    Triggered,
    outcome,
)

BUY, SELL = Side.BUY, Side.SELL
SL, SLL = OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT
TP, TPL = OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT
WOULD_TRIGGER = Rejected(-2010, "Stop price would trigger immediately.")


def traded_at(price: str) -> Engine:
    """An engine whose last trade was at ``price`` (accounts 98 and 99)."""
    engine = new_engine()
    engine.submit(sell("0.01", price, account=98), NOW)
    engine.submit(buy("0.01", price, account=99), NOW)
    assert engine.last_price(SYMBOL) == px(price)
    return engine


# Binance: stop price above the market for STOP_LOSS BUY and TAKE_PROFIT SELL,
# below it for STOP_LOSS SELL and TAKE_PROFIT BUY (MARKET and LIMIT versions alike).
@pytest.mark.parametrize(
    ("kind", "side", "good", "bad"),
    [
        (SL, BUY, "60000.01", "60000"),
        (SLL, BUY, "60000.01", "59999.99"),
        (TP, SELL, "60000.01", "60000"),
        (TPL, SELL, "60000.01", "59000"),
        (SL, SELL, "59999.99", "60000"),
        (SLL, SELL, "59999.99", "60000.01"),
        (TP, BUY, "59999.99", "60000"),
        (TPL, BUY, "59999.99", "61000"),
    ],
)
def test_which_side_of_the_market_a_stop_may_sit(kind, side, good, bad):
    engine = traded_at("60000")
    limit_price = "60000" if kind in (SLL, TPL) else None
    events = engine.submit(stop(kind, side, "0.1", bad, limit_price), NOW)
    assert rejected(events) == WOULD_TRIGGER
    events = engine.submit(stop(kind, side, "0.1", good, limit_price), NOW)
    assert kinds(events) == ["Accepted"]
    assert accepted(events).working is False


def test_without_a_trade_any_stop_price_is_accepted():
    engine = new_engine()
    for kind, side in ((SL, BUY), (SL, SELL), (TP, BUY), (TP, SELL)):
        assert kinds(engine.submit(stop(kind, side, "0.1", "60000"), NOW)) == ["Accepted"]
    assert len(engine.pending_stops(SYMBOL)) == 4
    assert engine.depth(SYMBOL) == ([], [])


def test_a_falling_price_triggers_a_stop_loss_limit_sell():
    engine = traded_at("60000")
    placed = engine.submit(stop(SLL, SELL, "0.1", "59500", "59400", account=5), NOW)
    stop_id = accepted(placed).order_id
    engine.submit(buy("0.1", "59500", account=3), NOW)
    engine.submit(buy("0.2", "59450", account=4), NOW)
    events = engine.submit(sell("0.1", "59500", account=6), NOW + 1)
    assert kinds(events) == ["Accepted", "Trade", "Triggered", "Trade"]
    assert events[2] == Triggered(stop_id, 5, NOW + 1)
    fill = trades(events)[1]
    assert (fill.taker_order_id, fill.maker_account, fill.price) == (stop_id, 4, px("59450"))
    assert outcome(events, stop_id, qty("0.1")).status is OrderStatus.FILLED
    assert engine.pending_stops(SYMBOL) == []


def test_a_rising_price_triggers_a_stop_loss_market_buy():
    engine = traded_at("60000")
    placed = engine.submit(stop(SL, BUY, "0.2", "60100", account=5), NOW)
    stop_id = accepted(placed).order_id
    engine.submit(sell("0.1", "60100", account=2), NOW)
    engine.submit(sell("0.5", "60200", account=3), NOW)
    events = engine.submit(buy("0.05", "60100", account=4), NOW)
    assert kinds(events) == ["Accepted", "Trade", "Triggered", "Trade", "Trade"]
    stop_fills = [(t.price, t.quantity) for t in trades(events) if t.taker_order_id == stop_id]
    assert stop_fills == [(px("60100"), qty("0.05")), (px("60200"), qty("0.15"))]


def test_take_profit_sell_triggers_on_the_way_up():
    engine = traded_at("60000")
    stop_id = accepted(engine.submit(stop(TP, SELL, "0.1", "61000", account=5), NOW)).order_id
    engine.submit(buy("1", "60500", account=3), NOW)
    engine.submit(sell("0.1", "61000", account=2), NOW)
    events = engine.submit(buy("0.1", "61000", account=4), NOW)
    assert Triggered(stop_id, 5, NOW) in events
    assert trades(events)[-1].price == px("60500")  # sold into the 60500 bid


def test_triggers_cascade_and_fire_in_stop_price_order():
    engine = traded_at("60000")
    far = accepted(engine.submit(stop(SL, SELL, "0.1", "59000", account=5), NOW)).order_id
    near = accepted(engine.submit(stop(SL, SELL, "0.1", "59900", account=6), NOW)).order_id
    engine.submit(buy("0.1", "59900", account=3), NOW)
    engine.submit(buy("0.1", "59000", account=3), NOW)
    engine.submit(buy("0.1", "58000", account=3), NOW)
    events = engine.submit(sell("0.05", "59900", account=4), NOW)
    # 59900 triggers `near`, whose sale at 59900/59000 triggers `far`, which sells at 59000/58000
    triggered = [e.order_id for e in events if isinstance(e, Triggered)]
    assert triggered == [near, far]
    assert engine.last_price(SYMBOL) == px("58000")


def test_a_triggered_stop_limit_that_cannot_fill_rests_under_its_id():
    engine = traded_at("60000")
    stop_id = accepted(engine.submit(stop(SLL, SELL, "0.1", "59900", "59800", account=5), NOW))
    engine.submit(buy("0.01", "59900", account=3), NOW)
    events = engine.submit(sell("0.01", "59900", account=4), NOW)
    assert kinds(events) == ["Accepted", "Trade", "Triggered"]
    assert engine.best_ask(SYMBOL) == Level(px("59800"), qty("0.1"))
    canceled = engine.submit(CancelOrder(SYMBOL, 5, order_id=stop_id.order_id), NOW)
    assert canceled == [Canceled(stop_id.order_id, 5, qty("0.1"), NOW)]


def test_a_canceled_stop_never_triggers():
    engine = traded_at("60000")
    stop_id = accepted(engine.submit(stop(SL, SELL, "0.1", "59900", account=5), NOW)).order_id
    assert engine.submit(CancelOrder(SYMBOL, 5, order_id=stop_id), NOW) == [
        Canceled(stop_id, 5, qty("0.1"), NOW)
    ]
    engine.submit(buy("0.1", "59900", account=3), NOW)
    events = engine.submit(sell("0.1", "59900", account=4), NOW)
    assert kinds(events) == ["Accepted", "Trade"]


def test_at_most_five_pending_stops_per_account_and_symbol():
    engine = traded_at("60000")
    for n in range(5):
        engine.submit(stop(SL, SELL, "0.1", f"5900{n}", account=5), NOW)
    assert rejected(engine.submit(stop(SL, SELL, "0.1", "58000", account=5), NOW)) == Rejected(
        -1013, "Filter failure: MAX_NUM_ALGO_ORDERS"
    )
    assert kinds(engine.submit(stop(SL, SELL, "0.1", "58000", account=6), NOW)) == ["Accepted"]


def test_stop_price_is_held_to_the_price_filter():
    engine = traded_at("60000")
    order = stop(SL, SELL, "0.1", "59000")._replace(stop_price=px("1000000") + 1)  # above maxPrice
    assert rejected(engine.submit(order, NOW)).msg == "Filter failure: PRICE_FILTER"


def test_canceled_stops_do_not_pile_up_in_the_trigger_heaps():
    engine = traded_at("60000")
    for _ in range(500):
        oid = accepted(engine.submit(stop(SL, SELL, "0.1", "50000", account=5), NOW)).order_id
        engine.submit(CancelOrder(SYMBOL, 5, order_id=oid), NOW)
    state = engine._markets[SYMBOL]
    assert len(state.rising) + len(state.falling) <= 64 + 1
    keep = accepted(engine.submit(stop(SL, SELL, "0.1", "59000", account=5), NOW)).order_id
    engine.submit(buy("0.1", "58000", account=3), NOW)
    events = engine.submit(sell("0.1", "58000", account=4), NOW)
    assert Triggered(keep, 5, NOW) in events

"""The venue's order updates: every execution of a user's order, as it happens, with the
order as it stood right after it (the user data stream's executionReport source)."""

from __future__ import annotations

from exchange_support import NOW, SYMBOL, buy, market, px, qty, sell, stop
from sandex.exchange import (
    CancelOrder,
    OrderStatus,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
    default_symbols,
)
from sandex.exchange.account_events import BalanceDelta, OrderUpdate
from sandex.exchange.order_lists import NewOco, NewOto
from sandex.exchange.venue import MAKER, Venue

UNIT = 10**8
ME, OTHER = 1, 2


def listened() -> tuple[Venue, list[OrderUpdate]]:
    venue = Venue(default_symbols())
    for account in (ME, OTHER, MAKER):
        venue.ledger.credit(account, "USDT", 100_000 * UNIT)
        venue.ledger.credit(account, "BTC", 2 * UNIT)
    updates: list[OrderUpdate] = []
    venue.on_order_update(updates.append)
    return venue, updates


def summary(updates: list[OrderUpdate]) -> list[tuple[int, str, str, int]]:
    return [(u.account, u.execution.value, u.order.status.value, u.order.executed) for u in updates]


def test_a_resting_order_filled_in_two_trades_reports_both_sides_with_their_totals():
    venue, updates = listened()
    resting = venue.place(sell("0.5", "50000", account=ME, cid="mine"), NOW).orders[0]
    venue.place(buy("0.2", "50000", account=OTHER), NOW + 1)
    venue.place(buy("0.3", "50000", account=OTHER), NOW + 2)

    assert summary(updates) == [
        (ME, "NEW", "NEW", 0),
        (OTHER, "NEW", "NEW", 0),
        (OTHER, "TRADE", "FILLED", qty("0.2")),
        (ME, "TRADE", "PARTIALLY_FILLED", qty("0.2")),
        (OTHER, "NEW", "NEW", 0),
        (OTHER, "TRADE", "FILLED", qty("0.3")),
        (ME, "TRADE", "FILLED", qty("0.5")),
    ]
    new = updates[0]
    assert new.order.client_order_id == "mine" and new.fill is None and new.time == NOW
    first, second = updates[3], updates[6]
    assert first.order.order_id == second.order.order_id == resting.order_id
    assert first.time == NOW + 1 and second.time == NOW + 2
    assert first.order.cumulative_quote == px("50000") * qty("0.2")
    assert second.order.cumulative_quote == px("50000") * qty("0.5")
    assert first.fill is not None and second.fill is not None
    assert first.fill.maker and first.fill.quantity == qty("0.2")
    assert first.fill.commission_asset == "USDT" and first.fill.commission > 0
    taker_fill = updates[2].fill
    assert taker_fill is not None and not taker_fill.maker and taker_fill.commission_asset == "BTC"
    assert taker_fill.trade_id == first.fill.trade_id
    assert first.order is not resting and first.order.fills == []  # a copy, as it stood


def test_a_cancel_reports_the_order_canceled():
    venue, updates = listened()
    order = venue.place(buy("0.1", "40000", account=ME), NOW).orders[0]
    venue.cancel(CancelOrder(SYMBOL, ME, order.order_id), NOW + 5)
    assert summary(updates) == [(ME, "NEW", "NEW", 0), (ME, "CANCELED", "CANCELED", 0)]
    assert updates[1].time == NOW + 5


def test_an_ioc_leftover_expires_after_its_trade():
    venue, updates = listened()
    venue.place(sell("0.1", "50000", account=OTHER), NOW)
    venue.place(buy("0.3", "50000", account=ME, tif=TimeInForce.IOC), NOW + 1)
    mine = [u for u in updates if u.account == ME]
    assert summary(mine) == [
        (ME, "NEW", "NEW", 0),
        (ME, "TRADE", "PARTIALLY_FILLED", qty("0.1")),
        (ME, "EXPIRED", "EXPIRED", qty("0.1")),
    ]


def test_self_trade_prevention_expiry_names_the_prevented_match():
    venue, updates = listened()
    maker = venue.place(sell("0.1", "50000", account=ME), NOW).orders[0]
    taker = venue.place(
        buy("0.1", "50000", account=ME, stp=SelfTradePrevention.EXPIRE_TAKER), NOW + 1
    ).orders[0]
    assert summary(updates) == [
        (ME, "NEW", "NEW", 0),
        (ME, "NEW", "NEW", 0),
        (ME, "TRADE_PREVENTION", "EXPIRED_IN_MATCH", 0),
    ]
    expired = updates[2]
    assert expired.order.order_id == taker.order_id
    assert expired.prevented is not None
    assert expired.prevented.maker_order_id == maker.order_id
    assert expired.prevented.taker_prevented == qty("0.1")
    assert expired.order.prevented_match_id == expired.prevented.prevented_match_id


def test_a_stop_is_new_when_placed_and_new_again_working_when_it_triggers():
    venue, updates = listened()
    venue.place(stop(OrderType.STOP_LOSS, Side.SELL, "0.1", "49000", account=ME), NOW)
    venue.place(buy("0.1", "48000", account=OTHER), NOW + 1)  # a bid for the stop to hit
    venue.place(sell("0.01", "49000", account=MAKER), NOW + 2)  # no trade: the bid is lower
    venue.place(buy("0.01", "49000", account=OTHER), NOW + 3)  # trades at 49,000: triggers
    mine = [u for u in updates if u.account == ME]
    assert [(u.execution.value, u.order.working, u.order.status.value) for u in mine] == [
        ("NEW", False, "NEW"),
        ("NEW", True, "NEW"),
        ("TRADE", True, "FILLED"),
    ]
    assert mine[1].order.working_time == NOW + 3


def test_an_oco_whose_take_profit_trades_expires_the_stop_with_its_list_named():
    venue, updates = listened()
    venue.place(sell("0.01", "50000", account=MAKER), NOW)
    venue.place(buy("0.01", "50000", account=OTHER), NOW)  # a last price of 50,000
    updates.clear()
    take = PlaceOrder(
        SYMBOL, ME, Side.SELL, OrderType.LIMIT_MAKER, quantity=qty("0.5"), price=px("55000")
    )
    loss = PlaceOrder(
        SYMBOL,
        ME,
        Side.SELL,
        OrderType.STOP_LOSS_LIMIT,
        quantity=qty("0.5"),
        price=px("44900"),
        stop_price=px("45000"),
        time_in_force=TimeInForce.GTC,
    )
    stop_leg, limit_leg = venue.place_oco(NewOco(take, loss), NOW + 1).orders
    venue.place(buy("0.2", "55000", account=OTHER), NOW + 2)
    mine = [u for u in updates if u.account == ME]
    assert [(u.order.order_id, u.execution.value, u.order.status.value) for u in mine] == [
        (stop_leg.order_id, "NEW", "NEW"),
        (limit_leg.order_id, "NEW", "NEW"),
        (limit_leg.order_id, "TRADE", "PARTIALLY_FILLED"),
        (stop_leg.order_id, "EXPIRED", "EXPIRED"),
    ]
    assert {u.order.order_list_id for u in mine} == {stop_leg.order_list_id}
    assert mine[-1].expiry_reason == "OCO_TRIGGER"


def test_canceling_one_order_of_an_oco_cancels_the_other():
    venue, updates = listened()
    venue.place(sell("0.01", "50000", account=MAKER), NOW)
    venue.place(buy("0.01", "50000", account=OTHER), NOW)
    take = PlaceOrder(
        SYMBOL, ME, Side.SELL, OrderType.LIMIT_MAKER, quantity=qty("0.5"), price=px("55000")
    )
    loss = PlaceOrder(
        SYMBOL, ME, Side.SELL, OrderType.STOP_LOSS, quantity=qty("0.5"), stop_price=px("45000")
    )
    stop_leg, limit_leg = venue.place_oco(NewOco(take, loss), NOW + 1).orders
    updates.clear()
    venue.cancel(CancelOrder(SYMBOL, ME, limit_leg.order_id), NOW + 2)
    assert sorted((u.order.order_id, u.execution.value) for u in updates) == [
        (stop_leg.order_id, "CANCELED"),
        (limit_leg.order_id, "CANCELED"),
    ]


def test_an_otos_pending_order_is_new_only_once_placed_and_names_its_list():
    venue, updates = listened()
    working = PlaceOrder.limit(SYMBOL, ME, Side.BUY, qty("0.5"), px("49000"))
    pending = PlaceOrder(
        SYMBOL, ME, Side.SELL, OrderType.LIMIT_MAKER, quantity=qty("0.5"), price=px("55000")
    )
    first, waiting = venue.place_oto(NewOto(working, pending), NOW).orders
    assert [(u.order.order_id, u.execution.value) for u in updates] == [(first.order_id, "NEW")]
    assert updates[0].order.order_list_id == first.order_list_id is not None
    venue.place(sell("0.5", "49000", account=OTHER), NOW + 1)
    mine = [u for u in updates if u.account == ME]
    assert [(u.order.order_id, u.execution.value, u.order.status.value) for u in mine] == [
        (first.order_id, "NEW", "NEW"),
        (first.order_id, "TRADE", "FILLED"),
        (waiting.order_id, "NEW", "NEW"),
    ]
    placed = mine[-1].order
    assert placed.order_list_id == first.order_list_id and placed.time == NOW
    assert not placed.pending and placed.working


def test_refused_orders_and_the_simulated_accounts_make_no_update():
    venue, updates = listened()
    venue.place(buy("100", "50000", account=ME), NOW)  # -2010: not enough USDT
    venue.place(sell("0.1", "50000", account=MAKER), NOW)
    venue.place(market(Side.BUY, "0.1", account=OTHER), NOW + 1)
    assert summary(updates) == [
        (OTHER, "NEW", "NEW", 0),
        (OTHER, "TRADE", "FILLED", qty("0.1")),
    ]


def test_credits_of_users_are_heard_system_funding_is_not():
    venue = Venue(default_symbols())
    deltas: list[BalanceDelta] = []
    venue.on_credit(deltas.append)
    venue.credit(ME, "USDT", 5 * UNIT, now=NOW)
    venue.credit(MAKER, "USDT", 5 * UNIT)
    venue.credit(OTHER, "BTC", UNIT)
    assert deltas == [BalanceDelta(ME, "USDT", 5 * UNIT, NOW), BalanceDelta(OTHER, "BTC", UNIT, 0)]


def test_without_a_listener_orders_trade_as_before():
    venue = Venue(default_symbols())
    venue.ledger.credit(ME, "BTC", UNIT)
    venue.ledger.credit(OTHER, "USDT", 100_000 * UNIT)
    venue.place(sell("0.1", "50000", account=ME), NOW)
    taker = venue.place(buy("0.1", "50000", account=OTHER), NOW + 1).orders[0]
    assert taker.status is OrderStatus.FILLED and len(taker.fills) == 1
    assert venue._held_updates is None

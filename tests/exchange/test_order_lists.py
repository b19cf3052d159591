"""OCO order lists in the venue: a take-profit and a stop-loss sharing one hold; when
one trades (even partly) or triggers, the other expires; a cancel of either cancels
both; and the ledger's locked balance is always what the open orders hold."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange_support import NOW, SYMBOL, buy, px, qty, sell
from sandex.exchange import (
    CancelAll,
    CancelOrder,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
    default_symbols,
)
from sandex.exchange.ledger import FEES, FUNDING
from sandex.exchange.order_lists import ContingencyType, NewOco, NewOto, NewOtoco
from sandex.exchange.venue import Venue

UNIT = 10**8
ME, OTHER, THIRD = 1, 2, 3


def funded() -> Venue:
    venue = Venue(default_symbols())
    for account in (ME, OTHER, THIRD):
        venue.ledger.credit(account, "USDT", 100_000 * UNIT)
        venue.ledger.credit(account, "BTC", 2 * UNIT)
    # a last price of 50,000
    venue.place(sell("0.01", "50000", account=OTHER), NOW)
    venue.place(buy("0.01", "50000", account=ME), NOW)
    return venue


def _leg(
    side: Side,
    kind: OrderType,
    quantity: str,
    *,
    price: str | None = None,
    stop: str | None = None,
    tif: TimeInForce | None = None,
    cid: str | None = None,
) -> PlaceOrder:
    return PlaceOrder(
        SYMBOL,
        ME,
        side,
        kind,
        quantity=qty(quantity),
        price=px(price) if price else None,
        time_in_force=tif,
        stop_price=px(stop) if stop else None,
        client_order_id=cid,
    )


def sell_oco(
    quantity: str = "0.5",
    take: str = "55000",
    stop: str = "45000",
    limit: str | None = "44900",
    cid: str | None = None,
) -> NewOco:
    above = _leg(Side.SELL, OrderType.LIMIT_MAKER, quantity, price=take)
    below = (
        _leg(
            Side.SELL,
            OrderType.STOP_LOSS_LIMIT,
            quantity,
            price=limit,
            stop=stop,
            tif=TimeInForce.GTC,
        )
        if limit
        else _leg(Side.SELL, OrderType.STOP_LOSS, quantity, stop=stop)
    )
    return NewOco(above, below, cid)


def assert_ledger_consistent(venue: Venue) -> None:
    by_hold = venue.ledger.locked_by_holds()
    for account in (ME, OTHER):
        for asset in ("BTC", "USDT"):
            assert venue.ledger.balance(account, asset).locked == by_hold.get((account, asset), 0)
    held = sum(o.held for o in venue.orders.values() if o.account == ME and o.hold_asset == "BTC")
    assert held == venue.ledger.balance(ME, "BTC").locked
    assert all(total == 0 for total in venue.ledger.totals().values())


def test_a_sell_oco_holds_its_quantity_once_and_numbers_the_stop_first():
    venue = funded()
    free = venue.ledger.balance(ME, "BTC").free
    placed = venue.place_oco(sell_oco(cid="tp-sl"), NOW)
    assert placed.rejected is None
    stop_leg, limit_leg = placed.orders
    assert stop_leg.type is OrderType.STOP_LOSS_LIMIT and not stop_leg.working
    assert limit_leg.type is OrderType.LIMIT_MAKER and limit_leg.working
    assert stop_leg.order_id < limit_leg.order_id
    assert stop_leg.order_list_id == limit_leg.order_list_id is not None
    assert venue.ledger.balance(ME, "BTC").locked == UNIT // 2  # once, not twice
    assert venue.ledger.balance(ME, "BTC").free == free - UNIT // 2
    [order_list] = venue.open_order_lists(ME)
    assert order_list.list_client_order_id == "tp-sl"
    assert order_list.order_ids == (stop_leg.order_id, limit_leg.order_id)
    assert_ledger_consistent(venue)


def test_an_oco_the_balance_covers_once_but_not_twice_is_accepted():
    venue = funded()
    have = venue.ledger.balance(ME, "BTC").free
    quantity = str(Decimal(have) / UNIT)
    assert venue.place_oco(sell_oco(quantity=quantity), NOW).rejected is None
    assert venue.ledger.balance(ME, "BTC").free == 0


def test_a_partial_fill_of_the_take_profit_expires_the_stop_loss():
    venue = funded()
    stop_leg, limit_leg = venue.place_oco(sell_oco(), NOW).orders
    venue.place(buy("0.2", "55000", account=OTHER), NOW + 1)
    assert limit_leg.status is OrderStatus.PARTIALLY_FILLED
    assert stop_leg.status is OrderStatus.EXPIRED
    assert venue.engine.pending_stops(SYMBOL, ME) == []
    assert venue.ledger.balance(ME, "BTC").locked == qty("0.3") * 1000
    assert_ledger_consistent(venue)
    assert [ol.list_id for ol in venue.open_order_lists(ME)] == [limit_leg.order_list_id]
    venue.place(buy("0.3", "55000", account=OTHER), NOW + 2)
    assert limit_leg.status is OrderStatus.FILLED
    assert venue.open_order_lists(ME) == []
    assert venue.ledger.balance(ME, "BTC").locked == 0
    assert_ledger_consistent(venue)


@pytest.mark.parametrize("limit", ["44000", None])
def test_the_stop_loss_triggering_takes_the_hold_and_expires_the_take_profit(limit):
    venue = funded()
    stop_leg, limit_leg = venue.place_oco(sell_oco(limit=limit), NOW).orders
    venue.place(buy("1", "44000", account=OTHER), NOW + 1)  # bids for the stop to hit
    venue.place(sell("0.01", "45000", account=OTHER), NOW + 2)  # trade at 45,000
    venue.place(buy("0.01", "45000", account=THIRD), NOW + 2)
    assert stop_leg.working
    assert limit_leg.status is OrderStatus.EXPIRED
    assert stop_leg.status is OrderStatus.FILLED
    assert venue.engine.open_orders(SYMBOL, ME) == []
    assert venue.ledger.balance(ME, "BTC").locked == 0
    assert_ledger_consistent(venue)
    assert venue.open_order_lists(ME) == []


def test_the_stop_loss_triggered_but_resting_keeps_the_hold():
    venue = funded()
    stop_leg, limit_leg = venue.place_oco(sell_oco(stop="45000", limit="46000"), NOW).orders
    venue.place(sell("0.01", "45000", account=OTHER), NOW + 1)
    venue.place(buy("0.01", "45000", account=THIRD), NOW + 1)
    assert stop_leg.working and stop_leg.status is OrderStatus.NEW  # resting at 46,000
    assert limit_leg.status is OrderStatus.EXPIRED
    assert stop_leg.held == UNIT // 2 and limit_leg.held == 0
    assert venue.ledger.balance(ME, "BTC").locked == UNIT // 2
    assert_ledger_consistent(venue)


@pytest.mark.parametrize("which", [0, 1])
def test_canceling_either_order_cancels_the_list(which):
    venue = funded()
    free = venue.ledger.balance(ME, "BTC").free
    legs = venue.place_oco(sell_oco(), NOW).orders
    venue.cancel(CancelOrder(SYMBOL, ME, legs[which].order_id), NOW + 1)
    assert [leg.status for leg in legs] == [OrderStatus.CANCELED] * 2
    assert venue.ledger.balance(ME, "BTC").free == free
    assert venue.engine.open_orders(SYMBOL, ME) == []
    assert venue.engine.pending_stops(SYMBOL, ME) == []
    assert venue.open_order_lists(ME) == []


def test_cancel_order_list_and_cancel_all():
    venue = funded()
    legs = venue.place_oco(sell_oco(cid="a"), NOW).orders
    found, result = venue.cancel_order_list(SYMBOL, ME, None, "a", NOW + 1)
    assert found is not None and result.rejected is None
    assert [o.status for o in result.orders] == [OrderStatus.CANCELED] * 2
    assert venue.cancel_order_list(SYMBOL, ME, found.list_id, None, NOW + 2)[1].rejected
    legs = venue.place_oco(sell_oco(cid="a"), NOW + 3).orders  # the id is free again
    venue.cancel_all(CancelAll(SYMBOL, ME), NOW + 4)
    assert [leg.status for leg in legs] == [OrderStatus.CANCELED] * 2
    assert_ledger_consistent(venue)


def test_a_buy_oco_holds_the_larger_of_its_two_orders():
    venue = funded()
    above = _leg(
        Side.BUY, OrderType.STOP_LOSS_LIMIT, "0.1", price="56000", stop="55000", tif=TimeInForce.GTC
    )
    below = _leg(Side.BUY, OrderType.LIMIT_MAKER, "0.1", price="45000")
    stop_leg, limit_leg = venue.place_oco(NewOco(above, below), NOW).orders
    assert venue.ledger.balance(ME, "USDT").locked == 5_600 * UNIT
    assert limit_leg.held == 5_600 * UNIT and stop_leg.held == 0
    venue.place(sell("0.1", "45000", account=OTHER), NOW + 1)
    assert limit_leg.status is OrderStatus.FILLED and stop_leg.status is OrderStatus.EXPIRED
    assert venue.ledger.balance(ME, "USDT").locked == 0
    assert_ledger_consistent(venue)


@pytest.mark.parametrize(
    ("oco", "code"),
    [
        (sell_oco(take="49000"), -2010),  # take-profit below the last price
        (sell_oco(stop="51000", limit="51000"), -2010),  # stop above the last price
        (NewOco(sell_oco().below, sell_oco().above), -1197),  # stop above, limit below
        (NewOco(sell_oco().above, sell_oco().above), -1168),
        (
            NewOco(sell_oco().above, _leg(Side.SELL, OrderType.LIMIT, "0.5", price="1")),
            -1158,
        ),
        (sell_oco(quantity="5"), -2010),  # more than the account has
    ],
)
def test_invalid_ocos_are_refused_and_change_nothing(oco, code):
    venue = funded()
    venue.drain()
    before = venue.ledger.balance(ME, "BTC")
    placed = venue.place_oco(oco, NOW)
    assert placed.rejected is not None and placed.rejected.code == code
    assert venue.ledger.balance(ME, "BTC") == before
    assert not venue.pending()
    assert venue.open_order_lists(ME) == []


def test_a_list_client_id_in_use_is_refused():
    venue = funded()
    assert venue.place_oco(sell_oco(quantity="0.1", cid="x"), NOW).rejected is None
    refused = venue.place_oco(sell_oco(quantity="0.1", cid="x"), NOW).rejected
    assert refused is not None and refused.code == -2010


def test_restore_keeps_the_list_and_its_shared_hold():
    venue = funded()
    stop_leg, limit_leg = venue.place_oco(sell_oco(cid="keep"), NOW).orders
    changes = venue.drain()
    assert list(changes.order_lists) == [stop_leg.order_list_id]
    balances = [
        (a, asset, b.free, b.locked)
        for a in (ME, OTHER, THIRD, FUNDING, FEES)
        for asset, b in venue.ledger.balances(a).items()
    ]
    books = [(SYMBOL, *venue.book_state(SYMBOL))]
    restored = Venue(default_symbols())
    restored.restore(
        balances=balances,
        orders=[stop_leg, limit_leg],
        books=books,
        order_lists=list(changes.order_lists.values()),
        next_list_id=stop_leg.order_list_id + 1,
    )
    [order_list] = restored.open_order_lists(ME)
    assert order_list.list_client_order_id == "keep"
    restored.place(buy("1", "44000", account=OTHER), NOW + 1)
    restored.place(sell("0.01", "45000", account=OTHER), NOW + 2)
    restored.place(buy("0.01", "45000", account=THIRD), NOW + 2)
    legs = restored.list_orders(order_list)
    assert [o.status for o in legs] == [OrderStatus.NEW, OrderStatus.EXPIRED]
    assert legs[0].working and legs[0].held == UNIT // 2  # resting at 44,900 with the hold
    assert_ledger_consistent(restored)
    assert restored.place_oco(sell_oco("0.1", stop="40000", limit="40000"), NOW + 3).orders[
        0
    ].order_list_id == (order_list.list_id + 1)


# -- properties: random flows with OCOs keep the ledger and the lists consistent ------------

_prices = st.integers(49_900, 50_100).map(lambda p: px(str(p)))
_qtys = st.integers(1, 30).map(lambda q: qty(str(Decimal(q) / 100)))
_accounts = st.sampled_from([ME, OTHER, THIRD])
_sides = st.sampled_from([Side.BUY, Side.SELL])


@st.composite
def _ocos(draw: st.DrawFn) -> NewOco:
    account, side, quantity = draw(_accounts), draw(_sides), draw(_qtys)
    take, trigger, limit = draw(_prices), draw(_prices), draw(_prices)
    stop_kind = draw(st.sampled_from([OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT]))
    profit_kind = draw(
        st.sampled_from([OrderType.LIMIT_MAKER, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT])
    )
    with_limit = stop_kind is OrderType.STOP_LOSS_LIMIT
    stop_leg = PlaceOrder(
        SYMBOL, account, side, stop_kind, quantity=quantity,
        price=limit if with_limit else None,
        time_in_force=TimeInForce.GTC if with_limit else None, stop_price=trigger,
    )  # fmt: skip
    profit_leg = PlaceOrder(
        SYMBOL, account, side, profit_kind, quantity=quantity,
        price=None if profit_kind is OrderType.TAKE_PROFIT else take,
        time_in_force=TimeInForce.GTC if profit_kind is OrderType.TAKE_PROFIT_LIMIT else None,
        stop_price=take if profit_kind is not OrderType.LIMIT_MAKER else None,
    )  # fmt: skip
    if side is Side.SELL:
        return NewOco(profit_leg, stop_leg)
    return NewOco(stop_leg, profit_leg)


_limits = st.builds(
    lambda account, side, price, quantity: PlaceOrder.limit(SYMBOL, account, side, quantity, price),
    _accounts,
    _sides,
    _prices,
    _qtys,
)
_markets = st.builds(
    lambda account, side, quantity: PlaceOrder(
        SYMBOL, account, side, OrderType.MARKET, quantity=quantity
    ),
    _accounts,
    _sides,
    _qtys,
)
_cancels = st.builds(lambda account, oid: ("cancel", account, oid), _accounts, st.integers(1, 60))
_list_cancels = st.builds(
    lambda account, lid: ("list", account, lid), _accounts, st.integers(1, 10)
)


@st.composite
def _otos(draw: st.DrawFn) -> NewOto:
    account, side = draw(_accounts), draw(_sides)
    working = PlaceOrder.limit(SYMBOL, account, side, draw(_qtys), draw(_prices))
    other = Side.SELL if side is Side.BUY else Side.BUY
    kind = draw(st.sampled_from([OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.MARKET]))
    pending = PlaceOrder(
        SYMBOL, account, other, kind, quantity=draw(_qtys),
        price=None if kind is OrderType.MARKET else draw(_prices),
        time_in_force=TimeInForce.GTC if kind is OrderType.LIMIT else None,
    )  # fmt: skip
    return NewOto(working, pending)


@st.composite
def _otocos(draw: st.DrawFn) -> NewOtoco:
    oco = draw(_ocos())
    side = Side.BUY if oco.above.side is Side.SELL else Side.SELL
    working = PlaceOrder.limit(SYMBOL, oco.above.account, side, draw(_qtys), draw(_prices))
    return NewOtoco(working, oco.above, oco.below)


_flows = st.lists(
    st.one_of(
        _ocos(),
        _ocos(),
        _otos(),
        _otocos(),
        _limits,
        _limits,
        _markets,
        _cancels,
        _list_cancels,
    ),
    max_size=40,
)


def _check(venue: Venue) -> None:
    ledger = venue.ledger
    by_hold = ledger.locked_by_holds()
    for account in (ME, OTHER, THIRD):
        for asset in ("BTC", "USDT"):
            assert ledger.balance(account, asset).locked == by_hold.get((account, asset), 0)
    for order in venue.orders.values():
        if order.is_open:
            assert ledger.held(order.key) == order.held, order
    assert all(total == 0 for total in ledger.totals().values())
    for key_id in (ME, OTHER, THIRD):  # each account places with key id = its number
        mine = [o for o in venue.orders.values() if o.key_id == key_id and o.is_open]
        assert venue.open_orders_of_key(key_id) == len(mine)
    for order_list in venue.open_order_lists(ME) + venue.open_order_lists(OTHER):
        legs = venue.list_orders(order_list)
        if order_list.contingency_type is ContingencyType.OTO:
            first, *later = (venue.orders.get((SYMBOL, i)) for i in order_list.order_ids)
            for second in later:
                if second is not None and second.is_open:  # waits while the first works
                    assert second.pending == (first is not None and first.is_open), legs
            continue
        done = [leg for leg in legs if not leg.is_open or leg.executed or leg.working]
        if any(leg.executed or not leg.is_open for leg in legs):
            # one order traded or ended: no other is still waiting to
            assert all(not leg.is_open or leg.executed or leg.working for leg in legs), legs
        assert done or sum(leg.held for leg in legs) > 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_flows)
def test_random_flows_with_ocos_keep_every_hold_and_list_consistent(flow):
    venue = funded()
    for n, step in enumerate(flow, start=1):
        now = NOW + n
        if isinstance(step, NewOco):
            venue.place_oco(step, now, key_id=step.above.account)
        elif isinstance(step, NewOto):
            venue.place_oto(step, now, key_id=step.working.account)
        elif isinstance(step, NewOtoco):
            venue.place_otoco(step, now, key_id=step.working.account)
        elif isinstance(step, PlaceOrder):
            venue.place(step, now, key_id=step.account)
        elif step[0] == "cancel":
            venue.cancel(CancelOrder(SYMBOL, step[1], step[2]), now)
        else:
            venue.cancel_order_list(SYMBOL, step[1], step[2], None, now)
        _check(venue)
        if n % 7 == 0:
            venue.drain()


# -- OTO: a working order, and a pending one placed once it fills ------------------------------


def buy_then_take_profit(cid: str | None = None, working_price: str = "49000") -> NewOto:
    """Buy 0.5 BTC at ``working_price``; once bought, sell it at 55,000."""
    working = PlaceOrder.limit(SYMBOL, ME, Side.BUY, qty("0.5"), px(working_price))
    pending = _leg(Side.SELL, OrderType.LIMIT_MAKER, "0.5", price="55000", cid="tp")
    return NewOto(working, pending, cid)


def test_an_oto_places_its_pending_order_once_the_working_order_fills():
    venue = funded()
    btc = venue.ledger.balance(ME, "BTC")
    placed = venue.place_oto(buy_then_take_profit(cid="oto"), NOW)
    assert placed.rejected is None
    working, waiting = placed.orders
    assert waiting.pending and waiting.order_id == working.order_id + 1
    assert waiting.order_list_id == working.order_list_id is not None
    assert venue.ledger.balance(ME, "BTC") == btc  # the pending order holds nothing yet
    assert venue.engine.open_orders(SYMBOL, ME) == [venue.engine.open_orders(SYMBOL, ME)[0]]
    assert venue.order_by_client_id(SYMBOL, ME, "tp") is waiting
    other = venue.place(buy("0.01", "48000", account=OTHER), NOW + 1).orders[0]
    assert other.order_id == waiting.order_id + 1  # the pending order's id stays its own

    venue.place(sell("0.2", "49000", account=OTHER), NOW + 2)
    assert working.status is OrderStatus.PARTIALLY_FILLED and waiting.pending
    venue.place(sell("0.3", "49000", account=OTHER), NOW + 3)
    assert working.status is OrderStatus.FILLED
    placed_tp = venue.order(SYMBOL, ME, waiting.order_id)
    assert placed_tp is not None and not placed_tp.pending and placed_tp.is_open
    assert placed_tp.order_list_id == working.order_list_id
    assert [o.order_id for o in venue.engine.open_orders(SYMBOL, ME)] == [waiting.order_id]
    assert venue.ledger.balance(ME, "BTC").locked == UNIT // 2
    assert_ledger_consistent(venue)
    venue.place(buy("0.5", "55000", account=THIRD), NOW + 4)
    assert placed_tp.status is OrderStatus.FILLED
    assert venue.open_order_lists(ME) == []


def test_an_oto_whose_working_order_fills_at_once_places_the_pending_order_at_once():
    venue = funded()
    venue.place(sell("0.5", "50000", account=OTHER), NOW)
    working, _ = venue.place_oto(buy_then_take_profit(working_price="50000"), NOW + 1).orders
    assert working.status is OrderStatus.FILLED
    placed_tp = venue.order(SYMBOL, ME, working.order_id + 1)
    assert placed_tp is not None and placed_tp.is_open and not placed_tp.pending
    assert_ledger_consistent(venue)


@pytest.mark.parametrize("which", [0, 1])
def test_canceling_either_order_of_an_oto_cancels_both(which):
    venue = funded()
    usdt = venue.ledger.balance(ME, "USDT")
    legs = venue.place_oto(buy_then_take_profit(), NOW).orders
    canceled = venue.cancel(CancelOrder(SYMBOL, ME, legs[which].order_id), NOW + 1)
    assert canceled.rejected is None and canceled.orders[0] is legs[which]
    assert [leg.status for leg in legs] == [OrderStatus.CANCELED] * 2
    assert venue.ledger.balance(ME, "USDT") == usdt
    assert venue.open_order_lists(ME) == []
    assert venue.engine.open_orders(SYMBOL, ME) == []


def test_cancel_order_list_cancels_an_oto():
    venue = funded()
    legs = venue.place_oto(buy_then_take_profit(cid="o"), NOW).orders
    found, result = venue.cancel_order_list(SYMBOL, ME, None, "o", NOW + 1)
    assert found is not None and result.rejected is None
    assert [leg.status for leg in legs] == [OrderStatus.CANCELED] * 2
    assert venue.open_order_lists(ME) == []


def test_an_oto_restores_with_its_pending_order_waiting():
    venue = funded()
    working, waiting = venue.place_oto(buy_then_take_profit(), NOW).orders
    changes = venue.drain()
    balances = [
        (a, asset, b.free, b.locked)
        for a in (ME, OTHER, THIRD, FUNDING, FEES)
        for asset, b in venue.ledger.balances(a).items()
    ]
    restored = Venue(default_symbols())
    restored.restore(
        balances=balances,
        orders=[dataclasses.replace(working), dataclasses.replace(waiting, pending=False)],
        books=[(SYMBOL, *venue.book_state(SYMBOL))],
        order_lists=list(changes.order_lists.values()),
    )
    again = restored.order(SYMBOL, ME, waiting.order_id)
    assert again is not None and again.pending
    assert restored.engine.pending_stops(SYMBOL, ME) == []
    assert [o.order_id for o in restored.engine.open_orders(SYMBOL, ME)] == [working.order_id]
    restored.place(sell("0.5", "49000", account=OTHER), NOW + 1)
    placed_tp = restored.order(SYMBOL, ME, waiting.order_id)
    assert placed_tp is not None and placed_tp.is_open and not placed_tp.pending
    assert_ledger_consistent(restored)


def test_an_oto_with_a_market_working_order_is_refused():
    venue = funded()
    oto = buy_then_take_profit()
    market = PlaceOrder(SYMBOL, ME, Side.BUY, OrderType.MARKET, quantity=qty("0.5"))
    refused = venue.place_oto(NewOto(market, oto.pending), NOW).rejected
    assert refused is not None and refused.code == -1158
    assert not venue.open_order_lists(ME)


# -- OTOCO: a working order, and a pending OCO pair placed once it fills ---------------------


def buy_then_protect(cid: str | None = None) -> NewOtoco:
    """Buy 0.5 BTC at 49,000; once bought, protect it: take profit at 55,000, stop at 45,000."""
    working = PlaceOrder.limit(SYMBOL, ME, Side.BUY, qty("0.5"), px("49000"))
    oco = sell_oco()
    return NewOtoco(working, oco.above, oco.below, cid)


def test_an_otoco_places_its_oco_pair_once_the_working_order_fills():
    venue = funded()
    placed = venue.place_otoco(buy_then_protect("x"), NOW)
    assert placed.rejected is None
    working, stop_leg, limit_leg = placed.orders
    assert stop_leg.type is OrderType.STOP_LOSS_LIMIT and limit_leg.type is OrderType.LIMIT_MAKER
    assert [o.order_id for o in placed.orders] == [working.order_id + n for n in range(3)]
    assert stop_leg.pending and limit_leg.pending
    [order_list] = venue.open_order_lists(ME)
    assert order_list.contingency_type is ContingencyType.OTO  # as Binance reports it
    btc = venue.ledger.balance(ME, "BTC")
    venue.place(sell("0.5", "49000", account=OTHER), NOW + 1)
    assert working.status is OrderStatus.FILLED
    stop_now = venue.order(SYMBOL, ME, stop_leg.order_id)
    limit_now = venue.order(SYMBOL, ME, limit_leg.order_id)
    assert stop_now is not None and limit_now is not None
    assert not stop_now.pending and not stop_now.working and limit_now.working
    assert stop_now.order_list_id == limit_now.order_list_id == order_list.list_id
    # bought 0.5 (less the fee), of which the pair holds 0.5 once
    assert venue.ledger.balance(ME, "BTC").locked == UNIT // 2
    assert venue.ledger.balance(ME, "BTC").free < btc.free + UNIT // 2
    assert_ledger_consistent(venue)
    venue.place(buy("0.1", "55000", account=THIRD), NOW + 2)
    assert limit_now.status is OrderStatus.PARTIALLY_FILLED
    assert stop_now.status is OrderStatus.EXPIRED
    assert_ledger_consistent(venue)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_canceling_any_order_of_a_waiting_otoco_cancels_all(which):
    venue = funded()
    legs = venue.place_otoco(buy_then_protect(), NOW).orders
    venue.cancel(CancelOrder(SYMBOL, ME, legs[which].order_id), NOW + 1)
    assert [leg.status for leg in legs] == [OrderStatus.CANCELED] * 3
    assert venue.open_order_lists(ME) == []
    assert venue.engine.open_orders(SYMBOL, ME) == []
    assert_ledger_consistent(venue)


def test_an_otoco_pair_the_market_has_moved_past_expires():
    venue = funded()
    working = PlaceOrder.limit(SYMBOL, ME, Side.BUY, qty("0.5"), px("44000"))
    oco = sell_oco()
    legs = venue.place_otoco(NewOtoco(working, oco.above, oco.below), NOW).orders
    venue.place(sell("0.5", "44000", account=OTHER), NOW + 1)  # last price 44,000 < the stop
    assert legs[0].status is OrderStatus.FILLED
    assert [leg.status for leg in legs[1:]] == [OrderStatus.EXPIRED] * 2
    assert venue.open_order_lists(ME) == []
    assert_ledger_consistent(venue)


def test_an_otoco_restores_waiting():
    venue = funded()
    legs = venue.place_otoco(buy_then_protect(), NOW).orders
    changes = venue.drain()
    balances = [
        (a, asset, b.free, b.locked)
        for a in (ME, OTHER, THIRD, FUNDING, FEES)
        for asset, b in venue.ledger.balances(a).items()
    ]
    restored = Venue(default_symbols())
    restored.restore(
        balances=balances,
        orders=[dataclasses.replace(o, pending=False) for o in legs],
        books=[(SYMBOL, *venue.book_state(SYMBOL))],
        order_lists=list(changes.order_lists.values()),
    )
    assert [restored.order(SYMBOL, ME, o.order_id).pending for o in legs] == [False, True, True]
    restored.place(sell("0.5", "49000", account=OTHER), NOW + 1)
    assert [o.order_id for o in restored.engine.open_orders(SYMBOL, ME)] == [legs[2].order_id]
    assert [s.order_id for s in restored.engine.pending_stops(SYMBOL, ME)] == [legs[1].order_id]
    assert_ledger_consistent(restored)


def test_every_order_of_a_list_counts_as_open_for_its_key_until_it_ends():
    venue = funded()
    venue.place_oco(sell_oco(quantity="0.1"), NOW, key_id=7)
    assert venue.open_orders_of_key(7) == 2
    venue.place_otoco(buy_then_protect(), NOW + 1, key_id=8)
    assert venue.open_orders_of_key(8) == 3  # the waiting pair too
    venue.place(sell("0.5", "49000", account=OTHER), NOW + 2)  # the working order fills
    assert venue.open_orders_of_key(8) == 2  # the pair, placed, counted once
    venue.cancel_all(CancelAll(SYMBOL, ME), NOW + 3)
    assert venue.open_orders_of_key(7) == venue.open_orders_of_key(8) == 0


def test_cancel_all_answers_with_the_waiting_orders_it_canceled_too():
    venue = funded()
    legs = venue.place_otoco(buy_then_protect(), NOW).orders
    result = venue.cancel_all(CancelAll(SYMBOL, ME), NOW + 1)
    assert [o.order_id for o in result.orders] == [o.order_id for o in legs]
    assert {o.status for o in result.orders} == {OrderStatus.CANCELED}


def test_a_market_buy_cut_short_by_its_budget_ends_once_for_its_key():
    """Found by the flows above: a market buy whose walk stops at the account's own ask
    (self-trade prevention) trades what it held for, reads "filled", then expires; it
    was closed twice, and its key lost an open order it still had."""
    venue = funded()
    venue.place(sell("0.01", "50001", account=OTHER), NOW, key_id=9)
    venue.place(sell("0.01", "50000", account=ME), NOW)
    market = PlaceOrder(SYMBOL, OTHER, Side.BUY, OrderType.MARKET, quantity=qty("0.02"))
    [taken] = venue.place(market, NOW + 1, key_id=9).orders
    assert taken.status is OrderStatus.EXPIRED and taken.executed == qty("0.01")
    assert venue.open_orders_of_key(9) == 1  # the resting sell
    assert_ledger_consistent(venue)

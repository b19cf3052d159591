"""OCO order lists over real storage (SQLite and PostgreSQL): a list and its shared
hold survive a restart with their linkage, the OCO still works after it, and done
lists are read back from storage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from exchange_support import SYMBOL, buy, px, qty, sell
from sandex.bootstrap import Sandex
from sandex.exchange import OrderStatus, OrderType, PlaceOrder, Side, TimeInForce
from sandex.exchange.order_lists import NewOco, NewOto
from sandex.keys import PolicyViolation, RiskPolicy
from sandex.service.ports import History
from trading_support import LocalExchange, new_exchange

NOW = 1_800_000_000_000
ALICE, BOB, CAROL = 1, 2, 3
UNIT = 10**8
Open = Callable[[], LocalExchange]


@pytest.fixture
def open_service(sandex: Sandex) -> Iterator[Open]:
    """Start a trading service (no simulated market) over the test database."""
    started: list[LocalExchange] = []

    def start() -> LocalExchange:
        trading = new_exchange(sandex, simulate=False)
        trading.start(NOW)
        started.append(trading)
        return trading

    yield start
    for trading in started:
        trading.close()


def durable(trading: LocalExchange) -> None:
    trading.durable()


def fund(trading: LocalExchange, account: int, asset: str, amount: str) -> None:
    trading.store.add_credit(account, asset, int(Decimal(amount) * UNIT), "credit", NOW)
    trading.apply_credits(trading.store.pending_credits(), NOW)
    durable(trading)


@pytest.fixture
def trading(open_service: Open) -> Iterator[LocalExchange]:
    t = open_service()
    fund(t, ALICE, "BTC", "1")
    for account in (BOB, CAROL):
        fund(t, account, "USDT", "1000000")
        fund(t, account, "BTC", "5")
    t.place(sell("0.01", "50000", account=BOB), NOW)  # a last price of 50,000
    t.place(buy("0.01", "50000", account=CAROL), NOW)
    durable(t)
    yield t


def take_profit_stop_loss(quantity: str = "0.5", cid: str | None = None) -> NewOco:
    def leg(kind: OrderType, **kw: object) -> PlaceOrder:
        return PlaceOrder(SYMBOL, ALICE, Side.SELL, kind, quantity=qty(quantity), **kw)  # type: ignore[arg-type]

    return NewOco(
        leg(OrderType.LIMIT_MAKER, price=px("55000")),
        leg(
            OrderType.STOP_LOSS_LIMIT,
            price=px("44000"),
            stop_price=px("45000"),
            time_in_force=TimeInForce.GTC,
        ),
        cid,
    )


def restart(open_service: Open, old: LocalExchange) -> LocalExchange:
    old.close()
    return open_service()


def test_an_oco_survives_a_restart_with_its_list_and_one_hold(
    trading: LocalExchange, open_service: Open
) -> None:
    placed = trading.place_oco(take_profit_stop_loss(cid="protect"), NOW + 1)
    assert placed.rejected is None
    durable(trading)
    stop_leg, limit_leg = placed.orders
    list_id = stop_leg.order_list_id
    assert trading.balances(ALICE)["BTC"] == (UNIT // 2, UNIT // 2)

    again = restart(open_service, trading)
    assert again.balances(ALICE)["BTC"] == (UNIT // 2, UNIT // 2)
    [stored] = again.open_order_lists(ALICE)
    assert stored.order_list.list_id == list_id
    assert stored.order_list.list_client_order_id == "protect"
    assert [o.order_id for o in stored.orders] == [stop_leg.order_id, limit_leg.order_id]
    assert all(o.order_list_id == list_id for o in stored.orders)

    # the stop triggers after the restart: the take-profit expires, the hold moves
    again.place(sell("0.01", "45000", account=BOB), NOW + 2)
    again.place(buy("0.01", "45000", account=CAROL), NOW + 2)
    durable(again)
    legs = {o.type: o for o in stored.orders}
    assert legs[OrderType.LIMIT_MAKER].status is OrderStatus.EXPIRED
    assert legs[OrderType.STOP_LOSS_LIMIT].working
    assert again.balances(ALICE)["BTC"] == (UNIT // 2, UNIT // 2)

    # and once more: the triggered stop still holds the list's funds
    third = restart(open_service, again)
    [stored] = third.open_order_lists(ALICE)
    [working] = [o for o in stored.orders if o.is_open]
    assert working.held == UNIT // 2
    third.place(buy("0.5", "44000", account=CAROL), NOW + 3)
    durable(third)
    assert third.open_order_lists(ALICE) == []
    assert third.balances(ALICE)["BTC"] == (UNIT // 2, 0)
    found = asyncio.run(third.find_order_list(ALICE, list_id, None))
    assert found is not None
    assert [o.status for o in found.orders] == [OrderStatus.FILLED, OrderStatus.EXPIRED]


def test_done_lists_are_read_back_from_storage(trading: LocalExchange) -> None:
    first = trading.place_oco(take_profit_stop_loss("0.1", cid="one"), NOW + 1)
    second = trading.place_oco(take_profit_stop_loss("0.1", cid="two"), NOW + 2)
    found, canceled = trading.cancel_order_list(SYMBOL, ALICE, None, "one", NOW + 3)
    assert found is not None and canceled.rejected is None
    durable(trading)
    trading.venue.drain()  # as a batch would have: the done list leaves memory
    one = asyncio.run(trading.find_order_list(ALICE, None, "one"))
    assert one is not None
    assert one.order_list.list_id == first.orders[0].order_list_id
    assert [o.status for o in one.orders] == [OrderStatus.CANCELED] * 2
    every = asyncio.run(trading.all_order_lists(ALICE, History()))
    assert [s.order_list.list_client_order_id for s in every] == ["one", "two"]
    since = asyncio.run(
        trading.all_order_lists(ALICE, History(from_id=second.orders[0].order_list_id))
    )
    assert [s.order_list.list_client_order_id for s in since] == ["two"]
    assert asyncio.run(trading.find_order_list(BOB, None, "one")) is None


def test_each_order_of_a_list_passes_the_keys_max_open_orders(trading: LocalExchange) -> None:
    policy = RiskPolicy(max_open_orders=1)
    with pytest.raises(PolicyViolation):
        trading.place_oco(take_profit_stop_loss(), NOW + 1, key_id=5, policy=policy)
    assert trading.venue.open_orders(ALICE) == []


def test_an_otos_pending_order_waits_across_a_restart(
    trading: LocalExchange, open_service: Open
) -> None:
    fund(trading, ALICE, "USDT", "10000")
    working = PlaceOrder.limit(SYMBOL, ALICE, Side.BUY, qty("0.1"), px("49000"))
    pending = PlaceOrder(
        SYMBOL, ALICE, Side.SELL, OrderType.LIMIT_MAKER, quantity=qty("0.1"), price=px("55000")
    )
    placed = trading.place_oto(NewOto(working, pending, "later"), NOW + 1)
    assert placed.rejected is None
    durable(trading)
    first, waiting = placed.orders

    again = restart(open_service, trading)
    [stored] = again.open_order_lists(ALICE)
    assert stored.order_list.list_client_order_id == "later"
    restored = {o.order_id: o for o in stored.orders}
    assert restored[waiting.order_id].pending and not restored[first.order_id].pending
    again.place(sell("0.1", "49000", account=BOB), NOW + 2)
    durable(again)
    placed_tp = again.venue.order(SYMBOL, ALICE, waiting.order_id)
    assert placed_tp is not None and placed_tp.is_open and not placed_tp.pending
    assert again.balances(ALICE)["BTC"][1] == UNIT // 10

    third = restart(open_service, again)
    [stored] = third.open_order_lists(ALICE)
    [open_tp] = [o for o in stored.orders if o.is_open]
    assert open_tp.order_id == waiting.order_id and not open_tp.pending
    assert [o.order_id for o in third.engine.open_orders(SYMBOL, ALICE)] == [waiting.order_id]

"""The engine's account events: each batch's order updates, then its credits, then each
user's changed balances; in one process they reach ``LocalMarket.publish_accounts`` once
the batch is committed, with the market's events applied to the read model as before."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from exchange_support import NOW, SYMBOL, buy, px, qty, sell
from sandex.bootstrap import Sandex
from sandex.exchange import OrderType, PlaceOrder, Side, default_symbols
from sandex.exchange.account_events import (
    AccountEvent,
    BalanceDelta,
    BalancesChanged,
    Execution,
    ListStatus,
    OrderUpdate,
)
from sandex.exchange.order_lists import NewOco
from sandex.exchange.venue import MAKER, Venue
from sandex.service.account_feed import AccountFeed
from sandex.service.engine_commands import Watch
from sandex.service.journal import Batch
from trading_support import LocalExchange, new_exchange

ALICE, BOB = 1, 2
UNIT = 10**8


def _batch(venue: Venue, now: int) -> Batch:
    """The batch the journal would cut now (its balance rows, from the venue)."""
    changes = venue.drain()
    rows = []
    for account, asset in changes.balances:
        b = venue.ledger.balance(account, asset)
        rows.append((account, asset, b.free, b.locked))
    return Batch(now, balances=rows)


def test_a_batch_gives_its_order_updates_then_credits_then_each_users_balances():
    venue = Venue(default_symbols())
    venue.ledger.credit(MAKER, "BTC", 10 * UNIT)
    feed = AccountFeed(venue, now=NOW)
    venue.credit(ALICE, "USDT", 100_000 * UNIT)  # stamped with the batch's time
    venue.credit(BOB, "BTC", UNIT, now=NOW - 5)
    venue.place(sell("0.1", "50000", account=BOB), NOW)
    venue.place(sell("0.1", "50000", account=MAKER), NOW)
    venue.place(buy("0.15", "50000", account=ALICE), NOW + 1)

    events = feed.take(_batch(venue, NOW + 1))

    updates = [e for e in events if isinstance(e, OrderUpdate)]
    assert [(u.account, u.execution) for u in updates] == [
        (BOB, Execution.NEW),
        (ALICE, Execution.NEW),
        (ALICE, Execution.TRADE),
        (BOB, Execution.TRADE),
        (ALICE, Execution.TRADE),
    ]
    assert events[: len(updates)] == updates
    ids = [u.execution_id for u in updates]
    assert ids == list(range(NOW * 1000 + 1, NOW * 1000 + 6))
    assert events[len(updates) : len(updates) + 2] == [
        BalanceDelta(ALICE, "USDT", 100_000 * UNIT, NOW + 1),
        BalanceDelta(BOB, "BTC", UNIT, NOW - 5),
    ]
    positions = events[len(updates) + 2 :]
    assert [type(e) for e in positions] == [BalancesChanged, BalancesChanged]
    alice, bob = positions
    assert isinstance(alice, BalancesChanged) and isinstance(bob, BalancesChanged)
    assert (alice.account, bob.account, alice.time) == (ALICE, BOB, NOW + 1)
    for change in (alice, bob):
        for asset, free, locked in change.balances:
            balance = venue.ledger.balance(change.account, asset)
            assert (free, locked) == (balance.free, balance.locked)
    assert [a for a, _, _ in alice.balances] == ["BTC", "USDT"]

    assert feed.take(_batch(venue, NOW + 2)) == []  # nothing since
    venue.place(buy("0.01", "40000", account=ALICE), NOW + 3)
    later = feed.take(_batch(venue, NOW + 3))
    first = later[0]
    assert isinstance(first, OrderUpdate) and first.execution_id == ids[-1] + 1


@pytest.fixture
def unwatched(sandex: Sandex) -> Iterator[LocalExchange]:
    """An embedded exchange no gateway watches any account of yet."""
    exchange = new_exchange(sandex)
    exchange.start(NOW)
    yield exchange
    exchange.close()


@pytest.fixture
def exchange(unwatched: LocalExchange) -> LocalExchange:
    """An embedded exchange whose Alice and Bob have subscriptions (watched for long)."""
    unwatched.core.apply(Watch((ALICE, BOB), NOW + 10**9), NOW)
    return unwatched


def test_embedded_committed_account_events_reach_publish_accounts(exchange: LocalExchange):
    published: list[list[AccountEvent]] = []
    exchange.market.publish_accounts = published.append
    store = exchange.store
    store.add_credit(ALICE, "USDT", 100_000 * UNIT, "credit", NOW)
    store.add_credit(BOB, "BTC", 10 * UNIT, "credit", NOW)
    exchange.apply_credits(store.pending_credits(), NOW)
    exchange.durable()
    credits = [e for batch in published for e in batch]
    assert sorted(
        (e.account, e.asset, e.delta) for e in credits if isinstance(e, BalanceDelta)
    ) == [
        (ALICE, "USDT", 100_000 * UNIT),
        (BOB, "BTC", 10 * UNIT),
    ]
    assert {e.account for e in credits if isinstance(e, BalancesChanged)} == {ALICE, BOB}
    published.clear()

    maker = exchange.place(sell("0.5", "50000", account=BOB), NOW + 1).orders[0]
    [first] = published  # delivered once committed, before the command answered
    assert [(type(e).__name__, e.account) for e in first] == [
        ("OrderUpdate", BOB),
        ("BalancesChanged", BOB),
    ]
    exchange.place(buy("0.2", "50000", account=ALICE), NOW + 2)
    second = published[1]
    updates = [e for e in second if isinstance(e, OrderUpdate)]
    assert [(u.account, u.execution.value, u.order.status.value) for u in updates] == [
        (ALICE, "NEW", "NEW"),
        (ALICE, "TRADE", "FILLED"),
        (BOB, "TRADE", "PARTIALLY_FILLED"),
    ]
    assert updates[2].order.order_id == maker.order_id
    positions = {e.account: e for e in second if isinstance(e, BalancesChanged)}
    assert set(positions) == {ALICE, BOB}
    for account, change in positions.items():
        for asset, free, locked in change.balances:
            assert exchange.balances(account)[asset] == (free, locked)
    # the market's events still reach the read model
    assert exchange.market.model.last_price(SYMBOL) == maker.price


def test_a_failing_publisher_is_one_log_line_and_the_market_goes_on(
    exchange: LocalExchange, caplog: pytest.LogCaptureFixture
):
    def broken(events: list[AccountEvent]) -> None:
        raise RuntimeError("hub is down")

    exchange.market.publish_accounts = broken
    store = exchange.store
    store.add_credit(ALICE, "USDT", 100_000 * UNIT, "credit", NOW)
    store.add_credit(BOB, "BTC", 10 * UNIT, "credit", NOW)
    exchange.apply_credits(store.pending_credits(), NOW)
    with caplog.at_level(logging.WARNING):
        exchange.durable()
        exchange.place(sell("0.5", "50000", account=BOB), NOW + 1)
        exchange.place(buy("0.2", "50000", account=ALICE), NOW + 2)
    failures = [r for r in caplog.records if "account events not published" in r.getMessage()]
    assert len(failures) == 1 and "hub is down" in failures[0].getMessage()
    assert failures[0].exc_info is None
    assert exchange.market.model.last_price(SYMBOL) == 5_000_000


def test_an_order_list_is_published_as_executing_then_all_done(exchange: LocalExchange):
    store = exchange.store
    store.add_credit(BOB, "BTC", 10 * UNIT, "credit", NOW)
    exchange.apply_credits(store.pending_credits(), NOW)
    exchange.durable()
    published: list[list[AccountEvent]] = []
    exchange.market.publish_accounts = published.append
    take = PlaceOrder(
        SYMBOL, BOB, Side.SELL, OrderType.LIMIT_MAKER, quantity=qty("0.5"), price=px("55000")
    )
    loss = PlaceOrder(
        SYMBOL, BOB, Side.SELL, OrderType.STOP_LOSS, quantity=qty("0.5"), stop_price=px("45000")
    )
    placed = exchange.place_oco(NewOco(take, loss, "my-oco"), NOW + 1)
    assert placed.order_list is not None
    list_id = placed.order_list.list_id
    exchange.cancel_order_list(SYMBOL, BOB, list_id, None, NOW + 2)
    statuses = [e for batch in published for e in batch if isinstance(e, ListStatus)]
    assert [(s.account, s.order_list.list_id, s.executing) for s in statuses] == [
        (BOB, list_id, True),
        (BOB, list_id, False),
    ]
    cids = [o.client_order_id for o in placed.orders]
    assert statuses[0].client_order_ids == statuses[1].client_order_ids == cids
    first = published[0]
    kinds = [type(e).__name__ for e in first]
    assert kinds == ["OrderUpdate", "OrderUpdate", "ListStatus", "BalancesChanged"]


def test_only_watched_accounts_make_account_events_until_their_watch_ends(
    unwatched: LocalExchange,
) -> None:
    """The engine copies and publishes executions only for accounts some gateway has
    subscriptions for (a :class:`Watch`, renewed while they last)."""
    exchange = unwatched
    published: list[list[AccountEvent]] = []
    exchange.market.publish_accounts = published.append
    store = exchange.store
    for account in (ALICE, BOB):
        store.add_credit(account, "BTC", 10 * UNIT, "credit", NOW)
        store.add_credit(account, "USDT", 100_000 * UNIT, "credit", NOW)
    exchange.apply_credits(store.pending_credits(), NOW)
    exchange.durable()
    assert [e for batch in published for e in batch] == []  # nobody watches yet

    exchange.core.apply(Watch((ALICE,), NOW + 1000), NOW)
    exchange.place(sell("0.5", "50000", account=BOB), NOW + 1)
    exchange.place(buy("0.2", "50000", account=ALICE), NOW + 2)
    events = [e for batch in published for e in batch]
    assert {e.account for e in events} == {ALICE}
    assert [u.execution for u in events if isinstance(u, OrderUpdate)] == [
        Execution.NEW,
        Execution.TRADE,
    ]

    published.clear()
    exchange.core.apply(Watch((BOB,), NOW + 5000), NOW + 1000)  # Alice's watch ended
    exchange.place(buy("0.1", "50000", account=ALICE), NOW + 1001)
    events = [e for batch in published for e in batch]
    assert {e.account for e in events} == {BOB}
    assert [u.execution for u in events if isinstance(u, OrderUpdate)] == [Execution.TRADE]

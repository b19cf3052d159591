"""The engine's account events: what each batch did to users' orders and balances.

The venue tells :class:`AccountFeed` of every execution of a user's order as it happens
(:meth:`~sandex.exchange.venue.Venue.on_order_update`) and of every credit
(:meth:`~sandex.exchange.venue.Venue.on_credit`); when the journal cuts a batch, the
feed hands out that batch's account events: the order updates in the order they
happened, one :class:`~sandex.exchange.account_events.ListStatus` per user's order list the
batch changed, then the credits, then one
:class:`~sandex.exchange.account_events.BalancesChanged` per user whose balances the
batch changed. :func:`capture_events` puts them after the
public market's events (:class:`~sandex.service.market_feed.MarketFeed`) as what the
journal publishes once the batch is committed, in one process (``LocalMarket``) and on
a remote engine (``EngineServer``) alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from sandex.exchange.account_events import (
    AccountEvent,
    BalanceDelta,
    BalancesChanged,
    ListStatus,
    OrderUpdate,
)
from sandex.exchange.venue import Venue
from sandex.service.failures import Quietly
from sandex.service.journal import Batch
from sandex.service.market_feed import MarketEvent, MarketFeed

__all__ = ["AccountFeed", "AccountHandOver", "ACCOUNT_EVENTS", "capture_events"]

ACCOUNT_EVENTS: tuple[type, ...] = (OrderUpdate, ListStatus, BalancesChanged, BalanceDelta)
"""The account events' types (to tell them from the market's in a list of events)."""


class AccountFeed:
    """Gathers a venue's order updates and credits until the journal takes a batch."""

    def __init__(self, venue: Venue, *, now: int) -> None:
        self._venue = venue
        self._next_execution = now * 1000
        """Execution ids (Binance's ``I``) start from the start time (ms) * 1000: an
        engine that restarted continues above the ids it gave before."""
        self._updates: list[OrderUpdate] = []
        self._credits: list[BalanceDelta] = []
        venue.on_order_update(self._updates.append)
        venue.on_credit(self._credits.append)

    def take(self, batch: Batch) -> list[AccountEvent]:
        """The account events of ``batch`` (see the module): order updates (each given
        the next execution id), order lists, credits (at the batch's time when they came without
        one), each user's changed balances."""
        first = self._next_execution + 1
        events: list[AccountEvent] = [
            update._replace(execution_id=n) for n, update in enumerate(self._updates, first)
        ]
        self._next_execution += len(self._updates)
        self._updates.clear()
        now = batch.now
        if batch.order_lists:
            events.extend(self._list_statuses(batch))
        for delta in self._credits:
            events.append(delta if delta.time else delta._replace(time=now))
        self._credits.clear()
        watched = self._venue.watched
        per_account: dict[int, list[tuple[str, int, int]]] = {}
        for account, asset, free, locked in sorted(batch.balances):
            if account > 0 and (watched is None or account in watched):
                per_account.setdefault(account, []).append((asset, free, locked))
        for account, balances in per_account.items():
            events.append(BalancesChanged(account, now, balances))
        return events

    def _list_statuses(self, batch: Batch) -> list[ListStatus]:
        """The users' lists ``batch`` changed, with their orders as they stand (from the
        batch, else the venue: an order the batch did not change is still open)."""
        changed = {(o.symbol, o.order_id): o for o in batch.orders}
        orders = self._venue.orders
        statuses: list[ListStatus] = []
        watched = self._venue.watched
        for order_list in batch.order_lists:
            if order_list.account <= 0 or (
                watched is not None and order_list.account not in watched
            ):
                continue
            cids: list[str] = []
            executing = False
            for order_id in order_list.order_ids:
                key = (order_list.symbol, order_id)
                record = changed.get(key) or orders.get(key)
                cids.append("" if record is None else record.client_order_id)
                executing = executing or (record is not None and record.is_open)
            statuses.append(ListStatus(order_list.account, batch.now, order_list, executing, cids))
        return statuses


def capture_events(market: MarketFeed, accounts: AccountFeed) -> Callable[[Batch], list[object]]:
    """The journal's capture: a batch's market events, then its account events."""

    def capture(batch: Batch) -> list[object]:
        events: list[object] = list(market.take())
        events.extend(accounts.take(batch))
        return events

    return capture


class AccountHandOver:
    """A gateway's side of a delivery of committed events: the account events go to
    ``publish`` (the user data hub) first, their few sockets written before the market
    streams' many (the two kinds of stream are not ordered with each other); a failing
    ``publish`` is one log line, then quiet until it succeeds, and never stops the
    market's events."""

    def __init__(self, log: logging.Logger) -> None:
        self._failures = Quietly(log, "account events not published; dropped")

    def market_events(
        self, events: list[object], publish: Callable[[list[AccountEvent]], None] | None
    ) -> list[MarketEvent]:
        """Give ``events``' account events to ``publish`` (None: dropped); the others,
        in order, for the read model."""
        accounts = [cast(AccountEvent, e) for e in events if isinstance(e, ACCOUNT_EVENTS)]
        if accounts and publish is not None:
            try:
                publish(accounts)
            except Exception as exc:
                self._failures.failed(exc)
            else:
                self._failures.succeeded()
        market = (
            events if not accounts else [e for e in events if not isinstance(e, ACCOUNT_EVENTS)]
        )
        return cast(list[MarketEvent], market)

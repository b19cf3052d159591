"""The embedded mode's public market: the engine's committed events, applied in the same
process to the read model the public routes and the market streams read.

With ``--workers N`` / ``--engine remote`` a gateway's read model follows the engine's
events over the broker (:class:`~sandex.broker.redis_streams.MarketFollower`); in one
process (``sandex serve``) :class:`LocalMarket` does the same without a broker: the
journal captures a :class:`~sandex.service.market_feed.MarketFeed`'s events with each
batch, and once the batch is committed they are applied to the model, so that a depth
snapshot's ``lastUpdateId`` and the diff streams' ``U``/``u`` count the same updates in
both modes.

Committed events are delivered at once after each command that waited for its commit
(:class:`DeliveringLink`: a client reads its own order on the book), and by a task woken
by each commit (:attr:`ExchangeJournal.on_commit`) for what the market's own steps
committed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from sandex.exchange.account_events import AccountEvent
from sandex.service.account_feed import AccountFeed, AccountHandOver, capture_events
from sandex.service.engine_commands import EngineCommand, Reply
from sandex.service.exchange_core import ExchangeCore, LocalEngineLink
from sandex.service.failures import Quietly, report_failure
from sandex.service.market_feed import MarketFeed, MarketReadModel

__all__ = ["LocalMarket", "DeliveringLink"]

_log = logging.getLogger(__name__)


class LocalMarket:
    """The read model of an engine in this process, fed by its committed events."""

    def __init__(
        self,
        core: ExchangeCore,
        *,
        publish_accounts: Callable[[list[AccountEvent]], None] | None = None,
    ) -> None:
        self.core = core
        self.publish_accounts = publish_accounts
        """Given the account events of what is delivered (one call per delivery, in the
        order they happened; None: they are dropped)."""
        self.model = MarketReadModel(core.symbols, core.market_data, records_trades=False)
        """Shares the engine's market data (which records every trade as it happens)."""
        self.model.on_gap = self._resync
        self.feed: MarketFeed | None = None
        self._hand_over = AccountHandOver(_log)
        self._task: asyncio.Task[None] | None = None

    def start(self, now: int) -> None:
        """Publish the engine's events from now on, the model starting from the books as
        they stand (after the engine started)."""
        core = self.core
        feed = MarketFeed(core.venue.engine, core.symbols, now=now)
        core.venue.on_trade(feed.record)
        core.journal.capture = capture_events(feed, AccountFeed(core.venue, now=now))
        self.feed = feed
        model = self.model
        model.load_tape()
        model.load(feed.snapshot())
        for event in feed.take():  # the books as the engine started them (committed)
            model.apply(event)

    def _resync(self) -> None:
        """A missed change (not expected in one process): start again from the books as
        last published; committed events already in them are skipped by their ids."""
        if self.feed is not None:
            _log.warning("the market read model missed a book change; reloaded")
            self.model.load(self.feed.snapshot())

    def deliver(self) -> None:
        """Apply the events of every batch committed since the last call to the read
        model, and give their account events to :attr:`publish_accounts`."""
        events = self.core.journal.take_committed()
        apply = self.model.apply
        failed: Exception | None = None
        for event in self._hand_over.market_events(events, self.publish_accounts):
            try:
                apply(event)
            except Exception as exc:  # the model reloads below; the rest still apply
                failed = exc
        if failed is not None:
            report_failure(_log, "a market event was not applied; the read model reloads", failed)
            self._resync()

    def run_background(self) -> None:
        """Start delivering on the running loop what each commit brings (the market's
        steps' events; a command's are delivered by :class:`DeliveringLink` first)."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            wake = asyncio.Event()
            loop_thread = threading.get_ident()

            def committed() -> None:
                if threading.get_ident() == loop_thread:
                    wake.set()
                else:  # PostgreSQL's writer thread
                    loop.call_soon_threadsafe(wake.set)

            self.core.journal.on_commit = committed
            self._task = loop.create_task(self._run(wake))

    def stop(self) -> None:
        if self._task is not None:
            self.core.journal.on_commit = None
            self._task.cancel()
            self._task = None

    async def _run(self, wake: asyncio.Event) -> None:
        committed = self.core.journal.committed
        failures = Quietly(_log, "market events not applied; retrying")
        while True:
            await wake.wait()
            wake.clear()
            if not committed:
                continue
            try:
                self.deliver()
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.succeeded()


class DeliveringLink:
    """The in-process engine link that applies what each command committed to the read
    model before it answers (an :class:`~sandex.service.engine_commands.EngineLink`)."""

    def __init__(self, link: LocalEngineLink, market: LocalMarket) -> None:
        self._link = link
        self._market = market

    async def submit(self, command: EngineCommand, now: int) -> Reply:
        reply = await self._link.submit(command, now)
        if reply.changed:
            self._market.deliver()
        return reply

"""The exchange journal: what the venue did, made durable before anyone hears of it.

The venue (engine + ledger) lives in memory and changes only on the engine's thread.
Each change it makes is counted as *applied*; the journal copies what changed out of
the venue into a :class:`Batch` and writes it. A caller that changed something awaits
:meth:`ExchangeJournal.durable` before it answers, so an acknowledged order survives
``kill -9``. With ``durability="group"`` every caller waiting at one moment shares one
transaction (group commit); with ``"transaction"`` each writes and commits its own
batch before answering.

SQLite and PostgreSQL differ in two ways that live here, not in the store: SQLite
is written on the event loop (no round trip to wait out, and a writer thread would
fight the loop for the GIL) while PostgreSQL is written from a thread; and SQLite's
write-ahead log is copied back into the database by :meth:`ExchangeJournal.checkpoints`,
never by the writer, so no order waits on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, Literal, TypeVar

import orjson

from sandex.exchange.marketdata import MarketData, MinuteCandle, TapeTrade
from sandex.exchange.order_lists import OrderList
from sandex.exchange.pricepath import Backfill
from sandex.exchange.venue import OrderRecord, PreventedMatch, TradeRecord, Venue
from sandex.service.failures import Quietly, report_failure
from sandex.service.ports import BookRow, ExchangeStore, StorageBusy

__all__ = ["Batch", "Durability", "ExchangeJournal", "AppliedCommand"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

Durability = Literal["group", "transaction"]
_BUSY_PAUSE_S: Final = 0.001
CHECKPOINT_EVERY_S: Final = 0.25
"""How often SQLite's write-ahead log is copied back into the database: at a few
thousand orders a second that keeps it near SQLite's own default of 4 MB."""


@dataclass(frozen=True, slots=True)
class AppliedCommand:
    """A broker command the engine applied, kept with the batch that made it durable so
    that a command delivered again after a crash is answered, not applied twice."""

    command_id: str
    reply: bytes
    """The answer as it went out (the broker codec's bytes)."""


@dataclass(slots=True)
class Batch:
    """What one group commit writes, copied from the venue on its own thread."""

    now: int
    orders: list[OrderRecord] = field(default_factory=list)
    trades: list[TradeRecord] = field(default_factory=list)
    balances: list[tuple[int, str, int, int]] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)
    """The ledger entries touching users, as JSON (one journal row per drain)."""
    books: list[BookRow] = field(default_factory=list)
    applied_credits: list[int] = field(default_factory=list)
    order_lists: list[OrderList] = field(default_factory=list)
    prevented: list[PreventedMatch] = field(default_factory=list)
    commands: list[AppliedCommand] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    """What the engine publishes once this batch is committed (not written)."""
    market_trades: list[TapeTrade] = field(default_factory=list)
    """The public tape's new trades, every trade of the market (users' or not)."""
    market_minutes: list[MinuteCandle] = field(default_factory=list)
    """The 1m candles those trades changed, as they stand now."""
    market_backfills: list[tuple[str, Backfill]] = field(default_factory=list)

    def merged(self, newer: Batch) -> Batch:
        """This batch (which failed to write) followed by ``newer``: rows that both hold
        take ``newer``'s values, appended rows are kept from both."""
        orders = {(o.symbol, o.order_id): o for o in self.orders}
        orders.update({(o.symbol, o.order_id): o for o in newer.orders})
        balances = {(b[0], b[1]): b for b in self.balances}
        balances.update({(b[0], b[1]): b for b in newer.balances})
        books = {b.symbol: b for b in self.books}
        books.update({b.symbol: b for b in newer.books})
        lists = {ol.list_id: ol for ol in self.order_lists}
        lists.update({ol.list_id: ol for ol in newer.order_lists})
        minutes = {(m.symbol, m.candle.open_time): m for m in self.market_minutes}
        minutes.update({(m.symbol, m.candle.open_time): m for m in newer.market_minutes})
        return Batch(
            newer.now,
            list(orders.values()),
            self.trades + newer.trades,
            list(balances.values()),
            self.journal + newer.journal,
            list(books.values()),
            self.applied_credits + newer.applied_credits,
            list(lists.values()),
            self.prevented + newer.prevented,
            self.commands + newer.commands,
            self.events + newer.events,
            self.market_trades + newer.market_trades,
            list(minutes.values()),
            list({**dict(self.market_backfills), **dict(newer.market_backfills)}.items()),
        )


class ExchangeJournal:
    """Counts what the venue applied and writes it, in batches, to ``store``."""

    def __init__(
        self,
        venue: Venue,
        store: ExchangeStore,
        *,
        durability: Durability = "group",
        reference: Callable[[str], str | None] = lambda symbol: None,
    ) -> None:
        self.venue = venue
        self.store = store
        self.durability = durability
        self.reference = reference
        """A symbol's simulated reference price, kept with its book row."""
        self.market_data: MarketData | None = None
        """The public market data whose new trades and candles each batch carries."""
        self.capture: Callable[[Batch], Sequence[object]] | None = None
        """What to publish with each batch, taken from the venue's listeners and the batch
        once it is cut (see :attr:`committed`)."""
        self.committed: deque[object] = deque()
        """Events of committed batches not yet published, oldest first (the publisher
        takes them with :meth:`take_committed`; the writer thread appends)."""
        self.on_commit: Callable[[], None] | None = None
        """Called after a batch with events joined :attr:`committed`, on the thread that
        wrote it (the event loop's on SQLite, the writer thread's on PostgreSQL)."""
        self._applied = 0
        self._committed = 0
        self._now = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._writing = False
        self._writer_task: asyncio.Task[None] | None = None
        self._credits: list[int] = []
        self._commands: list[AppliedCommand] = []
        self._unwritten: Batch | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sandex-exchange-writer")
        self._inline = not store.network
        """Write on the event loop (SQLite) or on the writer thread (PostgreSQL)."""

    # -- what was applied ----------------------------------------------------------------

    def applied(self, now: int) -> None:
        """The venue changed at ``now``: the next batch must carry it."""
        self._now = now
        self._applied += 1

    def credited(self, credit_id: int) -> None:
        """Operator credit ``credit_id`` was applied: it is marked so in the same batch."""
        self._credits.append(credit_id)

    def answered(self, command: AppliedCommand) -> None:
        """Broker command ``command`` was applied: its id and answer go in the same batch."""
        self._commands.append(command)
        self._applied += 1

    def take_committed(self) -> list[object]:
        """The events of the batches committed since the last call, oldest first."""
        committed = self.committed
        return [committed.popleft() for _ in range(len(committed))]

    @property
    def pending(self) -> bool:
        """Whether something applied is not committed yet."""
        return self._applied > self._committed

    # -- durability --------------------------------------------------------------------

    async def durable(self) -> None:
        """Return once everything applied so far is committed to storage."""
        target = self._applied
        if target <= self._committed:
            return
        if self.durability == "transaction":
            while True:
                try:
                    self._write_kept(self._batch_now())
                    break
                except StorageBusy:  # another writer has the database: a moment
                    await asyncio.sleep(_BUSY_PAUSE_S)
            self._committed = max(self._committed, target)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append((target, future))
        if not self._writing:
            self._writing = True
            self._writer_task = loop.create_task(self._writer())
        await future

    def write_now(self, now: int) -> None:
        """Write everything applied so far, waiting out another writer (at start-up:
        it blocks the thread)."""
        self._now = now
        self._applied += 1
        self._write_waiting(self._batch(now))
        self._committed = self._applied

    def _batch_now(self) -> Batch:
        batch = self._batch(self._now)
        if self._unwritten is not None:  # a failed write goes out with this one
            batch, self._unwritten = self._unwritten.merged(batch), None
        return batch

    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            pause = 0.05
            while self._applied > self._committed:
                target = self._applied
                batch = self._batch_now()
                try:
                    if self._inline:
                        self._write_kept(batch)
                    else:
                        await loop.run_in_executor(self._executor, self._write_kept, batch)
                except StorageBusy:  # another writer has the database: a moment
                    await asyncio.sleep(_BUSY_PAUSE_S)
                    continue
                except Exception as exc:  # kept for the next try: the callers wait on
                    report_failure(_log, "the exchange's storage write failed; retrying", exc)
                    await asyncio.sleep(pause)
                    pause = min(1.0, pause * 2)
                    continue
                pause = 0.05
                self._committed = target
                still: list[tuple[int, asyncio.Future[None]]] = []
                for seq, future in self._waiters:
                    if seq <= target:
                        if not future.done():
                            future.set_result(None)
                    else:
                        still.append((seq, future))
                self._waiters = still
        finally:
            self._writing = False

    def _write_waiting(self, batch: Batch, tries: int = 6000) -> None:
        """Write ``batch``, waiting out another writer (5 ms a try, 30 s in all; at
        start-up and shutdown only: it blocks the thread)."""
        for left in range(tries - 1, -1, -1):
            try:
                self._write_kept(batch)
                return
            except StorageBusy:
                if not left:
                    raise
                time.sleep(0.005)
                batch, self._unwritten = self._unwritten or batch, None

    def _write_kept(self, batch: Batch) -> None:
        """Write ``batch``; if that fails, keep it to go out with the next one.

        The venue's changes were drained into the batch, so a batch that failed and was
        dropped would be lost for good: an order on the book but not in storage, and the
        next batch's balances (holding its funds) would no longer add up on restart.
        """
        try:
            self.store.write(batch)
        except BaseException:
            self._unwritten = batch
            raise
        if batch.events:
            self.committed.extend(batch.events)
            if self.on_commit is not None:
                self.on_commit()

    def _batch(self, now: int) -> Batch:
        """Copy what changed out of the venue (on the loop thread) for the writer."""
        venue = self.venue
        changes = venue.drain()
        ledger = venue.ledger
        batch = Batch(now)
        if self._inline:  # written before anything else runs on this thread
            batch.orders = list(changes.orders.values())
        else:  # the writer thread gets copies the loop cannot change under it
            batch.orders = [dataclasses.replace(o, fills=[]) for o in changes.orders.values()]
        batch.trades = changes.trades
        batch.prevented = changes.prevented
        batch.order_lists = [dataclasses.replace(ol) for ol in changes.order_lists.values()]
        for account, asset in changes.balances:
            b = ledger.balance(account, asset)
            batch.balances.append((account, asset, b.free, b.locked))
        if changes.entries:
            batch.journal.append(orjson.dumps(changes.entries, default=tuple).decode())
        for name in sorted(changes.symbols):  # a market step changes its reference too
            next_order_id, next_trade_id, last = venue.book_state(name)
            batch.books.append(
                BookRow(name, next_order_id, next_trade_id, last, self.reference(name))
            )
        batch.applied_credits, self._credits = self._credits, []
        batch.commands, self._commands = self._commands, []
        if self.market_data is not None:
            market = self.market_data.drain()
            batch.market_trades, batch.market_minutes = market.trades, market.minutes
            batch.market_backfills = market.backfills
        if self.capture is not None:
            batch.events = list(self.capture(batch))
        return batch

    # -- the database's upkeep and reads ---------------------------------------------------

    async def checkpoints(self) -> None:
        """Checkpoint SQLite every :data:`CHECKPOINT_EVERY_S` in a thread, until canceled
        (PostgreSQL: return at once). A failure is one log line, then quiet until they
        succeed again."""
        if self.store.network:
            return
        loop = asyncio.get_running_loop()
        failures = Quietly(  # once, not four times a second
            _log,
            "checkpoints of the database fail; retrying quietly",
            recovered="checkpoints of the database succeed again",
        )
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            try:
                await loop.run_in_executor(None, self.store.checkpoint)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.succeeded()

    async def read(self, fn: Callable[[], _T]) -> _T:
        """Run a storage read after everything applied so far is committed, off the loop."""
        await self.durable()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def close(self) -> None:
        """Write what is left and stop the writer thread (at shutdown)."""
        try:
            if (
                self.venue.pending()
                or self._credits
                or self._commands
                or self._unwritten is not None
            ):
                self._write_waiting(self._batch_now())
        finally:
            self._executor.shutdown(wait=True)
            self.store.close()

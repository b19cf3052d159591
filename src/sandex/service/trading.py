"""Spot trading over the venue: a key's risk policy on every new order, durability of
what is acknowledged, operator credits, and the simulated market's schedule.

The venue (engine + ledger) lives in memory and is only touched from the event-loop
thread. What it changes is written to storage by one writer thread, in batches: a
request that changed something awaits :meth:`TradingService.durable` before it
answers, so an acknowledged order survives ``kill -9``. With ``durability="group"``
every request waiting at one moment shares one transaction (group commit); with
``"transaction"`` each request writes and commits its own batch before answering.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Final, Literal, TypeVar

import orjson

from sandex.exchange import (
    CancelAll,
    CancelOrder,
    CancelReplace,
    Command,
    OpenOrder,
    PlaceOrder,
    Rejected,
    Symbol,
)
from sandex.exchange.engine import Engine
from sandex.exchange.makers import MakerConfig, Simulation
from sandex.exchange.marketdata import MarketData
from sandex.exchange.money import ASSET_DECIMALS
from sandex.exchange.order_lists import NewOco, NewOto, NewOtoco, OrderList
from sandex.exchange.venue import (
    MAKER,
    TAKER,
    OrderRecord,
    PreventedMatch,
    Result,
    TradeRecord,
    Venue,
)
from sandex.keys import RiskPolicy
from sandex.service.failures import report_failure
from sandex.service.ports import (
    Batch,
    BookRow,
    ExchangeStore,
    History,
    PendingCredit,
    PendingShock,
    PreventedQuery,
    ShockKind,
    StorageBusy,
    StoredOrderList,
)

__all__ = ["TradingService", "Durability", "SYSTEM_FUNDING"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

Durability = Literal["group", "transaction"]
_BUSY_PAUSE_S: Final = 0.001
SYSTEM_FUNDING: Final = Decimal(10) ** 9
"""What the simulated makers and takers are topped up to, in USDT terms per asset."""


class TradingService:
    def __init__(
        self,
        venue: Venue,
        store: ExchangeStore,
        *,
        durability: Durability = "group",
        simulate: bool = True,
        seed: int = 7,
        maker_config: MakerConfig | None = None,
        market_data: MarketData | None = None,
    ) -> None:
        self.venue = venue
        self.market_data = market_data or MarketData(venue.symbols.values())
        venue.on_trade(self.market_data.record)
        self.store = store
        self.durability = durability
        self.simulate = simulate
        self.seed = seed
        self.maker_config = maker_config
        self.simulation: Simulation | None = None
        self._applied = 0
        self._committed = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._writing = False
        self._writer_task: asyncio.Task[None] | None = None
        self._credits_applied: list[int] = []
        self._credits_seen: set[int] = set()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sandex-exchange-writer")
        self._unwritten: Batch | None = None
        self._inline = not store.network
        """Write on the event loop (SQLite: no round trips to wait out, and a writer
        thread would fight the loop for the GIL) or on the writer thread (PostgreSQL)."""

    # -- start -----------------------------------------------------------------------

    @property
    def symbols(self) -> dict[str, Symbol]:
        return self.venue.symbols

    @property
    def engine(self) -> Engine:
        return self.venue.engine

    def start(self, now: int) -> None:
        """Rebuild the venue from storage, then start the simulated market from where it
        stood (synchronous: call before serving)."""
        stored = self.store.load()
        books = {b.symbol: b for b in stored.books}
        self.venue.restore(
            balances=stored.balances,
            orders=stored.open_orders,
            books=[
                (b.symbol, b.next_order_id, b.next_trade_id, b.last_price) for b in stored.books
            ],
            order_lists=stored.order_lists,
            next_list_id=stored.next_list_id,
            next_prevented=stored.next_prevented,
        )
        for b in stored.books:
            if b.symbol in self.venue.symbols:
                self.market_data.resume(b.symbol, b.next_trade_id)
        if self.simulate:
            prices = {
                name: Decimal(b.reference_price)
                for name, b in books.items()
                if b.reference_price is not None and name in self.venue.symbols
            }
            self.simulation = Simulation(
                self.venue.symbols.values(),
                now,
                seed=self.seed,
                prices=prices,
                config=self.maker_config,
            )
            self._fund_system(now)
            for index, (name, symbol) in enumerate(sorted(self.venue.symbols.items())):
                price = symbol.price_units(str(self.simulation.reference(name)))
                self.market_data.backfill(name, now, price, self.seed * 100 + index)
            self._run(self.simulation.step(now, self._last_prices(), self._quotes()), now)
        self.apply_credits(self.store.pending_credits())
        self._applied += 1
        self._write_waiting(self._batch(now))
        self._committed = self._applied

    def _fund_system(self, now: int) -> None:
        sim = self.simulation
        assert sim is not None
        assets: dict[str, Decimal] = {}
        for name, symbol in self.venue.symbols.items():
            ref = sim.reference(name)
            if symbol.quote_asset == "USDT":
                assets[symbol.base_asset] = SYSTEM_FUNDING / ref
                assets["USDT"] = SYSTEM_FUNDING
        for symbol in self.venue.symbols.values():
            for asset in (symbol.base_asset, symbol.quote_asset):
                assets.setdefault(asset, SYSTEM_FUNDING)
        for account in (MAKER, TAKER):
            for asset, target in assets.items():
                units = int(target * 10**ASSET_DECIMALS)
                have = self.venue.ledger.balance(account, asset)
                if have.free + have.locked < units // 2:
                    self.venue.credit(account, asset, units - have.free - have.locked)

    def _last_prices(self) -> dict[str, int | None]:
        return {name: self.venue.engine.last_price(name) for name in self.venue.symbols}

    def _quotes(self) -> dict[str, list[OpenOrder]]:
        """The market makers' resting orders, per symbol."""
        return {name: self.venue.engine.resting(name, MAKER) for name in self.venue.symbols}

    # -- commands ----------------------------------------------------------------------

    def place(
        self,
        order: PlaceOrder,
        now: int,
        *,
        key_id: int | None = None,
        policy: RiskPolicy | None = None,
    ) -> Result:
        """Place ``order`` for its account, within the key's ``policy`` (raises
        :class:`~sandex.keys.PolicyViolation`)."""
        self._last_now = now
        if policy is not None and key_id is not None:
            self._check_policy(order, policy, key_id)
        result = self.venue.place(order, now, key_id=key_id)
        self._note(result)
        return result

    def check(
        self, order: PlaceOrder, now: int, *, key_id: int | None, policy: RiskPolicy | None
    ) -> Rejected | None:
        """``POST /api/v3/order/test``: every check of a new order, nothing placed."""
        if policy is not None and key_id is not None:
            self._check_policy(order, policy, key_id)
        return self.venue.engine.check(order, now)

    def _check_policy(
        self, order: PlaceOrder, policy: RiskPolicy, key_id: int, also_open: int = 0
    ) -> None:
        symbol = order.symbol
        if symbol not in self.venue.symbols:
            return  # the engine answers -1121
        notional = Decimal(0)
        if policy.max_notional is not None:
            notional = self.venue.notional(order) or Decimal(0)
        policy.check_order(
            symbol=symbol,
            notional=notional,
            open_orders=self.venue.open_orders_of_key(key_id) + also_open,
        )

    def cancel(self, cancel: CancelOrder, now: int) -> Result:
        self._last_now = now
        result = self.venue.cancel(cancel, now)
        self._note(result)
        return result

    def cancel_all(self, cancel: CancelAll, now: int) -> Result:
        self._last_now = now
        result = self.venue.cancel_all(cancel, now)
        self._note(result)
        return result

    def place_oco(
        self,
        oco: NewOco,
        now: int,
        *,
        key_id: int | None = None,
        policy: RiskPolicy | None = None,
    ) -> Result:
        """Place an OCO for its account; each of its two orders passes the key's
        ``policy`` (the second counted as open beside the first)."""
        self._last_now = now
        if policy is not None and key_id is not None:
            self._check_policy(oco.above, policy, key_id)
            self._check_policy(oco.below, policy, key_id, also_open=1)
        result = self.venue.place_oco(oco, now, key_id=key_id)
        self._note(result)
        return result

    def place_oto(
        self,
        oto: NewOto,
        now: int,
        *,
        key_id: int | None = None,
        policy: RiskPolicy | None = None,
    ) -> Result:
        """Place an OTO for its account; each of its two orders passes the key's
        ``policy`` (the pending one counted as open beside the working one)."""
        self._last_now = now
        if policy is not None and key_id is not None:
            self._check_policy(oto.working, policy, key_id)
            self._check_policy(oto.pending, policy, key_id, also_open=1)
        result = self.venue.place_oto(oto, now, key_id=key_id)
        self._note(result)
        return result

    def place_otoco(
        self,
        otoco: NewOtoco,
        now: int,
        *,
        key_id: int | None = None,
        policy: RiskPolicy | None = None,
    ) -> Result:
        """Place an OTOCO for its account; each of its three orders passes the key's
        ``policy`` (the pending pair counted as open beside the working order)."""
        self._last_now = now
        if policy is not None and key_id is not None:
            self._check_policy(otoco.working, policy, key_id)
            self._check_policy(otoco.above, policy, key_id, also_open=1)
            self._check_policy(otoco.below, policy, key_id, also_open=2)
        result = self.venue.place_otoco(otoco, now, key_id=key_id)
        self._note(result)
        return result

    def cancel_order_list(
        self, symbol: str, account: int, list_id: int | None, list_cid: str | None, now: int
    ) -> tuple[OrderList | None, Result]:
        self._last_now = now
        found, result = self.venue.cancel_order_list(symbol, account, list_id, list_cid, now)
        self._note(result)
        return found, result

    async def find_order_list(
        self, account: int, list_id: int | None, list_cid: str | None
    ) -> StoredOrderList | None:
        """One order list of the account, open (from memory) or not (from storage)."""
        venue = self.venue
        found = venue.order_list(account, list_id, list_cid)
        if found is not None and len(orders := venue.list_orders(found)) == len(found.order_ids):
            return StoredOrderList(found, orders)
        stored = await self.read(
            lambda: self.store.order_lists(account, History(limit=1), list_id, list_cid)
        )
        return stored[0] if stored else None

    def open_order_lists(self, account: int) -> list[StoredOrderList]:
        venue = self.venue
        return [
            StoredOrderList(ol, venue.list_orders(ol)) for ol in venue.open_order_lists(account)
        ]

    async def all_order_lists(self, account: int, window: History) -> list[StoredOrderList]:
        return await self.read(lambda: self.store.order_lists(account, window))

    def cancel_replace(
        self,
        replace: CancelReplace,
        now: int,
        *,
        key_id: int | None = None,
        policy: RiskPolicy | None = None,
    ) -> Result:
        self._last_now = now
        if policy is not None and key_id is not None:
            self._check_policy(replace.order, policy, key_id)
        result = self.venue.cancel_replace(replace, now, key_id=key_id)
        self._note(result)
        return result

    def _note(self, result: Result) -> None:
        if result.rejected is None or len(result.events) > 1:
            self._applied += 1

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

    def _batch_now(self) -> Batch:
        batch = self._batch(self._last_now)
        if self._unwritten is not None:  # a failed write goes out with this one
            batch, self._unwritten = self._unwritten.merged(batch), None
        return batch

    _last_now: int = 0

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
                except Exception as exc:  # kept for the next try: the requests wait on
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
        sim = self.simulation  # every market step changes every symbol: its price goes too
        for name in sorted(changes.symbols):
            next_order_id, next_trade_id, last = venue.book_state(name)
            ref = None if sim is None else str(sim.reference(name))
            batch.books.append(BookRow(name, next_order_id, next_trade_id, last, ref))
        batch.applied_credits, self._credits_applied = self._credits_applied, []
        return batch

    def close(self) -> None:
        """Write what is left and stop the writer thread (at shutdown)."""
        try:
            if self.venue.pending() or self._credits_applied or self._unwritten is not None:
                self._write_waiting(self._batch_now())
        finally:
            self._executor.shutdown(wait=True)
            self.store.close()

    # -- reads ---------------------------------------------------------------------------

    async def read(self, fn: Callable[[], _T]) -> _T:
        """Run a storage read after everything applied so far is committed, off the loop."""
        await self.durable()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def open_order(
        self, account: int, symbol: str, order_id: int | None, cid: str | None
    ) -> OrderRecord | None:
        venue = self.venue
        found = None
        if order_id is not None:
            found = venue.order(symbol, account, order_id)
            if found is not None and cid is not None and found.client_order_id != cid:
                return None
        elif cid is not None:
            found = venue.order_by_client_id(symbol, account, cid)
        return found

    async def find_order(
        self, account: int, symbol: str, order_id: int | None, cid: str | None
    ) -> OrderRecord | None:
        found = self.open_order(account, symbol, order_id, cid)
        if found is not None:
            return found
        return await self.read(lambda: self.store.order(account, symbol, order_id, cid))

    async def all_orders(self, account: int, symbol: str, window: History) -> list[OrderRecord]:
        return await self.read(lambda: self.store.orders(account, symbol, window))

    async def my_trades(
        self, account: int, symbol: str, window: History, order_id: int | None = None
    ) -> list[TradeRecord]:
        return await self.read(lambda: self.store.trades(account, symbol, window, order_id))

    async def prevented_matches(
        self, account: int, symbol: str, query: PreventedQuery
    ) -> list[PreventedMatch]:
        return await self.read(lambda: self.store.prevented_matches(account, symbol, query))

    # -- credits and the simulated market -----------------------------------------------

    def apply_credits(self, pending: list[PendingCredit]) -> int:
        """Apply operator credits / starting balances read from storage; they are marked
        applied in the same transaction as the balances they change."""
        done = 0
        for credit in pending:
            if credit.id in self._credits_applied or credit.id in self._credits_seen:
                continue
            self.venue.credit(
                credit.account, credit.asset, credit.amount, ref=f"credit:{credit.id}"
            )
            self._credits_applied.append(credit.id)
            self._credits_seen.add(credit.id)
            done += 1
        if done:
            self._applied += 1
        return done

    def tick(self, now: int, symbol: str | None = None) -> None:
        """One step of the simulated market at ``now``, for one symbol or all (the server
        calls it on a timer, a symbol at a time)."""
        self._last_now = now
        sim = self.simulation
        if sim is None:
            return
        engine = self.venue.engine
        if symbol is None:
            self._run(sim.step(now, self._last_prices(), self._quotes()), now)
        else:
            last, quotes = engine.last_price(symbol), engine.resting(symbol, MAKER)
            self._run(sim.step_symbol(symbol, now, last, quotes), now)

    def _run(self, commands: list[Command], now: int) -> None:
        venue = self.venue
        for command in commands:
            if isinstance(command, PlaceOrder):
                venue.place(command, now)
            elif isinstance(command, CancelAll):
                venue.cancel_all(command, now)
            elif isinstance(command, CancelOrder):
                venue.cancel(command, now)
        self._applied += 1

    def shock(self, symbol: str, factor: float, duration_ms: int, now: int) -> None:
        if self.simulation is not None:
            self.simulation.shock(symbol, factor, duration_ms, now)

    def apply_shock(self, shock: PendingShock, now: int) -> None:
        """Apply an operator's order for the simulated market read from storage: a crash
        or pump, or a change of liquidity (from the next market step on)."""
        sim = self.simulation
        if sim is None:
            return
        if shock.kind is ShockKind.LIQUIDITY:
            sim.set_liquidity(shock.symbol, Decimal(shock.factor), now, shock.duration_ms)
        else:
            sim.shock(shock.symbol, float(shock.factor), shock.duration_ms, now)

    def balances(self, account: int) -> dict[str, tuple[int, int]]:
        return {
            asset: (b.free, b.locked) for asset, b in self.venue.ledger.balances(account).items()
        }

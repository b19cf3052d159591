"""The engine side of the exchange: the venue, its journal and the simulated market, and
the one step that applies a command to them (:meth:`ExchangeCore.apply`).

Everything here runs on one thread, the engine's: in the server's process by default
(:class:`LocalEngineLink`), or in ``sandex engine`` behind the broker. A key's risk
policy is judged here, in the same step as the order, because its limits (open orders
per key, notional at the book's prices) depend on the book.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from decimal import Decimal
from typing import Final

from sandex.exchange import OrderStatus, PlaceOrder, Symbol
from sandex.exchange.makers import MakerConfig
from sandex.exchange.marketdata import MarketData
from sandex.exchange.order_lists import NewOco, NewOto, OrderList
from sandex.exchange.rejections import DUPLICATE_ORDER
from sandex.exchange.venue import OrderRecord, Result, Venue
from sandex.keys import PolicyViolation, RiskPolicy
from sandex.service.engine_commands import (
    Cancel,
    CancelList,
    CancelOpen,
    Check,
    EngineCommand,
    Place,
    PlaceList,
    PolicyRefusal,
    Replace,
    Reply,
    Watch,
)
from sandex.service.failures import report_failure
from sandex.service.journal import Durability, ExchangeJournal
from sandex.service.market_simulator import MarketSimulator
from sandex.service.ports import Clock, ExchangeStore, StoredOrderList

__all__ = ["ExchangeCore", "LocalEngineLink", "RETRY_WINDOW_MS"]

_log = logging.getLogger(__name__)

COMMANDS_KEPT_MS: Final = 24 * 3600 * 1000
COMMANDS_PRUNED_EVERY_S: Final = 60.0
RETRY_WINDOW_MS: Final = 600_000
"""How long a client order id stays taken after its order was placed, open or not: a
client that retries an order it got -1007 for (execution status unknown) with the same
``newClientOrderId`` never places it twice, even if the first one filled meanwhile
(Binance frees an id once its order closes; within this window Sandex frees it only
when the client cancels the order)."""


class ExchangeCore:
    """The single writer of the exchange: commands in, replies (and the venue's
    changes, through the journal) out."""

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
        self.store = store
        self.market_data = market_data or MarketData(venue.symbols.values())
        venue.on_trade(self.market_data.record)
        self.journal = ExchangeJournal(venue, store, durability=durability)
        self.market_data.track_changes()  # its trades and candles go out with each batch
        self.journal.market_data = self.market_data
        self.simulator = MarketSimulator(
            venue,
            self.journal,
            self.market_data,
            simulate=simulate,
            seed=seed,
            maker_config=maker_config,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.copy_records = True
        """Whether a reply holds copies of the order records (a caller that awaits before
        it reads them needs that; one that encodes the reply at once does not)."""
        self._recent_cids: dict[tuple[int, str, str], int] = {}
        self._recent_order: deque[tuple[int, tuple[int, str, str]]] = deque()
        self.watched: dict[int, int] = {}
        """Accounts some gateway has user data subscriptions for, and until when (ms):
        only theirs make account events (:class:`Watch`; the venue reads it)."""
        venue.watched = self.watched

    @property
    def symbols(self) -> dict[str, Symbol]:
        return self.venue.symbols

    # -- start and stop ----------------------------------------------------------------

    def start(self, now: int) -> None:
        """Rebuild the venue from storage, start the simulated market where it stood, and
        apply credits that waited (synchronous: call before serving)."""
        stored = self.store.load()
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
        self.simulator.prune_history(self.store, now)
        self.simulator.restore_history(self.store.market_history(self.market_data.keep_trades))
        for b in stored.books:
            if b.symbol in self.venue.symbols:
                self.market_data.resume(b.symbol, b.next_trade_id)
        for account, symbol, cid, placed in self.store.recent_client_ids(now - RETRY_WINDOW_MS):
            self._remember_cid(account, symbol, cid, placed)
        self.simulator.start(stored.books, now)
        self.simulator.apply_credits(self.store.pending_credits(), now)
        self.journal.write_now(now)

    def run_background(self, clock: Clock, tick_ms: int) -> None:
        """Start the market schedule and the database's checkpoints on the running loop."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.simulator.run(clock, self.store, tick_ms)),
            loop.create_task(self.journal.checkpoints()),
            loop.create_task(self._forget_old_commands(clock)),
        ]

    async def _forget_old_commands(self, clock: Clock) -> None:
        """Every minute, drop the stored answers of commands older than a day (a broker
        redelivers within minutes of a restart, never days). A failure is one line."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(COMMANDS_PRUNED_EVERY_S)
            try:
                before = clock.now() - COMMANDS_KEPT_MS
                await loop.run_in_executor(None, self.store.prune_commands, before)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                report_failure(_log, "old engine command answers not pruned; retrying", exc)

    def close(self) -> None:
        """Stop the schedule, write what is left, release storage (at shutdown)."""
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        self.journal.close()

    # -- commands ----------------------------------------------------------------------

    def apply(self, command: EngineCommand, now: int) -> Reply:
        """Apply ``command`` at ``now``; the reply's records are copies taken now."""
        try:
            if isinstance(command, Place):
                if self._cid_taken(command.order, now):
                    return Reply([DUPLICATE_ORDER])
                self._police(command.policy, command.key_id, command.order)
                return self._reply(self.venue.place(command.order, now, key_id=command.key_id), now)
            if isinstance(command, Cancel):
                return self._reply(self.venue.cancel(command.cancel, now), now)
            if isinstance(command, CancelOpen):
                return self._reply(self.venue.cancel_all(command.cancel, now), now)
            if isinstance(command, Replace):
                if self._cid_taken(command.replace.order, now):
                    return Reply([DUPLICATE_ORDER])
                self._police(command.policy, command.key_id, command.replace.order)
                result = self.venue.cancel_replace(command.replace, now, key_id=command.key_id)
                return self._reply(result, now)
            if isinstance(command, PlaceList):
                return self._place_list(command, now)
            if isinstance(command, CancelList):
                found, result = self.venue.cancel_order_list(
                    command.symbol,
                    command.account,
                    command.list_id,
                    command.list_client_order_id,
                    now,
                )
                reply = self._reply(result, now)
                reply.order_list = None if found is None else dataclasses.replace(found)
                return reply
            if isinstance(command, Watch):
                self._watch(command, now)
                return Reply()
            if isinstance(command, Check):
                self._police(command.policy, command.key_id, command.order)
                return Reply(checked=self.venue.engine.check(command.order, now))
        except PolicyViolation as exc:
            return Reply(refusal=PolicyRefusal(str(exc), exc.limit))
        raise TypeError(f"not an engine command: {type(command).__name__}")

    def _watch(self, command: Watch, now: int) -> None:
        """Watch ``command``'s accounts until its time, and forget watches that ended."""
        watched = self.watched
        for account in command.accounts:
            if watched.get(account, 0) < command.until:
                watched[account] = command.until
        for account in [a for a, until in watched.items() if until <= now]:
            del watched[account]

    def _place_list(self, command: PlaceList, now: int) -> Reply:
        new, key_id, policy = command.new, command.key_id, command.policy
        venue = self.venue
        if isinstance(new, NewOco):  # the second order counts as open beside the first
            self._police(policy, key_id, new.above)
            self._police(policy, key_id, new.below, also_open=1)
            result = venue.place_oco(new, now, key_id=key_id)
        elif isinstance(new, NewOto):  # the pending order counts beside the working one
            self._police(policy, key_id, new.working)
            self._police(policy, key_id, new.pending, also_open=1)
            result = venue.place_oto(new, now, key_id=key_id)
        else:  # the pending pair counts beside the working order
            self._police(policy, key_id, new.working)
            self._police(policy, key_id, new.above, also_open=1)
            self._police(policy, key_id, new.below, also_open=2)
            result = venue.place_otoco(new, now, key_id=key_id)
        reply = self._reply(result, now)
        if result.rejected is None and result.orders:
            list_id = result.orders[0].order_list_id
            if list_id is not None:
                reply.order_list = dataclasses.replace(venue.order_lists[list_id])
        return reply

    def _police(
        self, policy: RiskPolicy | None, key_id: int | None, order: PlaceOrder, also_open: int = 0
    ) -> None:
        """Raise :class:`PolicyViolation` if ``order`` breaks the key's ``policy``."""
        if policy is None or key_id is None or order.symbol not in self.venue.symbols:
            return  # an unknown symbol: the engine answers -1121
        notional = Decimal(0)
        if policy.max_notional is not None:
            notional = self.venue.notional(order) or Decimal(0)
        policy.check_order(
            symbol=order.symbol,
            notional=notional,
            open_orders=self.venue.open_orders_of_key(key_id) + also_open,
        )

    def _cid_taken(self, order: PlaceOrder, now: int) -> bool:
        """Whether ``order``'s client id was given to an order in the last
        :data:`RETRY_WINDOW_MS` (an open one the engine refuses by itself)."""
        cid = order.client_order_id
        if cid is None:
            return False
        placed = self._recent_cids.get((order.account, order.symbol, cid))
        return placed is not None and now - placed < RETRY_WINDOW_MS

    def _remember_cid(self, account: int, symbol: str, cid: str, now: int) -> None:
        key = (account, symbol, cid)
        self._recent_cids[key] = now
        recent = self._recent_order
        recent.append((now, key))
        while recent and now - recent[0][0] >= RETRY_WINDOW_MS:
            then, old = recent.popleft()
            if self._recent_cids.get(old) == then:
                del self._recent_cids[old]

    def _reply(self, result: Result, now: int) -> Reply:
        changed = result.rejected is None or len(result.events) > 1
        if changed:
            self.journal.applied(now)
            for o in result.orders:
                if o.status is OrderStatus.CANCELED:  # the client knows: the id is free
                    self._recent_cids.pop((o.account, o.symbol, o.client_order_id), None)
                elif o.time == now and o.account > 0:  # placed by this command
                    self._remember_cid(o.account, o.symbol, o.client_order_id, now)
        if self.copy_records:
            orders = [dataclasses.replace(o, fills=list(o.fills)) for o in result.orders]
        else:
            orders = result.orders
        return Reply(result.events, orders, changed=changed)

    # -- reads from memory (the embedded gateway's) ---------------------------------------

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

    def open_orders(self, account: int, symbol: str | None) -> list[OrderRecord]:
        return self.venue.open_orders(account, symbol)

    def balances(self, account: int) -> dict[str, tuple[int, int]]:
        return {
            asset: (b.free, b.locked) for asset, b in self.venue.ledger.balances(account).items()
        }

    def open_order_list(
        self, account: int, list_id: int | None, list_cid: str | None
    ) -> StoredOrderList | None:
        venue = self.venue
        found = venue.order_list(account, list_id, list_cid)
        if found is not None and len(orders := venue.list_orders(found)) == len(found.order_ids):
            return StoredOrderList(found, orders)
        return None

    def open_order_lists(self, account: int) -> list[StoredOrderList]:
        venue = self.venue
        return [
            StoredOrderList(ol, venue.list_orders(ol)) for ol in venue.open_order_lists(account)
        ]

    def order_list(self, list_id: int) -> OrderList | None:
        return self.venue.order_lists.get(list_id)


class LocalEngineLink:
    """The embedded engine: a command is applied in this process, on the event loop, and
    answered once the journal has made it durable."""

    def __init__(self, core: ExchangeCore) -> None:
        self.core = core

    async def submit(self, command: EngineCommand, now: int) -> Reply:
        reply = self.core.apply(command, now)
        if reply.changed:
            await self.core.journal.durable()
        return reply

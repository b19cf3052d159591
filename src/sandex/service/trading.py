"""Spot trading as the gateway's routes see it: place, cancel, cancel-replace, test,
order lists, reads, fees.

Each use case turns into one command to the engine (through an
:class:`~sandex.service.engine_commands.EngineLink`: in process, or over the broker) and
returns records: never the venue, the engine or the store. A command that changed
anything is answered only once it is durable; a key's risk policy is judged by the
engine, beside the book, and comes back as :class:`~sandex.keys.PolicyViolation`.

Reads of an account come from :class:`AccountReads`: the engine's memory in the
embedded server, storage when the engine is another process (it commits before it
answers, so a client always reads its own writes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Protocol, TypeVar

from sandex.exchange import (
    CancelAll,
    CancelOrder,
    CancelReplace,
    PlaceOrder,
    Rejected,
    Symbol,
)
from sandex.exchange.book import Level
from sandex.exchange.marketdata import MarketData
from sandex.exchange.order_lists import NewOco, NewOto, NewOtoco
from sandex.exchange.venue import OrderRecord, PreventedMatch, TradeRecord
from sandex.keys import PolicyViolation, RiskPolicy
from sandex.service.engine_commands import (
    Cancel,
    CancelList,
    CancelOpen,
    Check,
    EngineCommand,
    EngineLink,
    Place,
    PlaceList,
    Replace,
    Reply,
)
from sandex.service.exchange_core import ExchangeCore
from sandex.service.ports import ExchangeStore, History, PreventedQuery, StoredOrderList

__all__ = ["Trading", "AccountReads", "EngineReads", "StoredReads", "PublicBook"]

_T = TypeVar("_T")


class PublicBook(Protocol):
    """The order books as the public market-data routes read them: a read model fed by
    the engine's committed events (:class:`~sandex.service.market_feed.MarketReadModel`),
    in the engine's process as in a gateway elsewhere."""

    def depth(self, symbol: str, limit: int = 100) -> tuple[list[Level], list[Level]]: ...
    def best_bid(self, symbol: str) -> Level | None: ...
    def best_ask(self, symbol: str) -> Level | None: ...
    def last_price(self, symbol: str) -> int | None: ...
    def average_price(self, symbol: str, now: int) -> int | None: ...
    def update_id(self, symbol: str) -> int:
        """The book's last update id (``lastUpdateId``; the diff streams' ``u``)."""
        ...


class AccountReads(Protocol):
    """An account's orders, balances and history."""

    async def order(
        self, account: int, symbol: str, order_id: int | None, cid: str | None
    ) -> OrderRecord | None: ...
    async def open_orders(self, account: int, symbol: str | None) -> list[OrderRecord]: ...
    async def balances(self, account: int) -> dict[str, tuple[int, int]]: ...
    async def orders(self, account: int, symbol: str, window: History) -> list[OrderRecord]: ...
    async def trades(
        self, account: int, symbol: str, window: History, order_id: int | None
    ) -> list[TradeRecord]: ...
    async def prevented(
        self, account: int, symbol: str, query: PreventedQuery
    ) -> list[PreventedMatch]: ...
    async def order_list(
        self, account: int, list_id: int | None, list_cid: str | None
    ) -> StoredOrderList | None: ...
    async def open_order_lists(self, account: int) -> list[StoredOrderList]: ...
    async def order_lists(self, account: int, window: History) -> list[StoredOrderList]: ...


class StoredReads:
    """Reads where the engine is another process: everything from storage, which the
    engine commits before it answers."""

    def __init__(self, store: ExchangeStore) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(4, thread_name_prefix="sandex-account-reads")

    async def _read(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def order(
        self, account: int, symbol: str, order_id: int | None, cid: str | None
    ) -> OrderRecord | None:
        return await self._read(lambda: self.store.order(account, symbol, order_id, cid))

    async def open_orders(self, account: int, symbol: str | None) -> list[OrderRecord]:
        return await self._read(lambda: self.store.open_orders(account, symbol))

    async def balances(self, account: int) -> dict[str, tuple[int, int]]:
        return await self._read(lambda: self.store.balances(account))

    async def orders(self, account: int, symbol: str, window: History) -> list[OrderRecord]:
        return await self._read(lambda: self.store.orders(account, symbol, window))

    async def trades(
        self, account: int, symbol: str, window: History, order_id: int | None
    ) -> list[TradeRecord]:
        return await self._read(lambda: self.store.trades(account, symbol, window, order_id))

    async def prevented(
        self, account: int, symbol: str, query: PreventedQuery
    ) -> list[PreventedMatch]:
        return await self._read(lambda: self.store.prevented_matches(account, symbol, query))

    async def order_list(
        self, account: int, list_id: int | None, list_cid: str | None
    ) -> StoredOrderList | None:
        stored = await self._read(
            lambda: self.store.order_lists(account, History(limit=1), list_id, list_cid)
        )
        return stored[0] if stored else None

    async def open_order_lists(self, account: int) -> list[StoredOrderList]:
        return await self._read(lambda: self.store.open_order_lists(account))

    async def order_lists(self, account: int, window: History) -> list[StoredOrderList]:
        return await self._read(lambda: self.store.order_lists(account, window))

    def close(self) -> None:
        self._executor.shutdown(wait=False)


class EngineReads(StoredReads):
    """Reads in the engine's own process: what is open (orders, lists) and balances from
    memory, the rest from storage once everything applied so far is committed."""

    def __init__(self, core: ExchangeCore) -> None:
        super().__init__(core.store)
        self.core = core

    async def _read(self, fn: Callable[[], _T]) -> _T:
        return await self.core.journal.read(fn)

    async def order(
        self, account: int, symbol: str, order_id: int | None, cid: str | None
    ) -> OrderRecord | None:
        found = self.core.open_order(account, symbol, order_id, cid)
        return found if found is not None else await super().order(account, symbol, order_id, cid)

    async def open_orders(self, account: int, symbol: str | None) -> list[OrderRecord]:
        return self.core.open_orders(account, symbol)

    async def balances(self, account: int) -> dict[str, tuple[int, int]]:
        return self.core.balances(account)

    async def order_list(
        self, account: int, list_id: int | None, list_cid: str | None
    ) -> StoredOrderList | None:
        found = self.core.open_order_list(account, list_id, list_cid)
        return found if found is not None else await super().order_list(account, list_id, list_cid)

    async def open_order_lists(self, account: int) -> list[StoredOrderList]:
        return self.core.open_order_lists(account)


class Trading:
    """The spot use cases over an engine link and an account's reads."""

    def __init__(
        self,
        link: EngineLink,
        reads: AccountReads,
        symbols: dict[str, Symbol],
        *,
        maker_fee: Decimal,
        taker_fee: Decimal,
        book: PublicBook,
        market_data: MarketData,
    ) -> None:
        self.link = link
        self.reads = reads
        self.symbols = symbols
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.book = book
        """The order books, as the public routes read them."""
        self.market_data = market_data
        """Public trades, candles and tickers."""

    async def _submit(self, command: EngineCommand, now: int) -> Reply:
        reply = await self.link.submit(command, now)
        refusal = reply.refusal
        if refusal is not None:
            raise PolicyViolation(refusal.message, limit=refusal.limit)
        return reply

    # -- commands ----------------------------------------------------------------------

    async def place(
        self,
        order: PlaceOrder,
        now: int,
        *,
        key_id: int | None = None,
        policy: RiskPolicy | None = None,
    ) -> Reply:
        """Place ``order`` for its account, within the key's ``policy`` (raises
        :class:`~sandex.keys.PolicyViolation`)."""
        return await self._submit(Place(order, key_id, policy), now)

    async def check(
        self,
        order: PlaceOrder,
        now: int,
        *,
        key_id: int | None = None,
        policy: RiskPolicy | None = None,
    ) -> Rejected | None:
        """``POST /api/v3/order/test``: every check of a new order, nothing placed."""
        return (await self._submit(Check(order, key_id, policy), now)).checked

    async def cancel(self, cancel: CancelOrder, now: int) -> Reply:
        return await self._submit(Cancel(cancel), now)

    async def cancel_all(self, cancel: CancelAll, now: int) -> Reply:
        return await self._submit(CancelOpen(cancel), now)

    async def cancel_replace(
        self,
        replace: CancelReplace,
        now: int,
        *,
        key_id: int | None = None,
        policy: RiskPolicy | None = None,
    ) -> Reply:
        return await self._submit(Replace(replace, key_id, policy), now)

    async def place_list(
        self,
        new: NewOco | NewOto | NewOtoco,
        now: int,
        *,
        key_id: int | None = None,
        policy: RiskPolicy | None = None,
    ) -> Reply:
        """Place an OCO, OTO or OTOCO; the reply carries the list (``order_list``)."""
        return await self._submit(PlaceList(new, key_id, policy), now)

    async def cancel_order_list(
        self, symbol: str, account: int, list_id: int | None, list_cid: str | None, now: int
    ) -> Reply:
        """Cancel an open order list; the reply's ``order_list`` is None if none matched."""
        return await self._submit(CancelList(symbol, account, list_id, list_cid), now)

    # -- reads ---------------------------------------------------------------------------

    async def find_order(
        self, account: int, symbol: str, order_id: int | None, cid: str | None
    ) -> OrderRecord | None:
        return await self.reads.order(account, symbol, order_id, cid)

    async def open_orders(self, account: int, symbol: str | None = None) -> list[OrderRecord]:
        return await self.reads.open_orders(account, symbol)

    async def balances(self, account: int) -> dict[str, tuple[int, int]]:
        return await self.reads.balances(account)

    async def all_orders(self, account: int, symbol: str, window: History) -> list[OrderRecord]:
        return await self.reads.orders(account, symbol, window)

    async def my_trades(
        self, account: int, symbol: str, window: History, order_id: int | None = None
    ) -> list[TradeRecord]:
        return await self.reads.trades(account, symbol, window, order_id)

    async def prevented_matches(
        self, account: int, symbol: str, query: PreventedQuery
    ) -> list[PreventedMatch]:
        return await self.reads.prevented(account, symbol, query)

    async def find_order_list(
        self, account: int, list_id: int | None, list_cid: str | None
    ) -> StoredOrderList | None:
        """One order list of the account, open or not."""
        return await self.reads.order_list(account, list_id, list_cid)

    async def open_order_lists(self, account: int) -> list[StoredOrderList]:
        return await self.reads.open_order_lists(account)

    async def all_order_lists(self, account: int, window: History) -> list[StoredOrderList]:
        return await self.reads.order_lists(account, window)

"""The exchange as ``sandex serve`` runs it in one process, for tests that drive it
directly: the engine side (:class:`ExchangeCore`) and the use cases over it
(:class:`Trading` through the in-process link), with synchronous helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from sandex.bootstrap import Sandex
from sandex.exchange import (
    CancelAll,
    CancelOrder,
    CancelReplace,
    PlaceOrder,
    Rejected,
    default_symbols,
)
from sandex.exchange.makers import MarketMakers
from sandex.exchange.order_lists import NewOco, OrderList
from sandex.exchange.venue import Venue
from sandex.service.engine_commands import Reply
from sandex.service.exchange_core import ExchangeCore, LocalEngineLink
from sandex.service.journal import Durability
from sandex.service.local_market import DeliveringLink, LocalMarket
from sandex.service.ports import History, PendingCredit, StoredOrderList
from sandex.service.trading import EngineReads, Trading
from sandex.storage.exchange_store import SqlExchangeStore

__all__ = ["LocalExchange", "new_exchange"]


class LocalExchange:
    """An embedded exchange: ``core`` (venue, journal, simulator), ``market`` (the read
    model of its committed events) and ``trading``, as ``sandex serve`` wires them."""

    def __init__(self, core: ExchangeCore) -> None:
        self.core = core
        venue = core.venue
        self.market = LocalMarket(core)
        self.trading = Trading(
            DeliveringLink(LocalEngineLink(core), self.market),
            EngineReads(core),
            venue.symbols,
            maker_fee=venue.maker_fee,
            taker_fee=venue.taker_fee,
            book=self.market.model,
            market_data=core.market_data,
        )
        self.venue = venue
        self.engine = venue.engine
        self.store = core.store
        self.symbols = venue.symbols
        self.market_data = core.market_data

    @property
    def makers(self) -> MarketMakers | None:
        return self.core.simulator.makers

    def start(self, now: int) -> None:
        self.core.start(now)
        self.market.start(now)

    def close(self) -> None:
        self.core.close()

    def place(self, order: PlaceOrder, now: int, **kwargs: Any) -> Reply:
        return asyncio.run(self.trading.place(order, now, **kwargs))

    def check(self, order: PlaceOrder, now: int, **kwargs: Any) -> Rejected | None:
        return asyncio.run(self.trading.check(order, now, **kwargs))

    def cancel(self, cancel: CancelOrder, now: int) -> Reply:
        return asyncio.run(self.trading.cancel(cancel, now))

    def cancel_all(self, cancel: CancelAll, now: int) -> Reply:
        return asyncio.run(self.trading.cancel_all(cancel, now))

    def cancel_replace(self, replace: CancelReplace, now: int, **kwargs: Any) -> Reply:
        return asyncio.run(self.trading.cancel_replace(replace, now, **kwargs))

    def place_oco(self, new: NewOco, now: int, **kwargs: Any) -> Reply:
        return asyncio.run(self.trading.place_list(new, now, **kwargs))

    place_oto = place_otoco = place_oco

    def cancel_order_list(
        self, symbol: str, account: int, list_id: int | None, cid: str | None, now: int
    ) -> tuple[OrderList | None, Reply]:
        reply = asyncio.run(self.trading.cancel_order_list(symbol, account, list_id, cid, now))
        return reply.order_list, reply

    def open_order_lists(self, account: int) -> list[StoredOrderList]:
        return self.core.open_order_lists(account)

    def find_order_list(
        self, account: int, list_id: int | None, cid: str | None
    ) -> Coroutine[Any, Any, StoredOrderList | None]:
        return self.trading.find_order_list(account, list_id, cid)

    def all_order_lists(
        self, account: int, window: History
    ) -> Coroutine[Any, Any, list[StoredOrderList]]:
        return self.trading.all_order_lists(account, window)

    def durable(self) -> None:
        """Commit what was applied, and apply it to the read model."""
        asyncio.run(self.core.journal.durable())
        self.market.deliver()

    def apply_credits(self, pending: list[PendingCredit], now: int) -> int:
        return self.core.simulator.apply_credits(pending, now)

    def tick(self, now: int, symbol: str | None = None) -> None:
        self.core.simulator.tick(now, symbol)

    def shock(self, symbol: str, factor: float, duration_ms: int, now: int) -> None:
        self.core.simulator.shock(symbol, factor, duration_ms, now)

    def balances(self, account: int) -> dict[str, tuple[int, int]]:
        return self.core.balances(account)

    def read(self, coro: Any) -> Any:
        return asyncio.run(coro)


def new_exchange(
    sx: Sandex, *, durability: Durability = "group", simulate: bool = False, seed: int = 7
) -> LocalExchange:
    """An embedded exchange over the test database (not started)."""
    s = sx.settings
    core = ExchangeCore(
        Venue(default_symbols(), maker_fee=s.maker_fee, taker_fee=s.taker_fee),
        SqlExchangeStore(sx.db),
        durability=durability,
        simulate=simulate,
        seed=seed,
    )
    return LocalExchange(core)

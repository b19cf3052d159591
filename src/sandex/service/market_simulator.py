"""The simulated market around the venue: its makers' and takers' funding, the market
steps that requote and trade, operator crashes, pumps and liquidity changes, and
operator credits; the stored market history put back at start (the synthetic history
generated only where none is stored) and kept within its retention; and the schedule
that runs them beside the engine's commands.

Everything here changes the venue on the engine's thread, and each change is counted in
the journal like a command's, so the next batch makes it durable.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Final

from sandex.exchange import CancelAll, CancelOrder, Command, OpenOrder, PlaceOrder
from sandex.exchange.makers import MakerConfig, MarketMakers
from sandex.exchange.marketdata import MarketData, MarketHistory
from sandex.exchange.money import ASSET_DECIMALS
from sandex.exchange.venue import MAKER, TAKER, Venue
from sandex.service.failures import report_failure
from sandex.service.journal import ExchangeJournal
from sandex.service.ports import (
    BookRow,
    Clock,
    ExchangeStore,
    PendingCredit,
    PendingShock,
    ShockKind,
)

__all__ = ["MarketSimulator", "SYSTEM_FUNDING", "KEEP_MINUTES_MS", "PRUNE_EVERY_S"]

_log = logging.getLogger(__name__)

SYSTEM_FUNDING: Final = Decimal(10) ** 9
"""What the simulated makers and takers are topped up to, in USDT terms per asset."""
POLL_EVERY_S: Final = 0.5
"""How often operator credits and market orders are read from storage."""
KEEP_MINUTES_MS: Final = 31 * 24 * 3600 * 1000
"""Stored 1m candles are kept this long (the reach of the back-filled minutes); the newest
``keep_trades`` public trades of each symbol are kept (what the tape holds in memory)."""
PRUNE_EVERY_S: Final = 600.0
"""How often the schedule forgets the stored market history past its retention."""


class MarketSimulator:
    """Steps the simulated market (when ``simulate``) and applies operator orders."""

    def __init__(
        self,
        venue: Venue,
        journal: ExchangeJournal,
        market_data: MarketData,
        *,
        simulate: bool = True,
        seed: int = 7,
        maker_config: MakerConfig | None = None,
    ) -> None:
        self.venue = venue
        self.journal = journal
        self.market_data = market_data
        self.simulate = simulate
        self.seed = seed
        self.maker_config = maker_config
        self.makers: MarketMakers | None = None
        self._credits_seen: set[int] = set()
        journal.reference = self.reference

    def reference(self, symbol: str) -> str | None:
        """``symbol``'s simulated reference price (None without a simulation)."""
        return None if self.makers is None else str(self.makers.reference(symbol))

    def restore_history(self, history: dict[str, MarketHistory]) -> None:
        """Put the stored market history back (before :meth:`start`): each symbol's 1m
        candles, public trades and back-fill plan, as they were before the restart."""
        for name in sorted(self.venue.symbols):
            stored = history.get(name)
            if stored is not None:
                self.market_data.load(name, stored)

    def prune_history(self, store: ExchangeStore, now: int) -> int:
        """Forget stored market history past its retention (:data:`KEEP_MINUTES_MS`, the
        tape's ``keep_trades``); rows removed."""
        return store.prune_market_history(now - KEEP_MINUTES_MS, self.market_data.keep_trades)

    def start(self, books: list[BookRow], now: int) -> None:
        """Start the market from where ``books`` left it: fund the makers and takers, fill
        the market history before ``now`` where none is stored (before the first stored
        candle, from a stored plan the same history as before), take the first step."""
        if not self.simulate:
            return
        symbols = self.venue.symbols
        prices = {
            b.symbol: Decimal(b.reference_price)
            for b in books
            if b.reference_price is not None and b.symbol in symbols
        }
        self.makers = MarketMakers(
            symbols.values(), now, seed=self.seed, prices=prices, config=self.maker_config
        )
        self._fund_system()
        for index, (name, symbol) in enumerate(sorted(symbols.items())):
            if self.market_data.backfill_plan(name) is not None:
                continue  # stored: the history before it is generated as it was
            price = symbol.price_units(str(self.makers.reference(name)))
            self.market_data.backfill(name, now, price, self.seed * 100 + index)
        engine = self.venue.engine
        last = {name: engine.last_price(name) for name in symbols}
        quotes = {name: engine.resting(name, MAKER) for name in symbols}
        self._run(self.makers.step(now, last, quotes), now)

    def _fund_system(self) -> None:
        makers = self.makers
        assert makers is not None
        venue = self.venue
        assets: dict[str, Decimal] = {}
        for name, symbol in venue.symbols.items():
            if symbol.quote_asset == "USDT":
                assets[symbol.base_asset] = SYSTEM_FUNDING / makers.reference(name)
                assets["USDT"] = SYSTEM_FUNDING
        for symbol in venue.symbols.values():
            for asset in (symbol.base_asset, symbol.quote_asset):
                assets.setdefault(asset, SYSTEM_FUNDING)
        for account in (MAKER, TAKER):
            for asset, target in assets.items():
                units = int(target * 10**ASSET_DECIMALS)
                have = venue.ledger.balance(account, asset)
                if have.free + have.locked < units // 2:
                    venue.credit(account, asset, units - have.free - have.locked)

    # -- steps -------------------------------------------------------------------------

    def tick(self, now: int, symbol: str | None = None) -> None:
        """One step of the simulated market at ``now``, for one symbol or all (the
        schedule takes a symbol at a time)."""
        makers = self.makers
        if makers is None:
            return
        engine = self.venue.engine
        if symbol is None:
            names = self.venue.symbols
            last = {name: engine.last_price(name) for name in names}
            quotes = {name: engine.resting(name, MAKER) for name in names}
            self._run(makers.step(now, last, quotes), now)
        else:
            last_price, resting = engine.last_price(symbol), engine.resting(symbol, MAKER)
            self._run(makers.step_symbol(symbol, now, last_price, resting), now)

    def _run(self, commands: list[Command], now: int) -> None:
        venue = self.venue
        for command in commands:
            if isinstance(command, PlaceOrder):
                venue.place(command, now)
            elif isinstance(command, CancelAll):
                venue.cancel_all(command, now)
            elif isinstance(command, CancelOrder):
                venue.cancel(command, now)
        self.journal.applied(now)

    def quotes(self, symbol: str) -> list[OpenOrder]:
        """The makers' resting orders on ``symbol``."""
        return self.venue.engine.resting(symbol, MAKER)

    # -- operator orders -----------------------------------------------------------------

    def shock(self, symbol: str, factor: float, duration_ms: int, now: int) -> None:
        if self.makers is not None:
            self.makers.shock(symbol, factor, duration_ms, now)

    def apply_shock(self, shock: PendingShock, now: int) -> None:
        """Apply an operator's order for the simulated market read from storage: a crash
        or pump, or a change of liquidity (from the next market step on)."""
        makers = self.makers
        if makers is None:
            return
        if shock.kind is ShockKind.LIQUIDITY:
            makers.set_liquidity(shock.symbol, Decimal(shock.factor), now, shock.duration_ms)
        else:
            makers.shock(shock.symbol, float(shock.factor), shock.duration_ms, now)

    def apply_credits(self, pending: list[PendingCredit], now: int) -> int:
        """Apply operator credits / starting balances read from storage; the journal marks
        them applied in the same transaction as the balances they change."""
        done = 0
        for credit in pending:
            if credit.id in self._credits_seen:
                continue
            self.venue.credit(
                credit.account, credit.asset, credit.amount, ref=f"credit:{credit.id}"
            )
            self.journal.credited(credit.id)
            self._credits_seen.add(credit.id)
            done += 1
        if done:
            self.journal.applied(now)
        return done

    # -- the schedule ---------------------------------------------------------------------

    async def run(self, clock: Clock, store: ExchangeStore, tick_ms: int) -> None:
        """Step the market every ``tick_ms`` (a symbol at a time, commands between), and
        every :data:`POLL_EVERY_S` apply operator credits and market orders from
        ``store``, until canceled. A failed step is one log line; the next goes on."""
        loop = asyncio.get_running_loop()
        interval = tick_ms / 1000
        polls = 0
        every = max(1, round(POLL_EVERY_S / interval))
        prune_every = max(1, round(PRUNE_EVERY_S / interval))
        while True:
            await asyncio.sleep(interval)
            try:
                for symbol in sorted(self.venue.symbols):
                    self.tick(clock.now(), symbol)
                    await asyncio.sleep(0)
                now = clock.now()
                polls += 1
                if polls % every == 0:
                    # SQLite answers these small reads faster than a thread hop, which
                    # would also fight the loop for the GIL; PostgreSQL waits on the network
                    if store.network:
                        credits = await loop.run_in_executor(None, store.pending_credits)
                        shocks = await loop.run_in_executor(None, store.pending_shocks, now)
                    else:
                        credits, shocks = store.pending_credits(), store.pending_shocks(now)
                    self.apply_credits(credits, now)
                    for shock in shocks:
                        self.apply_shock(shock, now)
                if polls % prune_every == 0:  # off the loop: it may delete many rows
                    await loop.run_in_executor(None, self.prune_history, store, now)
                await self.journal.durable()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                report_failure(_log, "the market schedule failed a step; it goes on", exc)

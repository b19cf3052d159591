"""The engine's public events, and the read model gateways build from them.

The engine (:class:`MarketFeed`) gathers what its commands and market steps did to the
public market, and after each commit hands out the events: every trade
(:class:`PublicTradeEvent`) and, per symbol whose book moved, the price levels that
changed (:class:`BookChange`: a level's new total, 0 when it emptied, as Binance's
depth diffs). Each book change carries the symbol's update ids (``first``..``last``);
a gateway that missed one asks for a :class:`MarketSnapshot` again.

A gateway (:class:`MarketReadModel`) keeps books, last prices and the average-price
window from those events, and answers the public routes without asking the engine;
its :class:`~sandex.exchange.marketdata.MarketData` gets the same trades. A gateway first
loads the stored history (:meth:`MarketReadModel.load_history`: the engine writes its
trades and candles with each batch, before it publishes them) and catches up from
storage after a gap (:meth:`MarketReadModel.catch_up`); a trade it already has is
skipped by its id, so the two sources never count one twice. What the model applies it
tells its :class:`MarketObserver` (the WebSocket market streams,
:mod:`sandex.service.market_streams`). In one process the engine's committed events
reach a model the same way (:mod:`sandex.service.local_market`), so a book's update ids
are the same whichever way a gateway is served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, TypeAlias

from sandex.exchange import Symbol
from sandex.exchange.book import Level
from sandex.exchange.engine import Engine
from sandex.exchange.events import Trade
from sandex.exchange.marketdata import MarketData, MarketHistory, TapeTrade

__all__ = [
    "PublicTradeEvent",
    "BookChange",
    "BookState",
    "MarketSnapshot",
    "MarketEvent",
    "MarketFeed",
    "MarketReadModel",
    "MarketObserver",
]


class PublicTradeEvent(NamedTuple):
    symbol: str
    trade: Trade


class BookChange(NamedTuple):
    """Levels of ``symbol`` that changed in updates ``first``..``last`` (quantity 0: gone)."""

    symbol: str
    first: int
    last: int
    bids: list[Level]
    asks: list[Level]


class BookState(NamedTuple):
    """A whole book as of update ``update_id``."""

    symbol: str
    update_id: int
    bids: list[Level]
    asks: list[Level]
    last_price: int | None


class MarketSnapshot(NamedTuple):
    books: list[BookState]


MarketEvent: TypeAlias = PublicTradeEvent | BookChange


@dataclass(slots=True)
class _Published:
    update_id: int = 0
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)


class MarketFeed:
    """The engine's side: what changed in the public market since it last published."""

    def __init__(self, engine: Engine, symbols: Iterable[str], *, now: int) -> None:
        self.engine = engine
        self._books = {name: _Published(now * 1000) for name in symbols}
        """Update ids start from the start time (ms) * 1000: an engine that restarted
        continues far above where it stood, so a gateway sees the gap and resyncs."""
        self._trades: list[PublicTradeEvent] = []

    def record(self, symbol: str, trade: Trade) -> None:
        """A venue trade listener: every trade goes out with the next publish."""
        self._trades.append(PublicTradeEvent(symbol, trade))

    def take(self) -> list[MarketEvent]:
        """The events since the last call: trades, then each moved book's changes.

        A book's changes are the levels the engine touched since the last call
        (:meth:`~sandex.exchange.engine.Engine.changed_levels`) whose quantity differs
        from what was published: the feed must be the engine's only taker of them.
        """
        events: list[MarketEvent] = list(self._trades)
        self._trades = []
        changed_levels = self.engine.changed_levels
        for name, published in self._books.items():
            bids, asks = changed_levels(name)
            bid_changes = _publish(published.bids, bids)
            ask_changes = _publish(published.asks, asks)
            if not bid_changes and not ask_changes:
                continue
            published.update_id += 1
            events.append(
                BookChange(name, published.update_id, published.update_id, bid_changes, ask_changes)
            )
        return events

    def snapshot(self) -> MarketSnapshot:
        """Every book as last published (the next :meth:`take` continues from it)."""
        books = []
        for name, published in self._books.items():
            last_price = self.engine.last_price(name)
            books.append(
                BookState(
                    name,
                    published.update_id,
                    [Level(p, q) for p, q in published.bids.items()],
                    [Level(p, q) for p, q in published.asks.items()],
                    last_price,
                )
            )
        return MarketSnapshot(books)


def _publish(published: dict[int, int], levels: list[Level]) -> list[Level]:
    """Those of ``levels`` whose quantity differs from ``published``, which they update."""
    changed = []
    for level in levels:
        price, quantity = level
        if published.get(price, 0) != quantity:
            changed.append(level)
            if quantity:
                published[price] = quantity
            else:
                del published[price]
    return changed


class _Side:
    """Price levels of one side, sorted best first when read."""

    __slots__ = ("_sorted", "buy", "levels")

    def __init__(self, buy: bool) -> None:
        self.levels: dict[int, int] = {}
        self.buy = buy
        self._sorted: list[int] | None = []

    def set(self, price: int, quantity: int) -> None:
        if quantity:
            if price not in self.levels:
                self._sorted = None
            self.levels[price] = quantity
        elif self.levels.pop(price, None) is not None:
            self._sorted = None

    def replace(self, levels: list[Level]) -> None:
        self.levels = dict(levels)
        self._sorted = None

    def prices(self) -> list[int]:
        if self._sorted is None:
            self._sorted = sorted(self.levels, reverse=self.buy)
        return self._sorted

    def top(self, limit: int) -> list[Level]:
        levels = self.levels
        return [Level(p, levels[p]) for p in self.prices()[:limit]]


class _Book:
    __slots__ = ("asks", "bids", "last_price", "next_trade_id", "update_id", "window")

    def __init__(self) -> None:
        self.update_id = -1
        """-1: no snapshot yet (the book is unknown)."""
        self.bids = _Side(buy=True)
        self.asks = _Side(buy=False)
        self.next_trade_id = 0
        self.last_price: int | None = None
        self.window: list[tuple[int, int, int]] = []
        """(minute, quote, quantity) traded per minute, for the average price."""


def _count(book: _Book, trade_id: int, price: int, quantity: int, time: int) -> None:
    """A trade of ``book``'s symbol: its id, last price and average-price window."""
    book.next_trade_id = trade_id + 1
    book.last_price = price
    minute = time // 60_000
    quote = price * quantity
    window = book.window
    if window and window[-1][0] == minute:
        _, q, n = window[-1]
        window[-1] = (minute, q + quote, n + quantity)
    else:
        window.append((minute, quote, quantity))
        if len(window) > 120:
            del window[:60]


class MarketObserver(Protocol):
    """What follows the read model as it applies events (the WebSocket market streams)."""

    def traded(self, symbol: str, trade: Trade) -> None:
        """A trade the model had not seen, after it was counted."""

    def book_changed(self, change: BookChange) -> None:
        """A book change the model applied (its book now includes it)."""


class MarketReadModel:
    """A gateway's copy of the public market, fed by the engine's events.

    It answers what :class:`~sandex.service.trading.PublicBook` asks, forwards trades to
    ``market_data`` (public trades, candles, tickers; unless ``records_trades`` is off:
    in one process the engine's own market data is shared and already has them), and
    tells ``observer`` what it applied.
    """

    def __init__(
        self,
        symbols: dict[str, Symbol],
        market_data: MarketData,
        *,
        on_gap: Callable[[], None] = lambda: None,
        records_trades: bool = True,
    ) -> None:
        self.symbols = symbols
        self.market_data = market_data
        self.on_gap = on_gap
        """Called when an event shows that one was missed: ask for a snapshot."""
        self.records_trades = records_trades
        self.observer: MarketObserver | None = None
        self._books = {name: _Book() for name in symbols}

    @property
    def ready(self) -> bool:
        return all(b.update_id >= 0 for b in self._books.values())

    def load(self, snapshot: MarketSnapshot) -> None:
        for state in snapshot.books:
            book = self._books.get(state.symbol)
            if book is None:
                continue
            book.update_id = state.update_id
            book.bids.replace(state.bids)
            book.asks.replace(state.asks)
            if book.last_price is None:
                book.last_price = state.last_price

    def apply(self, event: MarketEvent) -> None:
        if isinstance(event, PublicTradeEvent):
            self._trade(event)
            return
        book = self._books.get(event.symbol)
        if book is None or book.update_id < 0 or event.last <= book.update_id:
            return  # not followed, not loaded yet, or already in the snapshot
        if event.first != book.update_id + 1:
            book.update_id = -1
            self.on_gap()
            return
        for side, levels in ((book.bids, event.bids), (book.asks, event.asks)):
            for price, quantity in levels:
                side.set(price, quantity)
        book.update_id = event.last
        if self.observer is not None:
            self.observer.book_changed(event)

    def _trade(self, event: PublicTradeEvent) -> None:
        book = self._books.get(event.symbol)
        trade = event.trade
        if book is None or trade.trade_id < book.next_trade_id:
            return
        _count(book, trade.trade_id, trade.price, trade.quantity, trade.time)
        if self.records_trades:
            self.market_data.record(event.symbol, trade)
        if self.observer is not None:
            self.observer.traded(event.symbol, trade)

    def load_history(self, history: dict[str, MarketHistory]) -> None:
        """Start from the stored history (before any event): candles and the tape into
        the market data, the newest trade's id, price and average-price window here."""
        for name, book in self._books.items():
            stored = history.get(name)
            if stored is None:
                continue
            self.market_data.load(name, stored)
            for t in stored.trades:
                _count(book, t.id, t.price, t.quantity, t.time)

    def load_tape(self) -> None:
        """Start from the trades ``market_data`` already holds (the engine's own, shared
        in one process): the newest trade's id, price and average-price window."""
        md = self.market_data
        for name, book in self._books.items():
            for t in md.recent_trades(name, md.keep_trades):
                if t.id >= book.next_trade_id:
                    _count(book, t.id, t.price, t.quantity, t.time)

    def next_trade_id(self, symbol: str) -> int:
        """The id of the first trade of ``symbol`` this model has not seen."""
        return self._books[symbol].next_trade_id

    def catch_up(self, trades: list[TapeTrade]) -> None:
        """Record stored trades missed while events could not be followed (in id order;
        those already seen are skipped)."""
        for t in trades:
            book = self._books.get(t.symbol)
            if book is None or t.id < book.next_trade_id:
                continue
            _count(book, t.id, t.price, t.quantity, t.time)
            self.market_data.record_trade(
                t.symbol, t.id, t.price, t.quantity, t.buyer_is_maker, t.time
            )

    # -- PublicBook -----------------------------------------------------------------------

    def depth(self, symbol: str, limit: int = 100) -> tuple[list[Level], list[Level]]:
        book = self._books[symbol]
        return book.bids.top(limit), book.asks.top(limit)

    def best_bid(self, symbol: str) -> Level | None:
        best = self._books[symbol].bids.top(1)
        return best[0] if best else None

    def best_ask(self, symbol: str) -> Level | None:
        best = self._books[symbol].asks.top(1)
        return best[0] if best else None

    def last_price(self, symbol: str) -> int | None:
        return self._books[symbol].last_price

    def average_price(self, symbol: str, now: int) -> int | None:
        """The average trade price over the symbol's avgPriceMins (as the engine's)."""
        book = self._books[symbol]
        minutes = self.symbols[symbol].rules.avg_price_mins
        if minutes:
            since = now // 60_000 - minutes
            quote = quantity = 0
            for minute, q, n in book.window:
                if minute > since:
                    quote += q
                    quantity += n
            if quantity:
                return quote // quantity
        return book.last_price

    def update_id(self, symbol: str) -> int:
        """The book's last update id (Binance's ``lastUpdateId`` of a depth snapshot)."""
        return max(0, self._books[symbol].update_id)

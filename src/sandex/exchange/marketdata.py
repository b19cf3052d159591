"""Public market data per symbol: the trade tape, aggregate trades, klines, 24h stats.

What Binance's public endpoints read (``/api/v3/trades``, ``aggTrades``, ``klines``,
``ticker/24hr``), kept from the trades the engine reports::

    md = MarketData(default_symbols())
    md.backfill("BTCUSDT", now, price=6_000_000, seed=7)  # history for a fresh server
    for event in engine.submit(command, now):
        if isinstance(event, Trade):
            md.record("BTCUSDT", event)
    md.klines("BTCUSDT", "1h", limit=3, now=now)

Pure: no I/O and no clock; ``now`` is a parameter. Prices and quantities are ints in
the symbol's units (:mod:`sandex.exchange.money`). Queries return the objects held
here (candles, trades), which callers read and never modify.

Klines are continuous, as Binance's are: an interval without trades is a flat
candle at the previous close with no volume, up to the candle that contains ``now``.
Every interval is aggregated from one price path per symbol
(:class:`~sandex.exchange.pricepath.PricePath`: back-filled history, then the trades),
so the candles of all intervals agree, the current one included. The back-fill is
generated on first use, so a server starts without paying for history nobody reads.

What storage needs to bring it all back after a restart, the trades recorded and the
minutes they changed, is handed out by :meth:`MarketData.drain` (once
:meth:`MarketData.track_changes` is on: the engine's copy) and put back by
:meth:`MarketData.load`: the trades and their 1m candles as they were, the back-fill
from the same plan, so the klines of every interval read the same as before.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import Final, Generic, NamedTuple, TypeVar

from sandex.exchange.errors import InvalidMarket
from sandex.exchange.events import Trade
from sandex.exchange.klines import INTERVALS, Candle, KlineSeries, next_open, open_time
from sandex.exchange.money import from_units
from sandex.exchange.orders import Side
from sandex.exchange.pricepath import (
    MINUTE,
    SECOND,
    Backfill,
    PathRules,
    PricePath,
    Rows,
    aggregate,
)
from sandex.exchange.symbols import Symbol, symbols_by_name

__all__ = [
    "MarketData",
    "PublicTrade",
    "AggTrade",
    "Ticker",
    "TapeTrade",
    "MinuteCandle",
    "MarketChanges",
    "MarketHistory",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "DAY_MS",
]

DEFAULT_LIMIT: Final = 500
"""Binance's default ``limit`` for trades, aggTrades and klines."""
MAX_LIMIT: Final = 1000
"""Binance's largest ``limit`` for trades, aggTrades and klines."""
DAY_MS: Final = 24 * 3600 * 1000

_MINUTE: Final = 60_000
_HOUR: Final = 60 * _MINUTE
_NOTIONAL_PER_MINUTE: Final = 10_000
"""Back-filled volume: this many times the symbol's minimum notional traded per minute."""
_PERCENT: Final = Decimal("0.001")
_EIGHT: Final = Decimal("0.00000001")


class PublicTrade(NamedTuple):
    """One trade as the public tape shows it (``GET /api/v3/trades``)."""

    id: int
    price: int
    quantity: int
    quote: int
    """``price * quantity``, in quote units."""
    time: int
    buyer_is_maker: bool


class AggTrade(NamedTuple):
    """Consecutive trades of one taker at one price and time (``GET /api/v3/aggTrades``)."""

    id: int
    price: int
    quantity: int
    first_id: int
    last_id: int
    time: int
    buyer_is_maker: bool


class TapeTrade(NamedTuple):
    """A trade of the public tape as storage keeps it: :class:`PublicTrade`'s fields, its
    symbol and the aggregate trade it joined."""

    symbol: str
    id: int
    price: int
    quantity: int
    quote: int
    time: int
    buyer_is_maker: bool
    agg_id: int


class MinuteCandle(NamedTuple):
    """A 1m candle of ``symbol`` that has trades (quiet minutes are flat and not kept)."""

    symbol: str
    candle: Candle


@dataclass(slots=True)
class MarketChanges:
    """What changed since the last :meth:`MarketData.drain`: new trades (in id order), the
    1m candles they changed (their values now), and back-fill plans made."""

    trades: list[TapeTrade]
    minutes: list[MinuteCandle]
    backfills: list[tuple[str, Backfill]]


@dataclass(frozen=True, slots=True)
class MarketHistory:
    """One symbol's stored history, as :meth:`MarketData.load` takes it: the back-fill
    plan, the 1m candles that traded (oldest first) and the newest trades (id order)."""

    backfill: Backfill | None = None
    minutes: list[Candle] = field(default_factory=list)
    trades: list[TapeTrade] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Ticker:
    """Rolling 24h statistics (``GET /api/v3/ticker/24hr``) in the symbol's units.

    The window opens on the minute 24 hours before ``close_time`` (Binance's rolling
    windows open on a minute too). ``first_id``/``last_id`` are -1 when no trade fell
    in it; back-filled history adds prices and volume but no trades.
    """

    symbol: str
    open: int
    high: int
    low: int
    last: int
    last_quantity: int
    prev_close: int
    volume: int
    quote_volume: int
    open_time: int
    close_time: int
    first_id: int
    last_id: int
    count: int
    weighted_avg_price: Decimal
    """``quote_volume / volume`` as a price, to eight decimals (0 without volume)."""

    @property
    def price_change(self) -> int:
        return self.last - self.open

    @property
    def price_change_percent(self) -> Decimal:
        """The change in percent of the open, to three decimals, as Binance shows it."""
        if not self.open:
            return Decimal("0.000")
        change = Decimal(self.price_change * 100) / Decimal(self.open)
        return change.quantize(_PERCENT, rounding=ROUND_HALF_UP)


_T = TypeVar("_T", PublicTrade, AggTrade)


class _Tape(Generic[_T]):
    """The last ``keep`` items of a time-ordered, id-ordered sequence."""

    __slots__ = ("_items", "_keep", "trimmed")

    def __init__(self, keep: int) -> None:
        self._items: list[_T] = []
        self._keep = keep
        self.trimmed = False

    def append(self, item: _T) -> None:
        items = self._items
        items.append(item)
        if len(items) > 2 * self._keep:  # trim in bulk, not on every append
            del items[: -self._keep]
            self.trimmed = True

    def replace_last(self, item: _T) -> None:
        self._items[-1] = item

    @property
    def last(self) -> _T | None:
        return self._items[-1] if self._items else None

    @property
    def _lo(self) -> int:
        return max(0, len(self._items) - self._keep)

    @property
    def complete(self) -> bool:
        """True while nothing recorded has been dropped."""
        return not self.trimmed and len(self._items) <= self._keep

    def first_at(self, value: int, key: Callable[[_T], int]) -> int:
        return bisect_left(self._items, value, lo=self._lo, key=key)

    def after(self, value: int, key: Callable[[_T], int]) -> int:
        return bisect_right(self._items, value, lo=self._lo, key=key)

    def first_since(self, time: int) -> _T | None:
        """The first item at or after ``time``, when the tape provably holds every item
        since then (nothing dropped, or an older item still kept); else None."""
        index = self.first_at(time, _TIME)
        if index >= len(self._items) or not (self.complete or index > self._lo):
            return None
        return self._items[index]

    def select(
        self,
        *,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int,
    ) -> list[_T]:
        """Items with ``id >= from_id`` and ``start <= time <= end``: the oldest ``limit``
        when ``from_id`` or ``start`` is given, else the newest ``limit``; oldest first."""
        lo, hi = self._lo, len(self._items)
        if from_id is not None:
            lo = max(lo, self.first_at(from_id, _ID))
        if start is not None:
            lo = max(lo, self.first_at(start, _TIME))
        if end is not None:
            hi = min(hi, self.after(end, _TIME))
        if hi <= lo or limit <= 0:
            return []
        if from_id is not None or start is not None:
            return self._items[lo : min(hi, lo + limit)]
        return self._items[max(lo, hi - limit) : hi]


_ID: Final = attrgetter("id")
_TIME: Final = attrgetter("time")


class _Market:
    """One symbol's market data."""

    __slots__ = (
        "aggs",
        "changed_from",
        "keep_candles",
        "next_agg_id",
        "path",
        "seconds",
        "seconds_filled",
        "symbol",
        "taker",
        "trades",
    )  # fmt: skip

    def __init__(self, symbol: Symbol, keep_trades: int, keep_candles: int) -> None:
        self.symbol = symbol
        self.keep_candles = keep_candles
        self.trades: _Tape[PublicTrade] = _Tape(keep_trades)
        self.aggs: _Tape[AggTrade] = _Tape(keep_trades)
        prices = symbol.rules.prices
        self.path = PricePath(
            PathRules(
                prices.start,
                prices.step,
                prices.start + (prices.stop - 1 - prices.start) // prices.step * prices.step,
                symbol.rules.quantities.step,
            )
        )
        self.seconds = KlineSeries("1s", keep=keep_candles)
        """The 1s candles of the trades (and, once read, of the back-fill before them)."""
        self.seconds_filled = False
        self.next_agg_id = 1
        self.taker: int | None = None
        """The taker order of the last aggregate trade, when the recorder named it."""
        self.changed_from: int | None = None
        """The first minute with a trade since the last drain (when tracked)."""


class MarketData:
    """Trades, aggregate trades, klines and 24h statistics for a set of symbols."""

    def __init__(
        self,
        symbols: Iterable[Symbol],
        *,
        keep_trades: int = 10_000,
        keep_candles: int = 5000,
    ) -> None:
        if keep_trades < MAX_LIMIT or keep_candles < 2 * MAX_LIMIT:
            raise ValueError("keep at least 1000 trades and 2000 candles per symbol")
        self.keep_trades = keep_trades
        self._markets = {
            name: _Market(s, keep_trades, keep_candles)
            for name, s in symbols_by_name(symbols).items()
        }
        self._tracking = False
        self._trades: list[TapeTrade] = []
        self._changed: list[_Market] = []
        self._backfills: list[tuple[str, Backfill]] = []

    def _market(self, symbol: str) -> _Market:
        market = self._markets.get(symbol)
        if market is None:
            raise InvalidMarket(f"unknown symbol {symbol}")
        return market

    # -- recording --------------------------------------------------------------------

    def record_trade(
        self,
        symbol: str,
        trade_id: int,
        price: int,
        quantity: int,
        buyer_is_maker: bool,
        time: int,
        *,
        taker_order_id: int | None = None,
    ) -> None:
        """Add one trade (in id and time order) to the tape, the aggregates and the klines.

        Consecutive trades at one price and time on the same side (and of the same
        taker order, when ``taker_order_id`` is given) make one aggregate trade.
        """
        m = self._market(symbol)
        quote = price * quantity
        m.trades.append(PublicTrade(trade_id, price, quantity, quote, time, buyer_is_maker))
        last = m.aggs.last
        if (
            last is not None
            and last.price == price
            and last.time == time
            and last.buyer_is_maker == buyer_is_maker
            and last.last_id + 1 == trade_id
            and m.taker == taker_order_id
        ):
            m.aggs.replace_last(last._replace(quantity=last.quantity + quantity, last_id=trade_id))
            agg_id = last.id
        else:
            agg_id = m.next_agg_id
            m.aggs.append(
                AggTrade(m.next_agg_id, price, quantity, trade_id, trade_id, time, buyer_is_maker)
            )
            m.next_agg_id += 1
            m.taker = taker_order_id
        if self._tracking:
            self._trades.append(
                TapeTrade(symbol, trade_id, price, quantity, quote, time, buyer_is_maker, agg_id)
            )
            if m.changed_from is None:
                m.changed_from = time - time % MINUTE
                self._changed.append(m)
        taker_buys = not buyer_is_maker
        m.path.record(time, price, quantity, quote, taker_buys)
        candles = m.seconds.candles
        if candles and time <= candles[-1].close_time:
            candles[-1].add(price, quantity, quote, taker_buys)  # the common case, inline
        else:
            m.seconds.add_trade(time, price, quantity, quote, taker_buys=taker_buys)

    def resume(self, symbol: str, next_trade_id: int) -> None:
        """After a restart: number new aggregate trades from ``next_trade_id`` on, so an
        id never names two different aggregates (an aggregate holds at least one trade,
        so its id never runs ahead of its first trade's)."""
        m = self._market(symbol)
        m.next_agg_id = max(m.next_agg_id, next_trade_id)

    def record(self, symbol: str, trade: Trade) -> None:
        """Record an engine :class:`~sandex.exchange.events.Trade` of ``symbol``."""
        self.record_trade(
            symbol,
            trade.trade_id,
            trade.price,
            trade.quantity,
            trade.taker_side is Side.SELL,
            trade.time,
            taker_order_id=trade.taker_order_id,
        )

    def backfill(
        self,
        symbol: str,
        now: int,
        price: int,
        seed: int,
        *,
        volume_per_minute: float | None = None,
    ) -> None:
        """Give ``symbol`` history before the minute that contains ``now``, closing at
        ``price`` (price units): 1m candles for the last 31 days and more (1s for the
        last 20 minutes), 1h before them back 1000 days, 1d before those back 1000
        months, every interval aggregated from them.

        The rows come from a walk seeded by ``seed`` (:mod:`sandex.exchange.pricepath`),
        generated when first read: the same seed, ``now`` and ``price`` give the same
        history. ``volume_per_minute`` is in base-asset units (default: 10,000 minimum
        notionals a minute, at ``price``). Once per symbol, before any of its klines are
        read.
        """
        m = self._market(symbol)
        if m.path.plan is not None or m.seconds_filled:
            raise ValueError(f"{symbol} already has its history")
        if price <= 0:
            raise ValueError("a back-fill needs a positive price")
        if volume_per_minute is None:
            decimal_price = float(from_units(price, m.symbol.price_scale))
            notional = float(m.symbol.notional.min_notional) * _NOTIONAL_PER_MINUTE
            volume_per_minute = notional / decimal_price if notional else 1.0
        q_unit: int = 10**m.symbol.quantity_scale
        self.set_backfill(symbol, Backfill(now, price, seed, volume_per_minute * q_unit))

    def set_backfill(self, symbol: str, plan: Backfill) -> None:
        """Generate ``symbol``'s history before ``plan.anchor`` from ``plan`` (as
        :meth:`backfill` does; or a stored plan moved up to the first stored candle)."""
        m = self._market(symbol)
        if m.path.plan is not None or m.seconds_filled:
            raise ValueError(f"{symbol} already has its history")
        m.path.plan = plan
        if self._tracking:
            self._backfills.append((symbol, plan))

    def backfill_plan(self, symbol: str) -> Backfill | None:
        """What ``symbol``'s back-fill is generated from (None: no back-fill)."""
        return self._market(symbol).path.plan

    # -- storage --------------------------------------------------------------------------

    def track_changes(self) -> None:
        """Keep what changes for :meth:`drain` from now on (the copy storage follows;
        others never drain, so they keep nothing)."""
        self._tracking = True

    def drain(self) -> MarketChanges:
        """The trades recorded, the 1m candles they changed and the back-fill plans made
        since the last call (see :meth:`track_changes`)."""
        trades, self._trades = self._trades, []
        backfills, self._backfills = self._backfills, []
        minutes: list[MinuteCandle] = []
        for m in self._changed:
            since, m.changed_from = m.changed_from, None
            rows = m.path.minutes
            if rows is None or since is None:
                continue
            name = m.symbol.name
            for i in range(max(0, (since - rows.start) // MINUTE), len(rows)):
                if rows.n[i]:  # quiet minutes are flat at the close before: not kept
                    minutes.append(MinuteCandle(name, _row(rows, i)))
        self._changed = []
        return MarketChanges(trades, minutes, backfills)

    def load(self, symbol: str, history: MarketHistory) -> None:
        """Put back ``symbol``'s stored history, before anything is recorded or read: the
        1m candles (the quiet minutes between them flat at the close before, as they
        were), the back-fill plan, and the trades (the tape, their aggregate trades and
        their 1s candles). Later trades continue from there."""
        m = self._market(symbol)
        path = m.path
        if path.plan is not None or path.minutes is not None or m.trades.last is not None:
            raise ValueError(f"{symbol} already has its history")
        rows: Rows | None = None
        for c in history.minutes:
            if rows is None:
                rows = Rows(MINUTE, c.open_time)
            elif c.open_time < rows.stop:
                raise ValueError("1m candles must be loaded oldest first, once each")
            while rows.stop < c.open_time:
                rows.flat(rows.c[-1])
            rows.append(
                c.open, c.high, c.low, c.close, c.volume, c.taker_buy_volume, c.trades,
                c.quote_volume, c.taker_buy_quote_volume,
            )  # fmt: skip
        path.minutes = rows
        path.plan = history.backfill
        aggs, seconds = m.aggs, m.seconds
        for t in history.trades:
            m.trades.append(
                PublicTrade(t.id, t.price, t.quantity, t.quote, t.time, t.buyer_is_maker)
            )
            last = aggs.last
            if last is not None and last.id == t.agg_id:
                aggs.replace_last(last._replace(quantity=last.quantity + t.quantity, last_id=t.id))
            else:
                aggs.append(
                    AggTrade(t.agg_id, t.price, t.quantity, t.id, t.id, t.time, t.buyer_is_maker)
                )
            seconds.add_trade(t.time, t.price, t.quantity, t.quote, taker_buys=not t.buyer_is_maker)
        if history.trades:
            m.next_agg_id = max(m.next_agg_id, history.trades[-1].agg_id + 1)

    def _seconds(self, m: _Market, now: int) -> KlineSeries:
        """The 1s series of ``m``, the back-filled seconds put before it on first use."""
        if not m.seconds_filled:
            m.seconds_filled = True
            m.path.ensure(now, coarse=False)
            rows = m.path.seconds
            if rows is not None:
                live = m.seconds.candles
                merged = KlineSeries("1s", keep=m.keep_candles)
                for i in range(len(rows)):
                    opened = rows.start + i * SECOND
                    if live and opened >= live[0].open_time:
                        break
                    merged.add_candle(_row(rows, i))
                for candle in live:
                    merged.add_candle(candle)
                m.seconds = merged
        return m.seconds

    # -- trades -----------------------------------------------------------------------

    def recent_trades(self, symbol: str, limit: int = DEFAULT_LIMIT) -> list[PublicTrade]:
        """The newest ``limit`` trades, oldest first (``GET /api/v3/trades``)."""
        return self._market(symbol).trades.select(limit=limit)

    def historical_trades(
        self, symbol: str, limit: int = DEFAULT_LIMIT, from_id: int | None = None
    ) -> list[PublicTrade]:
        """``limit`` trades from id ``from_id`` on (or the newest), oldest first
        (``GET /api/v3/historicalTrades``); the tape reaches back ``keep_trades`` trades."""
        return self._market(symbol).trades.select(from_id=from_id, limit=limit)

    def last_trade(self, symbol: str) -> PublicTrade | None:
        return self._market(symbol).trades.last

    def last_price(self, symbol: str) -> int | None:
        """The last trade's price, else the back-filled close, else None."""
        m = self._market(symbol)
        last = m.trades.last
        if last is not None:
            return last.price
        plan = m.path.plan
        return None if plan is None else plan.price

    def agg_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[AggTrade]:
        """Aggregate trades with ``id >= from_id`` and ``start <= time <= end``, oldest
        first: the oldest ``limit`` of them when ``from_id`` or ``start`` is given, else
        the newest ``limit`` (``GET /api/v3/aggTrades``; the one-hour bound on
        ``endTime - startTime`` is the caller's to enforce)."""
        return self._market(symbol).aggs.select(from_id=from_id, start=start, end=end, limit=limit)

    # -- klines -----------------------------------------------------------------------

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = DEFAULT_LIMIT,
        now: int,
        offset: int = 0,
    ) -> list[Candle]:
        """Candles opening in ``[start, end]`` up to the one that contains ``now``: the
        oldest ``limit`` when ``start`` is given, else the newest (``GET /api/v3/klines``).

        The series begins with the first candle there is (back-filled or traded) and
        has no gaps; an interval without trades is flat at the previous close. Windows
        are aligned in the time zone ``offset`` ms east of UTC (``timeZone``; ``start``
        and ``end`` stay UTC epoch ms). ``KeyError`` for an unknown interval.
        """
        if interval not in INTERVALS:
            raise KeyError(interval)
        m = self._market(symbol)
        if limit <= 0:
            return []
        if interval == "1s":
            return _series_klines(self._seconds(m, now), start, end, limit, now)
        length = INTERVALS[interval]
        path = m.path
        stores = path.ensure(now, coarse=length >= _HOUR)
        last = path.last_open()
        if not stores or last is None:
            return []
        floor = _first_row(stores, length)
        if length < _HOUR:
            floor = path.first_minute or floor
        first = open_time(floor, interval, offset)
        hi = max(open_time(now, interval, offset), open_time(last, interval, offset))
        if end is not None:
            hi = min(hi, open_time(end, interval, offset))
        lo = first
        if start is not None:
            aligned = open_time(start, interval, offset)
            lo = max(lo, aligned if aligned == start else next_open(aligned, interval, offset))
        if hi < lo:
            return []
        opens = _opens(interval, lo, hi, limit, forward=start is not None, offset=offset)
        if length < _HOUR:
            path.reach(opens[0])
            stores = (path.minutes,) if path.minutes is not None else stores
        out: list[Candle] = []
        close: int | None = None
        for opened in opens:
            after = next_open(opened, interval, offset)
            candle = aggregate(stores, opened, after)
            if candle is None:
                if close is None:
                    close = path.close_before(opened, stores) or 0
                candle = Candle(opened, after - 1, close, close, close, close)
            out.append(candle)
            close = candle.close
        return out

    # -- 24h statistics ---------------------------------------------------------------

    def ticker(self, symbol: str, now: int) -> Ticker:
        """Rolling 24h statistics of ``symbol`` at ``now`` (from the 1m candles)."""
        m = self._market(symbol)
        opened = open_time(now - DAY_MS, "1m")
        m.path.ensure(now, coarse=False)
        m.path.reach(opened)
        stores = (m.path.minutes,) if m.path.minutes is not None else ()
        rows = stores[-1] if stores else None
        prev_close = 0
        first_open = last_close = high = low = volume = quote = count = 0
        traded = False
        if rows is not None:
            prev_close = m.path.close_before(opened, stores) or 0
            lo = max(0, -(-(opened - rows.start) // rows.step))
            hi = min(len(rows), (now - rows.start) // rows.step + 1)
            for i in range(lo, hi):
                if not (rows.v[i] or rows.n[i]):
                    continue  # a quiet minute: flat at the price before it
                if not traded:
                    first_open, high, low, traded = rows.o[i], rows.h[i], rows.l[i], True
                high = max(high, rows.h[i])
                low = min(low, rows.l[i])
                last_close = rows.c[i]
                volume += rows.v[i]
                quote += rows.q[i]
                count += rows.n[i]
        if not traded:  # a quiet day: flat at the last price
            first_open = last_close = high = low = prev_close
        last_trade = m.trades.last
        first_id = last_id = -1
        if count and last_trade is not None:
            last_id = last_trade.id
            first = m.trades.first_since(opened)
            # past the tape's reach, count back: a symbol's trade ids run without gaps
            first_id = first.id if first is not None else last_id - count + 1
        avg = Decimal(0)
        if volume:
            s = m.symbol
            avg = from_units(quote, s.quote_scale) / from_units(volume, s.quantity_scale)
            avg = avg.quantize(_EIGHT, rounding=ROUND_HALF_UP)
        return Ticker(
            symbol=symbol,
            open=first_open,
            high=high,
            low=low,
            last=last_close,
            last_quantity=last_trade.quantity if last_trade is not None else 0,
            prev_close=prev_close,
            volume=volume,
            quote_volume=quote,
            open_time=opened,
            close_time=now,
            first_id=first_id,
            last_id=last_id,
            count=count,
            weighted_avg_price=avg,
        )


def _row(rows: Rows, i: int) -> Candle:
    opened = rows.start + i * rows.step
    return Candle(
        opened,
        opened + rows.step - 1,
        rows.o[i],
        rows.h[i],
        rows.l[i],
        rows.c[i],
        rows.v[i],
        rows.q[i],
        rows.n[i],
        rows.tb[i],
        rows.tq[i],
    )


def _first_row(stores: tuple[Rows, ...], length: int) -> int:
    """Where an interval of ``length`` ms begins: the oldest rows no longer than it."""
    fitting = [r.start for r in stores if r.step <= length and (r.o or r is stores[-1])]
    return min(fitting) if fitting else stores[-1].start


def _series_klines(
    series: KlineSeries, start: int | None, end: int | None, limit: int, now: int
) -> list[Candle]:
    """:meth:`MarketData.klines` over a series of candles (1s)."""
    interval = series.interval
    candles = series.candles
    if not candles:
        return []
    first = candles[0].open_time
    hi = max(open_time(now, interval), candles[-1].open_time)
    if end is not None:
        hi = min(hi, open_time(end, interval))
    lo = first
    if start is not None:
        aligned = open_time(start, interval)
        lo = max(lo, aligned if aligned == start else next_open(aligned, interval))
    if hi < lo:
        return []
    opens = _opens(interval, lo, hi, limit, forward=start is not None)
    have = {c.open_time: c for c in series.window(start=opens[0], end=opens[-1], limit=limit)}
    out: list[Candle] = []
    close = 0
    if opens[0] not in have:
        before = series.window(start=None, end=opens[0] - 1, limit=1)
        close = before[0].close  # opens[0] > first, so a candle precedes it
    for opened in opens:
        candle = have.get(opened)
        if candle is None:
            candle = Candle(opened, next_open(opened, interval) - 1, close, close, close, close)
        out.append(candle)
        close = candle.close
    return out


def _opens(
    interval: str, lo: int, hi: int, limit: int, *, forward: bool, offset: int = 0
) -> list[int]:
    """Open times from ``lo`` to ``hi`` (both aligned), at most ``limit`` of them: the
    first ones when ``forward``, else the last ones."""
    if interval != "1M":
        step = INTERVALS[interval]
        if forward:
            return list(range(lo, min(hi, lo + (limit - 1) * step) + 1, step))
        return list(range(max(lo, hi - (limit - 1) * step), hi + 1, step))
    out: list[int] = []
    if forward:
        opened = lo
        while opened <= hi and len(out) < limit:
            out.append(opened)
            opened = next_open(opened, interval, offset)
        return out
    opened = hi
    while opened >= lo and len(out) < limit:
        out.append(opened)
        opened = open_time(opened - 1, interval, offset)
    out.reverse()
    return out

"""Binance's public market streams, made from a gateway's market read model.

The WebSocket endpoint (:mod:`sandex.http.websocket`) checks names with
:meth:`MarketStreams.parse` and subscribes its connections (:class:`StreamSink`); this
hub makes each message once per stream and hands the same bytes to every subscriber.
What it sends, as Binance does (field letters and types of Binance's raw streams;
prices and quantities formatted with the symbol's precision, as the REST routes do):

- ``<s>@trade``: every trade, as soon as the model has it;
- ``<s>@aggTrade``: the trades of one taker order at one price, once its batch is in,
  with the ids of ``GET /api/v3/aggTrades``;
- ``<s>@bookTicker``: the best bid and ask whenever either changes (``u``: the book's
  update id);
- ``<s>@depth`` (every 1000 ms) and ``<s>@depth@100ms``: the levels that changed in the
  interval, the latest quantity per price, ``U``..``u`` the book updates they cover
  (nothing when nothing changed); after a gap in the model the ids jump, and clients
  resync from ``GET /api/v3/depth``, whose ``lastUpdateId`` counts the same updates;
- ``<s>@depth5/10/20`` (every 1000 ms) and ``@100ms``: the top of the book;
- ``<s>@kline_<interval>``: the current candle every 2 s (1 s for ``1s``), and each
  candle once more as it closes (``x: true``);
- ``<s>@ticker``, ``<s>@miniTicker`` (every 1000 ms) and ``!miniTicker@arr`` (every
  1000 ms, the symbols whose statistics changed): rolling 24 h, as the REST ticker;
- ``<s>@avgPrice`` (every 1000 ms).

``E`` is the gateway's clock at the time of sending. The timed streams are made by
:meth:`MarketStreams.tick` (every :data:`TICK_MS`, from :meth:`MarketStreams.run`); the
others as the read model applies events (:class:`~sandex.service.market_feed.MarketObserver`).
A subscriber whose ``push`` raises is dropped (one log line); nothing here waits for one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from sandex.exchange import Symbol
from sandex.exchange.book import Level
from sandex.exchange.events import Trade
from sandex.exchange.klines import INTERVALS, Candle
from sandex.exchange.marketdata import MAX_LIMIT
from sandex.exchange.orders import Side
from sandex.service.failures import Quietly, report_failure
from sandex.service.market_feed import BookChange, MarketReadModel
from sandex.service.ports import Clock

__all__ = ["StreamSink", "MarketStreams", "TICK_MS", "KLINE_EVERY_MS"]

_log = logging.getLogger(__name__)

TICK_MS: Final = 100
"""How often the timed streams are looked at (the fastest of them: ``@100ms``)."""
KLINE_EVERY_MS: Final = 2000
"""How often a kline stream sends its current candle (``1s``: every second)."""

_MINI_ARR: Final = "!miniTicker@arr"
_PARTIAL_LEVELS: Final = (5, 10, 20)
_SIMPLE: Final = {
    "trade": "trade",
    "aggTrade": "aggTrade",
    "depth": "depth",
    "depth@100ms": "depth",
    "ticker": "ticker",
    "miniTicker": "miniTicker",
    "bookTicker": "bookTicker",
    "avgPrice": "avgPrice",
}


class StreamSink(Protocol):
    def push(self, stream: str, payload: bytes) -> None:
        """One message for ``stream`` (the name as subscribed, e.g.
        "btcusdt@depth@100ms"): ``payload`` is the JSON bytes of the data object exactly
        as Binance sends it on a raw stream. Must not block: the connection queues it and
        drops itself when its queue is too long (slow consumer)."""


@dataclass(frozen=True, slots=True)
class _Stream:
    """What a stream name means: its kind, symbol (``""`` for ``!miniTicker@arr``), and
    the kline interval or the partial book's levels."""

    kind: str
    symbol: str = ""
    fast: bool = False
    """``@100ms``."""
    interval: str = ""
    levels: int = 0


@dataclass(slots=True)
class _Diff:
    """Book changes gathered for one diff stream since it last sent."""

    first: int | None = None
    last: int = 0
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Kline:
    open_time: int | None = None
    """The open time of the candle sent last (None: nothing sent yet)."""
    close_time: int = 0
    due: int = 0
    """When the current candle is sent again."""


def _parse(name: str, symbols: Mapping[str, Symbol]) -> _Stream | None:
    if name == _MINI_ARR:
        return _Stream("miniArr")
    lower, at, rest = name.partition("@")
    symbol = symbols.get(lower.upper())
    if not at or symbol is None or lower != symbol.name.lower():
        return None
    kind = _SIMPLE.get(rest)
    if kind is not None:
        return _Stream(kind, symbol.name, fast=rest.endswith("@100ms"))
    if rest.startswith("kline_"):
        interval = rest[6:]
        return _Stream("kline", symbol.name, interval=interval) if interval in INTERVALS else None
    if rest.startswith("depth"):
        levels, _, speed = rest[5:].partition("@")
        if speed not in ("", "100ms") or levels not in {str(n) for n in _PARTIAL_LEVELS}:
            return None
        return _Stream("partial", symbol.name, fast=bool(speed), levels=int(levels))
    return None


class MarketStreams:
    """The market streams of one gateway process, fed by its read model (which it
    observes from construction on)."""

    def __init__(self, symbols: Mapping[str, Symbol], model: MarketReadModel, clock: Clock) -> None:
        self.symbols = symbols
        self.model = model
        self.market_data = model.market_data
        self.clock = clock
        model.observer = self
        self._meaning: dict[str, _Stream] = {}
        """Every stream subscribed now, by name."""
        self._sinks: dict[str, dict[StreamSink, None]] = {}
        self._subscribed: dict[StreamSink, set[str]] = {}
        self._trade_streams = {name: f"{name.lower()}@trade" for name in symbols}
        self._agg_streams = {name: f"{name.lower()}@aggTrade" for name in symbols}
        self._book_streams = {name: f"{name.lower()}@bookTicker" for name in symbols}
        self._diffs: dict[str, dict[str, _Diff]] = {name: {} for name in symbols}
        """Per symbol, the diff streams subscribed and what each has gathered."""
        self._tops: dict[str, tuple[Level | None, Level | None]] = {}
        """The best levels last sent on a symbol's bookTicker."""
        self._klines: dict[str, _Kline] = {}
        self._aggs: dict[str, tuple[int, int, int, int]] = {}
        """Per symbol, the trades of this batch not yet sent as aggregate trades: first
        and last id, first and last time."""
        self._flush_scheduled = False
        self._minis: dict[str, tuple[str, ...]] = {}
        """What ``!miniTicker@arr`` last sent per symbol."""
        self._second: int | None = None
        self._task: asyncio.Task[None] | None = None

    # -- subscriptions ------------------------------------------------------------------

    def parse(self, name: str) -> str | None:
        """The canonical stream name if ``name`` is a spot stream of a listed symbol
        (lowercase symbol, as Binance's names are), else None."""
        return name if name in self._meaning or _parse(name, self.symbols) else None

    def subscribe(self, stream: str, sink: StreamSink) -> None:
        """Send ``stream``'s messages to ``sink`` (``stream`` as :meth:`parse` returned)."""
        meaning = self._meaning.get(stream) or _parse(stream, self.symbols)
        if meaning is None:
            raise ValueError(f"not a market stream: {stream!r}")
        sinks = self._sinks.get(stream)
        if sinks is None:
            sinks = self._sinks[stream] = {}
            self._meaning[stream] = meaning
            if meaning.kind == "depth":
                self._diffs[meaning.symbol][stream] = _Diff()
            elif meaning.kind == "kline":
                self._klines[stream] = _Kline()
            elif meaning.kind == "bookTicker":
                self._tops.pop(meaning.symbol, None)
            elif meaning.kind == "miniArr":
                self._minis.clear()
        sinks[sink] = None
        self._subscribed.setdefault(sink, set()).add(stream)

    def unsubscribe(self, stream: str, sink: StreamSink) -> None:
        sinks = self._sinks.get(stream)
        if sinks is not None:
            sinks.pop(sink, None)
            if not sinks:
                self._forget(stream)
        streams = self._subscribed.get(sink)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._subscribed[sink]

    def unsubscribe_all(self, sink: StreamSink) -> None:
        for stream in list(self._subscribed.get(sink, ())):
            self.unsubscribe(stream, sink)

    def subscribers(self, stream: str) -> int:
        """How many sinks ``stream`` has."""
        return len(self._sinks.get(stream, ()))

    def _forget(self, stream: str) -> None:
        del self._sinks[stream]
        meaning = self._meaning.pop(stream)
        if meaning.kind == "depth":
            del self._diffs[meaning.symbol][stream]
        elif meaning.kind == "kline":
            del self._klines[stream]

    def _send(self, stream: str, payload: bytes) -> None:
        sinks = self._sinks.get(stream)
        if not sinks:
            return
        for sink in list(sinks):
            try:
                sink.push(stream, payload)
            except Exception as exc:
                report_failure(
                    _log, "a market stream subscriber failed; dropped", exc, level=logging.WARNING
                )
                self.unsubscribe_all(sink)

    # -- events (the read model's observer) ---------------------------------------------

    def traded(self, symbol: str, trade: Trade) -> None:
        stream = self._trade_streams[symbol]
        s = self.symbols[symbol]
        if stream in self._sinks:
            payload = {
                "e": "trade",
                "E": self.clock.now(),
                "s": symbol,
                "t": trade.trade_id,
                "p": s.format_price(trade.price),
                "q": s.format_quantity(trade.quantity),
                "T": trade.time,
                "m": trade.taker_side is Side.SELL,
                "M": True,
            }
            self._send(stream, orjson.dumps(payload))
        if self._agg_streams[symbol] in self._sinks:
            pending = self._aggs.get(symbol)
            if pending is None:
                self._aggs[symbol] = (trade.trade_id, trade.trade_id, trade.time, trade.time)
            else:
                first, _, start, _ = pending
                self._aggs[symbol] = (first, trade.trade_id, start, trade.time)
            if not self._flush_scheduled:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    return  # sent by the next flush() or tick()
                self._flush_scheduled = True
                loop.call_soon(self.flush)

    def book_changed(self, change: BookChange) -> None:
        symbol = change.symbol
        diffs = self._diffs[symbol]
        if diffs:
            for stream, diff in diffs.items():
                if diff.first is not None and change.first != diff.last + 1:
                    self._send_diff(stream, symbol, diff, self.clock.now())  # a gap: not merged
                if diff.first is None:
                    diff.first = change.first
                diff.last = change.last
                for price, quantity in change.bids:
                    diff.bids[price] = quantity
                for price, quantity in change.asks:
                    diff.asks[price] = quantity
        stream = self._book_streams[symbol]
        if stream in self._sinks:
            model = self.model
            top = (model.best_bid(symbol), model.best_ask(symbol))
            if top != self._tops.get(symbol):
                self._tops[symbol] = top
                s = self.symbols[symbol]
                bid, ask = top
                payload = {
                    "u": model.update_id(symbol),
                    "s": symbol,
                    "b": s.format_price(bid.price if bid else 0),
                    "B": s.format_quantity(bid.quantity if bid else 0),
                    "a": s.format_price(ask.price if ask else 0),
                    "A": s.format_quantity(ask.quantity if ask else 0),
                }
                self._send(stream, orjson.dumps(payload))

    def flush(self) -> None:
        """Send the aggregate trades of the trades applied so far (called once the
        batch that brought them is applied)."""
        self._flush_scheduled = False
        pending, self._aggs = self._aggs, {}
        md = self.market_data
        now = self.clock.now()
        for symbol, (first, last, start, end) in pending.items():
            stream = self._agg_streams[symbol]
            if stream not in self._sinks:
                continue
            s = self.symbols[symbol]
            for a in md.agg_trades(symbol, start=start, end=end, limit=MAX_LIMIT):
                if a.last_id < first or a.first_id > last:
                    continue
                payload = {
                    "e": "aggTrade",
                    "E": now,
                    "s": symbol,
                    "a": a.id,
                    "p": s.format_price(a.price),
                    "q": s.format_quantity(a.quantity),
                    "f": a.first_id,
                    "l": a.last_id,
                    "T": a.time,
                    "m": a.buyer_is_maker,
                    "M": True,
                }
                self._send(stream, orjson.dumps(payload))

    # -- timed streams ------------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`run` on the running loop (a gateway's on_startup)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def run(self) -> None:
        """Every :data:`TICK_MS` of the clock, :meth:`tick`; a failure is one log line
        (then quiet until a tick succeeds again)."""
        failures = Quietly(_log, "market streams not sent; retrying")
        while True:
            await asyncio.sleep((TICK_MS - self.clock.now() % TICK_MS) / 1000)
            try:
                self.tick(self.clock.now())
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.succeeded()

    def tick(self, now: int) -> None:
        """Send what is due at ``now``: the ``@100ms`` streams every call, the others
        when a second began since the last call, klines when due."""
        if self._aggs:
            self.flush()
        second = now // 1000
        slow = self._second is not None and second != self._second
        self._second = second
        partials: dict[tuple[str, int], bytes] = {}
        tickers: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for stream, meaning in list(self._meaning.items()):
            kind = meaning.kind
            if kind == "kline":
                self._kline(stream, meaning, now)
                continue
            if not (meaning.fast or slow):
                continue
            if kind == "depth":
                diff = self._diffs[meaning.symbol][stream]
                if diff.first is not None:
                    self._send_diff(stream, meaning.symbol, diff, now)
            elif kind == "partial":
                key = (meaning.symbol, meaning.levels)
                payload = partials.get(key)
                if payload is None:
                    payload = partials[key] = self._partial(meaning.symbol, meaning.levels)
                self._send(stream, payload)
            elif kind in ("ticker", "miniTicker"):
                made = tickers.get(meaning.symbol)
                if made is None:
                    made = tickers[meaning.symbol] = self._tickers(meaning.symbol, now)
                self._send(stream, orjson.dumps(made[1] if kind == "miniTicker" else made[0]))
            elif kind == "avgPrice":
                self._send(stream, self._average(meaning.symbol, now))
            elif kind == "miniArr":
                self._mini_arr(stream, now, tickers)

    def _send_diff(self, stream: str, symbol: str, diff: _Diff, now: int) -> None:
        s = self.symbols[symbol]
        fp, fq = s.format_price, s.format_quantity
        payload = {
            "e": "depthUpdate",
            "E": now,
            "s": symbol,
            "U": diff.first,
            "u": diff.last,
            "b": [[fp(p), fq(diff.bids[p])] for p in sorted(diff.bids, reverse=True)],
            "a": [[fp(p), fq(diff.asks[p])] for p in sorted(diff.asks)],
        }
        diff.first = None
        diff.bids = {}
        diff.asks = {}
        self._send(stream, orjson.dumps(payload))

    def _partial(self, symbol: str, levels: int) -> bytes:
        s = self.symbols[symbol]
        fp, fq = s.format_price, s.format_quantity
        bids, asks = self.model.depth(symbol, levels)
        return orjson.dumps(
            {
                "lastUpdateId": self.model.update_id(symbol),
                "bids": [[fp(p), fq(q)] for p, q in bids],
                "asks": [[fp(p), fq(q)] for p, q in asks],
            }
        )

    def _tickers(self, symbol: str, now: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(24hrTicker, 24hrMiniTicker)`` of ``symbol`` at ``now``."""
        t = self.market_data.ticker(symbol, now)
        s = self.symbols[symbol]
        fp, fq, fquote = s.format_price, s.format_quantity, s.format_quote
        bid, ask = self.model.best_bid(symbol), self.model.best_ask(symbol)
        full = {
            "e": "24hrTicker",
            "E": now,
            "s": symbol,
            "p": fp(t.price_change),
            "P": f"{t.price_change_percent:.3f}",
            "w": f"{t.weighted_avg_price:.8f}",
            "x": fp(t.prev_close),
            "c": fp(t.last),
            "Q": fq(t.last_quantity),
            "b": fp(bid.price if bid else 0),
            "B": fq(bid.quantity if bid else 0),
            "a": fp(ask.price if ask else 0),
            "A": fq(ask.quantity if ask else 0),
            "o": fp(t.open),
            "h": fp(t.high),
            "l": fp(t.low),
            "v": fq(t.volume),
            "q": fquote(t.quote_volume),
            "O": t.open_time,
            "C": t.close_time,
            "F": t.first_id,
            "L": t.last_id,
            "n": t.count,
        }
        mini = {
            "e": "24hrMiniTicker",
            "E": now,
            "s": symbol,
            "c": full["c"],
            "o": full["o"],
            "h": full["h"],
            "l": full["l"],
            "v": full["v"],
            "q": full["q"],
        }
        return full, mini

    def _mini_arr(
        self, stream: str, now: int, made: dict[str, tuple[dict[str, Any], dict[str, Any]]]
    ) -> None:
        changed = []
        for symbol in self.symbols:
            tickers = made.get(symbol)
            if tickers is None:
                tickers = made[symbol] = self._tickers(symbol, now)
            mini = tickers[1]
            values = (mini["c"], mini["o"], mini["h"], mini["l"], mini["v"], mini["q"])
            if self._minis.get(symbol) != values:
                self._minis[symbol] = values
                changed.append(mini)
        if changed:
            self._send(stream, orjson.dumps(changed))

    def _average(self, symbol: str, now: int) -> bytes:
        """As ``GET /api/v3/avgPrice``: the average over avgPriceMins, else the last price."""
        s = self.symbols[symbol]
        price = self.model.average_price(symbol, now)
        if price is None:
            price = self.market_data.last_price(symbol)
        last = self.market_data.last_trade(symbol)
        return orjson.dumps(
            {
                "e": "avgPrice",
                "E": now,
                "s": symbol,
                "i": f"{s.notional.avg_price_mins}m",
                "w": s.format_price(price or 0),
                "T": last.time if last is not None else now,
            }
        )

    def _kline(self, stream: str, meaning: _Stream, now: int) -> None:
        state = self._klines[stream]
        if state.open_time is not None and now <= state.close_time and now < state.due:
            return
        symbol, interval = meaning.symbol, meaning.interval
        md = self.market_data
        if state.open_time is None:
            candles = md.klines(symbol, interval, limit=1, now=now)
        else:  # from the candle sent last: it closes now, or is sent again
            candles = md.klines(symbol, interval, start=state.open_time, limit=3, now=now)
        for candle in candles:
            closed = candle.close_time < now
            if closed and state.open_time is not None and candle.open_time < state.open_time:
                continue
            self._send(stream, self._candle(symbol, interval, candle, closed, now))
            state.open_time, state.close_time = candle.open_time, candle.close_time
        every = 1000 if interval == "1s" else KLINE_EVERY_MS
        state.due = now + every

    def _candle(self, symbol: str, interval: str, c: Candle, closed: bool, now: int) -> bytes:
        s = self.symbols[symbol]
        fp, fq, fquote = s.format_price, s.format_quantity, s.format_quote
        first = last = -1
        if c.trades:
            md = self.market_data
            oldest = md.agg_trades(symbol, start=c.open_time, end=c.close_time, limit=1)
            newest = md.agg_trades(symbol, end=c.close_time, limit=1)
            if oldest and newest and newest[0].time >= c.open_time:
                first, last = oldest[0].first_id, newest[0].last_id
        return orjson.dumps(
            {
                "e": "kline",
                "E": now,
                "s": symbol,
                "k": {
                    "t": c.open_time,
                    "T": c.close_time,
                    "s": symbol,
                    "i": interval,
                    "f": first,
                    "L": last,
                    "o": fp(c.open),
                    "c": fp(c.close),
                    "h": fp(c.high),
                    "l": fp(c.low),
                    "v": fq(c.volume),
                    "n": c.trades,
                    "x": closed,
                    "q": fquote(c.quote_volume),
                    "V": fq(c.taker_buy_volume),
                    "Q": fquote(c.taker_buy_quote_volume),
                    "B": "0",
                },
            }
        )

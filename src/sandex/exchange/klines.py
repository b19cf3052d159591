"""Candlesticks (klines) in Binance's intervals, built from trades.

Prices and quantities are fixed-point ints in the symbol's scales (see
:mod:`sandex.exchange.money`); a row is formatted for the wire by the caller.
Binance's windows are aligned to UTC: minutes and hours on the epoch, days at 00:00,
weeks on Monday 00:00, months on the 1st.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

__all__ = ["INTERVALS", "Candle", "KlineSeries", "open_time", "next_open", "interval_ms"]

_S: Final = 1000
_M: Final = 60 * _S
_H: Final = 60 * _M
_D: Final = 24 * _H
INTERVALS: Final = {
    "1s": _S,
    "1m": _M,
    "3m": 3 * _M,
    "5m": 5 * _M,
    "15m": 15 * _M,
    "30m": 30 * _M,
    "1h": _H,
    "2h": 2 * _H,
    "4h": 4 * _H,
    "6h": 6 * _H,
    "8h": 8 * _H,
    "12h": 12 * _H,
    "1d": _D,
    "3d": 3 * _D,
    "1w": 7 * _D,
    "1M": 31 * _D,
}
"""Every Binance kline interval and its length in ms (``1M``: the longest month)."""

_MONDAY_OFFSET: Final = 4 * _D  # 1970-01-05 was the first Monday; Binance weeks start then


def interval_ms(interval: str) -> int:
    """The nominal length of ``interval``; KeyError for an unknown one."""
    return INTERVALS[interval]


def open_time(ts: int, interval: str, offset: int = 0) -> int:
    """The open time (epoch ms) of the ``interval`` candle that contains ``ts``, its
    windows aligned in a time zone ``offset`` ms east of UTC (Binance's ``timeZone``)."""
    if offset:
        return open_time(ts + offset, interval) - offset
    if interval == "1M":
        moment = datetime.fromtimestamp(ts // 1000, tz=UTC)
        return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp()) * 1000
    length = INTERVALS[interval]
    if interval == "1w":
        return ts - (ts - _MONDAY_OFFSET) % length
    return ts - ts % length


def next_open(opened: int, interval: str, offset: int = 0) -> int:
    """The open time of the candle after the one that opened at ``opened``."""
    if offset:
        return next_open(opened + offset, interval) - offset
    if interval == "1M":
        moment = datetime.fromtimestamp(opened // 1000, tz=UTC)
        year, month = (
            (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        )
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1000
    return opened + INTERVALS[interval]


@dataclass(slots=True)
class Candle:
    open_time: int
    close_time: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    quote_volume: int = 0
    trades: int = 0
    taker_buy_volume: int = 0
    taker_buy_quote_volume: int = 0

    def add(self, price: int, qty: int, quote: int, taker_buys: bool) -> None:
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.close = price
        self.volume += qty
        self.quote_volume += quote
        self.trades += 1
        if taker_buys:
            self.taker_buy_volume += qty
            self.taker_buy_quote_volume += quote


class KlineSeries:
    """One symbol's candles in one interval, oldest first (a gap means no trades)."""

    def __init__(self, interval: str, *, keep: int = 5000) -> None:
        if interval not in INTERVALS:
            raise KeyError(interval)
        self.interval = interval
        self._keep = keep
        self.candles: list[Candle] = []
        self._opens: list[int] = []

    def add_trade(self, ts: int, price: int, qty: int, quote: int, *, taker_buys: bool) -> None:
        """Count a trade; trades arrive in time order."""
        last = self.candles[-1] if self.candles else None
        if last is None or ts >= last.close_time + 1:
            opened = open_time(ts, self.interval)
            last = Candle(opened, next_open(opened, self.interval) - 1, price, price, price, price)
            self._append(last)
        last.add(price, qty, quote, taker_buys)

    def add_candle(self, candle: Candle) -> None:
        """Append a finished (e.g. back-filled) candle after the last one."""
        if self.candles and candle.open_time <= self.candles[-1].open_time:
            raise ValueError("candles must be appended in time order")
        self._append(candle)

    def _append(self, candle: Candle) -> None:
        self.candles.append(candle)
        self._opens.append(candle.open_time)
        if len(self.candles) > self._keep * 2:  # trim in bulk, not on every append
            del self.candles[: -self._keep]
            del self._opens[: -self._keep]

    def window(self, *, start: int | None, end: int | None, limit: int) -> list[Candle]:
        """Binance's selection: candles opening in [start, end], the oldest ``limit`` of them
        when ``start`` is given, else the newest ``limit``."""
        lo = 0 if start is None else bisect_left(self._opens, start)
        hi = len(self._opens) if end is None else bisect_right(self._opens, end)
        if hi <= lo:
            return []
        if start is not None:
            return self.candles[lo : min(hi, lo + limit)]
        return self.candles[max(lo, hi - limit) : hi]

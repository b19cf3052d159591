"""Price statistics over any window: Binance's rolling-window and trading-day tickers.

``GET /api/v3/ticker`` (``windowSize`` 1m..7d) and ``GET /api/v3/ticker/tradingDay``
ask for the statistics of a window that opens on a minute and closes now. They are
read from the klines (:meth:`MarketData.klines`): the 1m candles of the window's
ragged head and tail and the 1h candles of the whole hours between them, which are
the aggregation of the same minutes. So a week's window reads at most 288 candles::

    stats = window_stats(md, symbols["BTCUSDT"], opened=now - 7 * DAY_MS, now=now)

Pure: ``now`` is a parameter. Prices and quantities are in the symbol's units.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from sandex.exchange.klines import Candle, open_time
from sandex.exchange.marketdata import MarketData
from sandex.exchange.money import from_units
from sandex.exchange.symbols import Symbol

__all__ = ["WindowStats", "window_stats", "window_ms", "trading_day", "utc_offset_ms"]

_MINUTE: Final = 60_000
_HOUR: Final = 60 * _MINUTE
_DAY: Final = 24 * _HOUR
_WINDOW: Final = re.compile(r"([1-9][0-9]?)([mhd])")
_UNITS: Final = {"m": (_MINUTE, 59), "h": (_HOUR, 23), "d": (_DAY, 7)}
_OFFSET: Final = re.compile(r"([+-]?)([0-9]{1,2})(?::([0-9]{2}))?")
_PERCENT: Final = Decimal("0.001")
_EIGHT: Final = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Statistics of the trades in ``[open_time, now]``; ``first_id``/``last_id`` are
    -1 when no trade fell in it (back-filled history has prices and volume, no trades)."""

    open: int
    high: int
    low: int
    last: int
    volume: int
    quote_volume: int
    open_time: int
    first_id: int
    last_id: int
    count: int
    weighted_avg_price: Decimal

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


def window_ms(text: str) -> int | None:
    """A ``windowSize`` (``1m``..``59m``, ``1h``..``23h``, ``1d``..``7d``) in ms, else None."""
    match = _WINDOW.fullmatch(text)
    if match is None:
        return None
    length, most = _UNITS[match.group(2)]
    count = int(match.group(1))
    return count * length if count <= most else None


def utc_offset_ms(text: str) -> int | None:
    """A ``timeZone`` (hours, or hours and minutes: ``8``, ``-1:00``, ``05:45``) as an
    offset from UTC in ms, within [-12:00, +14:00]; None when malformed."""
    match = _OFFSET.fullmatch(text)
    if match is None:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if minutes >= 60:
        return None
    offset = (hours * 60 + minutes) * _MINUTE * (-1 if sign == "-" else 1)
    return offset if -12 * _HOUR <= offset <= 14 * _HOUR else None


def trading_day(now: int, offset: int) -> tuple[int, int]:
    """``(open, close)`` in epoch ms of the day that contains ``now`` in a time zone
    ``offset`` ms from UTC (close inclusive, one ms before the next day opens)."""
    opened = (now + offset) // _DAY * _DAY - offset
    return opened, opened + _DAY - 1


def window_stats(md: MarketData, symbol: Symbol, *, opened: int, now: int) -> WindowStats:
    """The statistics of ``symbol`` from ``opened`` (aligned down to the minute) to ``now``."""
    opened = open_time(opened, "1m")
    candles = _candles(md, symbol.name, opened, now)
    volume = sum(c.volume for c in candles)
    quote = sum(c.quote_volume for c in candles)
    count = sum(c.trades for c in candles)
    # a quiet candle is flat at the price before it: the window opens at its first
    # trade (or back-filled candle) whatever candle size holds it, as Binance's does
    traded = [c for c in candles if c.volume] or candles
    if traded:
        first, last = traded[0].open, traded[-1].close
        high, low = max(c.high for c in traded), min(c.low for c in traded)
    else:  # no history at all: flat at the last price there is
        first = last = high = low = md.last_price(symbol.name) or 0
    first_id = last_id = -1
    newest = md.last_trade(symbol.name)
    if count and newest is not None:
        # the newest trade is in the window (it closes now); a symbol's ids run without gaps
        last_id = newest.id
        first_id = last_id - count + 1
    avg = Decimal(0)
    if volume:
        avg = from_units(quote, symbol.quote_scale) / from_units(volume, symbol.quantity_scale)
        avg = avg.quantize(_EIGHT, rounding=ROUND_HALF_UP)
    return WindowStats(
        open=first,
        high=high,
        low=low,
        last=last,
        volume=volume,
        quote_volume=quote,
        open_time=opened,
        first_id=first_id,
        last_id=last_id,
        count=count,
        weighted_avg_price=avg,
    )


def _candles(md: MarketData, symbol: str, opened: int, now: int) -> Sequence[Candle]:
    """The 1m candles of the partial hours at either end of ``[opened, now]`` and the
    1h candles of the whole hours between them, in time order."""
    first_hour = -(-opened // _HOUR) * _HOUR
    last_hour = open_time(now, "1h")
    if first_hour >= last_hour:
        return md.klines(symbol, "1m", start=opened, end=now, limit=1000, now=now)
    out: list[Candle] = []
    if opened < first_hour:
        out += md.klines(symbol, "1m", start=opened, end=first_hour - 1, limit=60, now=now)
    out += md.klines(symbol, "1h", start=first_hour, end=last_hour - 1, limit=1000, now=now)
    out += md.klines(symbol, "1m", start=last_hour, end=now, limit=60, now=now)
    return out

"""Window statistics (rolling-window and trading-day tickers) against the trades themselves."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from exchange_support import BTC, NOW, SYMBOL
from sandex.exchange import MarketData, default_symbols
from sandex.exchange.rolling import trading_day, utc_offset_ms, window_ms, window_stats

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def _tape(seed: int) -> tuple[MarketData, list[tuple[int, int, int, int]]]:
    """Three days of trades at random times: ``(id, time, price, quantity)``."""
    md = MarketData(default_symbols())
    rng = random.Random(seed)
    times = sorted(rng.randrange(NOW - 3 * DAY, NOW) for _ in range(3000))
    tape = []
    for trade_id, time in enumerate(times, start=1):
        price, quantity = rng.randrange(50_000, 70_000) * 100, rng.randrange(1, 100) * 10_000
        md.record_trade(SYMBOL, trade_id, price, quantity, rng.random() < 0.5, time)
        tape.append((trade_id, time, price, quantity))
    return md, tape


@pytest.mark.parametrize("window", ["1m", "7m", "59m", "1h", "5h", "23h", "1d", "2d", "7d"])
def test_a_window_sums_exactly_the_trades_since_its_minute(window: str) -> None:
    md, tape = _tape(3)
    now = NOW - 12_345
    length = window_ms(window)
    assert length is not None
    stats = window_stats(md, BTC, opened=now - length, now=now)
    opened = (now - length) // MIN * MIN
    inside = [t for t in tape if opened <= t[1] <= now]
    assert stats.open_time == opened
    assert stats.count == len(inside)
    if inside:
        assert (stats.first_id, stats.last_id) == (inside[0][0], inside[-1][0])
        assert stats.open == inside[0][2] and stats.last == inside[-1][2]
        assert stats.high == max(t[2] for t in inside) and stats.low == min(t[2] for t in inside)
        assert stats.volume == sum(t[3] for t in inside)
        assert stats.quote_volume == sum(t[2] * t[3] for t in inside)
        assert stats.weighted_avg_price > 0
    else:
        assert (stats.first_id, stats.last_id, stats.volume) == (-1, -1, 0)


def test_window_sizes_are_binances() -> None:
    assert [window_ms(w) for w in ("1m", "59m", "1h", "23h", "1d", "7d")] == [
        MIN, 59 * MIN, HOUR, 23 * HOUR, DAY, 7 * DAY
    ]  # fmt: skip
    for bad in ("0m", "60m", "24h", "8d", "1w", "1d2h", "01m", "m", "", "1M", " 1m"):
        assert window_ms(bad) is None, bad


def test_trading_days_start_at_midnight_in_the_time_zone() -> None:
    midnight = NOW // DAY * DAY
    now = midnight + 3 * HOUR
    assert trading_day(now, 0) == (midnight, midnight + DAY - 1)
    assert trading_day(now, 8 * HOUR) == (midnight - 8 * HOUR, midnight + 16 * HOUR - 1)
    assert trading_day(now, -HOUR) == (midnight + HOUR, midnight + DAY + HOUR - 1)
    late = midnight + 30 * MIN  # 23:30 of the day before, an hour west of UTC
    assert trading_day(late, -HOUR) == (midnight - DAY + HOUR, midnight + HOUR - 1)
    offsets = {t: utc_offset_ms(t) for t in ("0", "8", "-1:00", "05:45", "+14:00", "-12")}
    assert offsets == {
        "0": 0, "8": 8 * HOUR, "-1:00": -HOUR, "05:45": 5 * HOUR + 45 * MIN,
        "+14:00": 14 * HOUR, "-12": -12 * HOUR,
    }  # fmt: skip
    for bad in ("15", "-13", "1:60", "8:5", "UTC", "", "1.5", "\uff18"):
        assert utc_offset_ms(bad) is None, bad


def test_a_symbol_without_history_or_trades_is_flat_at_zero() -> None:
    md = MarketData(default_symbols())
    stats = window_stats(md, BTC, opened=NOW - DAY, now=NOW)
    assert (stats.open, stats.last, stats.count, stats.first_id) == (0, 0, 0, -1)
    assert stats.price_change_percent == Decimal("0.000")


@pytest.mark.parametrize("hours", [1, 5, 16])
def test_over_back_filled_history_a_window_is_its_minutes(hours: int) -> None:
    """The 1h candles read for a window's whole hours are the aggregation of its 1m
    candles, so the statistics are those of the minutes themselves."""
    md = MarketData(default_symbols())
    md.backfill(SYMBOL, NOW, price=6_000_000, seed=7)
    now = NOW + 123_456
    stats = window_stats(md, BTC, opened=now - hours * HOUR - 17_000, now=now)
    minutes = md.klines(SYMBOL, "1m", start=stats.open_time, end=now, limit=1000, now=now)
    traded = [c for c in minutes if c.volume]
    assert stats.volume == sum(c.volume for c in traded)
    assert stats.quote_volume == sum(c.quote_volume for c in traded)
    assert (stats.open, stats.last) == (traded[0].open, traded[-1].close)
    assert stats.high == max(c.high for c in traded) and stats.low == min(c.low for c in traded)

"""Kline windows aligned as Binance aligns them, and candles built from trades."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandex.exchange.klines import INTERVALS, KlineSeries, next_open, open_time


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1000  # type: ignore[misc]


def test_every_binance_interval_is_known() -> None:
    assert list(INTERVALS) == [
        "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("ts", "interval", "opened"),
    [
        (_ms(2026, 11, 23, 16, 37, 12) + 345, "1m", _ms(2026, 11, 23, 16, 37)),
        (_ms(2026, 11, 23, 16, 37, 12), "15m", _ms(2026, 11, 23, 16, 30)),
        (_ms(2026, 11, 23, 16, 37, 12), "4h", _ms(2026, 11, 23, 16)),
        (_ms(2026, 11, 23, 16, 37, 12), "1d", _ms(2026, 11, 23)),
        (_ms(2026, 11, 26, 9), "1w", _ms(2026, 11, 23)),  # Thursday -> Monday
        (_ms(2026, 11, 23), "1w", _ms(2026, 11, 23)),  # a Monday opens its own week
        (_ms(2026, 11, 23, 16), "1M", _ms(2026, 11, 1)),
    ],
)
def test_open_times_are_aligned_like_binance(ts: int, interval: str, opened: int) -> None:
    assert open_time(ts, interval) == opened


def test_months_have_their_own_lengths() -> None:
    assert next_open(_ms(2026, 2, 1), "1M") == _ms(2026, 3, 1)
    assert next_open(_ms(2026, 12, 1), "1M") == _ms(2027, 1, 1)


def test_trades_build_candles_with_ohlc_volume_and_taker_buys() -> None:
    series = KlineSeries("1m")
    t0 = _ms(2026, 11, 23, 16, 0)
    series.add_trade(t0 + 1_000, 100, 2, 200, taker_buys=True)
    series.add_trade(t0 + 2_000, 105, 1, 105, taker_buys=False)
    series.add_trade(t0 + 3_000, 98, 3, 294, taker_buys=True)
    series.add_trade(t0 + 61_000, 99, 1, 99, taker_buys=False)  # next minute
    first, second = series.candles
    assert (first.open, first.high, first.low, first.close) == (100, 105, 98, 98)
    assert (first.volume, first.quote_volume, first.trades) == (6, 599, 3)
    assert (first.taker_buy_volume, first.taker_buy_quote_volume) == (5, 494)
    assert (first.open_time, first.close_time) == (t0, t0 + 59_999)
    assert second.open_time == t0 + 60_000 and second.open == 99


def test_window_selection_follows_binance() -> None:
    series = KlineSeries("1m")
    t0 = _ms(2026, 11, 23, 16, 0)
    for i in range(10):
        series.add_trade(t0 + i * 60_000, 100 + i, 1, 100 + i, taker_buys=True)
    assert [c.open for c in series.window(start=None, end=None, limit=3)] == [107, 108, 109]
    assert [c.open for c in series.window(start=t0 + 120_000, end=None, limit=3)] == [102, 103, 104]
    assert [c.open for c in series.window(start=None, end=t0 + 120_000, limit=2)] == [101, 102]
    assert series.window(start=t0 + 10**9, end=None, limit=5) == []

"""Public market data handed to storage and put back: what :meth:`MarketData.drain` gives
(every trade once, the 1m candles they changed, the back-fill plan) is what
:meth:`MarketData.load` needs for a fresh copy to answer trades, aggregate trades, klines
of every interval and the 24h ticker exactly as the original did."""

from __future__ import annotations

import pytest

from exchange_support import NOW, SYMBOL, px, qty
from sandex.exchange import MarketData, default_symbols
from sandex.exchange.klines import INTERVALS, Candle
from sandex.exchange.marketdata import MarketHistory, TapeTrade

MIN = 60_000
T0 = NOW - 3 * 3600_000


def tracked() -> MarketData:
    md = MarketData(default_symbols())
    md.track_changes()
    return md


def trade(md: MarketData, trade_id: int, price: str, time: int, *, taker: int = 0) -> None:
    md.record_trade(
        SYMBOL, trade_id, px(price), qty("0.1"), trade_id % 3 == 0, time, taker_order_id=taker
    )


def stored(md: MarketData, kept: dict[str, MarketHistory]) -> dict[str, MarketHistory]:
    """Fold one drain into ``kept`` as storage does: trades appended, minutes replaced by
    open time, plans replaced."""
    changes = md.drain()
    out = dict(kept)
    for symbol in (
        {t.symbol for t in changes.trades}
        | {m.symbol for m in changes.minutes}
        | {s for s, _ in changes.backfills}
    ):
        old = out.get(symbol, MarketHistory())
        minutes = {c.open_time: c for c in old.minutes}
        minutes.update(
            {m.candle.open_time: m.candle for m in changes.minutes if m.symbol == symbol}
        )
        plans = dict(changes.backfills)
        out[symbol] = MarketHistory(
            plans.get(symbol, old.backfill),
            [minutes[k] for k in sorted(minutes)],
            old.trades + [t for t in changes.trades if t.symbol == symbol],
        )
    return out


def loaded(history: dict[str, MarketHistory]) -> MarketData:
    md = MarketData(default_symbols())
    for symbol, h in history.items():
        md.load(symbol, h)
    return md


def same_answers(a: MarketData, b: MarketData, now: int) -> None:
    assert a.recent_trades(SYMBOL, 1000) == b.recent_trades(SYMBOL, 1000)
    assert a.historical_trades(SYMBOL, 5, from_id=3) == b.historical_trades(SYMBOL, 5, from_id=3)
    assert a.agg_trades(SYMBOL, limit=1000) == b.agg_trades(SYMBOL, limit=1000)
    for interval in INTERVALS:
        assert a.klines(SYMBOL, interval, limit=1000, now=now) == b.klines(
            SYMBOL, interval, limit=1000, now=now
        ), interval
    assert a.ticker(SYMBOL, now) == b.ticker(SYMBOL, now)
    assert a.last_price(SYMBOL) == b.last_price(SYMBOL)


def test_a_drain_gives_each_trade_once_with_its_aggregate_and_the_minutes_it_changed() -> None:
    md = tracked()
    trade(md, 1, "100.00", T0 + 1000, taker=7)
    trade(md, 2, "100.00", T0 + 1000, taker=7)  # same taker, price, time: one aggregate
    trade(md, 3, "101.00", T0 + MIN + 5)
    first = md.drain()
    assert [(t.id, t.agg_id) for t in first.trades] == [(1, 1), (2, 1), (3, 2)]
    assert [(m.symbol, m.candle.open_time, m.candle.trades) for m in first.minutes] == [
        (SYMBOL, T0, 2),
        (SYMBOL, T0 + MIN, 1),
    ]
    assert first.trades[2] == TapeTrade(
        SYMBOL, 3, px("101.00"), qty("0.1"), px("101.00") * qty("0.1"), T0 + MIN + 5, True, 2
    )
    trade(md, 4, "99.00", T0 + MIN + 9)
    second = md.drain()
    assert [t.id for t in second.trades] == [4]
    minute = second.minutes[0].candle  # the changed minute, as it stands now
    assert (minute.open, minute.low, minute.close, minute.trades) == (
        px("101.00"),
        px("99.00"),
        px("99.00"),
        2,
    )
    assert md.drain().trades == [] and md.drain().minutes == []


def test_quiet_minutes_are_not_handed_out_they_are_flat_at_the_close_before() -> None:
    md = tracked()
    trade(md, 1, "100.00", T0)
    trade(md, 2, "105.00", T0 + 10 * MIN)
    changes = md.drain()
    assert [m.candle.open_time for m in changes.minutes] == [T0, T0 + 10 * MIN]
    again = loaded(
        {SYMBOL: MarketHistory(None, [m.candle for m in changes.minutes], changes.trades)}
    )
    now = T0 + 12 * MIN
    assert again.klines(SYMBOL, "1m", limit=20, now=now) == md.klines(
        SYMBOL, "1m", limit=20, now=now
    )


def test_a_copy_loaded_from_what_was_drained_answers_as_the_original() -> None:
    md = tracked()
    md.backfill(SYMBOL, T0, px("100.00"), seed=5)
    kept: dict[str, MarketHistory] = {}
    for i in range(1, 301):
        trade(md, i, f"{100 + (i * 7) % 11}.00", T0 + i * 17_000, taker=i // 2)
        if i % 40 == 0:
            kept = stored(md, kept)
    kept = stored(md, kept)
    assert kept[SYMBOL].backfill == md.backfill_plan(SYMBOL)
    now = T0 + 301 * 17_000
    same_answers(md, loaded(kept), now)


def test_a_loaded_copy_goes_on_from_there_as_the_original_does() -> None:
    md = tracked()
    md.backfill(SYMBOL, T0, px("100.00"), seed=5)
    for i in range(1, 50):
        trade(md, i, "100.00", T0 + i * 30_000)
    again = loaded(stored(md, {}))
    for copy in (md, again):
        for i in range(50, 60):
            trade(copy, i, "102.00", T0 + i * 30_000)
    same_answers(md, again, T0 + 61 * 30_000)


def test_only_a_tracking_copy_keeps_changes_and_history_loads_once() -> None:
    md = MarketData(default_symbols())  # a gateway's: never drained, keeps nothing
    trade(md, 1, "100.00", T0)
    assert md.drain().trades == []
    with pytest.raises(ValueError, match="already has its history"):
        md.load(SYMBOL, MarketHistory())
    fresh = MarketData(default_symbols())
    candle = Candle(T0, T0 + MIN - 1, 1, 1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="oldest first"):
        fresh.load(SYMBOL, MarketHistory(None, [candle, candle], []))

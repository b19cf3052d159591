"""The stored market history (SQLite and PostgreSQL): the public tape, the 1m candles and
the back-fill plans a batch carries are read back as written, a candle written again
takes its newer values, and retention forgets old minutes and all but the newest trades
while the synthetic history's plan moves up to the first candle kept."""

from __future__ import annotations

from conftest import NOW
from sandex.bootstrap import Sandex
from sandex.exchange.klines import Candle
from sandex.exchange.marketdata import MarketHistory, MinuteCandle, TapeTrade
from sandex.exchange.pricepath import Backfill
from sandex.service.journal import Batch
from sandex.storage.exchange_store import SqlExchangeStore

MIN = 60_000
T0 = NOW - NOW % MIN
BIG = 7 * 10**19
"""A minute's quote volume past 64 bits (price units times quantity units, summed)."""


def tape(symbol: str, first: int, count: int, time: int) -> list[TapeTrade]:
    return [
        TapeTrade(symbol, i, 100 + i, 10, (100 + i) * 10, time + i, i % 2 == 0, (i + 1) // 2)
        for i in range(first, first + count)
    ]


def minute(opened: int, close: int, quote: int = 5000) -> Candle:
    return Candle(opened, opened + MIN - 1, 100, 120, 90, close, 50, quote, 3, 20, quote // 2)


def test_the_tape_minutes_and_plans_of_a_batch_are_read_back_as_written(
    sandex: Sandex,
) -> None:
    store = SqlExchangeStore(sandex.db)
    plan = Backfill(T0, 6_000_000, 700, 123.456789012345)
    store.write(
        Batch(
            NOW,
            market_trades=tape("BTCUSDT", 1, 3, T0),
            market_minutes=[MinuteCandle("BTCUSDT", minute(T0, 110, BIG))],
            market_backfills=[("BTCUSDT", plan)],
        )
    )
    store.write(
        Batch(
            NOW + 1,
            market_trades=tape("BTCUSDT", 4, 2, T0 + MIN) + tape("ETHUSDT", 1, 1, T0),
            market_minutes=[
                MinuteCandle("BTCUSDT", minute(T0, 115, BIG + 1)),  # the same minute, later
                MinuteCandle("BTCUSDT", minute(T0 + MIN, 111)),
            ],
        )
    )
    history = store.market_history(keep_trades=4)
    assert history["BTCUSDT"] == MarketHistory(
        plan,
        [minute(T0, 115, BIG + 1), minute(T0 + MIN, 111)],
        tape("BTCUSDT", 2, 4, T0)[:2] + tape("BTCUSDT", 4, 2, T0 + MIN),
    )
    assert history["ETHUSDT"] == MarketHistory(None, [], tape("ETHUSDT", 1, 1, T0))
    assert store.public_trades("BTCUSDT", 3, 2) == tape("BTCUSDT", 3, 1, T0) + tape(
        "BTCUSDT", 4, 1, T0 + MIN
    )
    store.close()


def test_retention_forgets_old_minutes_and_trades_and_moves_the_plan_up(sandex: Sandex) -> None:
    store = SqlExchangeStore(sandex.db)
    store.write(
        Batch(
            NOW,
            market_trades=tape("BTCUSDT", 1, 30, T0) + tape("ETHUSDT", 1, 5, T0),
            market_minutes=[
                MinuteCandle("BTCUSDT", minute(T0 + i * MIN, 100 + i)) for i in range(10)
            ]
            + [MinuteCandle("ETHUSDT", minute(T0, 50))],
            market_backfills=[
                ("BTCUSDT", Backfill(T0, 100, 1, 1.0)),
                ("ETHUSDT", Backfill(T0, 50, 2, 1.0)),
            ],
        )
    )
    gone = store.prune_market_history(before=T0 + 4 * MIN, keep_trades=10)
    assert gone == 4 + 20  # ETHUSDT keeps its only (newest) minute and all 5 trades
    history = store.market_history(keep_trades=1000)
    btc = history["BTCUSDT"]
    assert [c.open_time for c in btc.minutes] == [T0 + i * MIN for i in range(4, 10)]
    assert [t.id for t in btc.trades] == list(range(21, 31))
    assert btc.backfill == Backfill(T0 + 4 * MIN, 100, 1, 1.0)  # ends where the minutes begin
    eth = history["ETHUSDT"]
    assert [c.open_time for c in eth.minutes] == [T0] and len(eth.trades) == 5
    assert eth.backfill == Backfill(T0, 50, 2, 1.0)
    assert store.prune_market_history(before=T0 + 4 * MIN, keep_trades=10) == 0
    store.close()


def test_a_failed_batch_keeps_its_market_rows_for_the_next_write() -> None:
    older = Batch(
        NOW,
        market_trades=tape("BTCUSDT", 1, 1, T0),
        market_minutes=[MinuteCandle("BTCUSDT", minute(T0, 100))],
    )
    newer = Batch(
        NOW + 1,
        market_trades=tape("BTCUSDT", 2, 1, T0),
        market_minutes=[MinuteCandle("BTCUSDT", minute(T0, 101))],
        market_backfills=[("BTCUSDT", Backfill(T0, 1, 1, 1.0))],
    )
    merged = older.merged(newer)
    assert [t.id for t in merged.market_trades] == [1, 2]
    assert [m.candle.close for m in merged.market_minutes] == [101]
    assert merged.market_backfills == [("BTCUSDT", Backfill(T0, 1, 1, 1.0))]

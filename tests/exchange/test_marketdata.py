"""Public market data: the trade tape, aggregate trades, continuous klines, back-filled
history and rolling 24h statistics, as Binance's public endpoints present them."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

import pytest

from exchange_support import BTC, NOW, SYMBOL, buy, new_engine, px, qty, sell, trades
from sandex.exchange import InvalidMarket, MarketData, default_symbols
from sandex.exchange.klines import INTERVALS, Candle, next_open, open_time
from sandex.exchange.marketdata import DAY_MS

MIN = 60_000
HOUR = 60 * MIN
T0 = NOW - 2 * HOUR  # an hour boundary, two hours before "now"


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1000  # type: ignore[misc]


def fresh(**kwargs: int) -> MarketData:
    return MarketData(default_symbols(), **kwargs)


def tape(md: MarketData, *rows: tuple[int, str, str, bool, int]) -> None:
    """Record BTCUSDT trades given as (id, price, quantity, buyer_is_maker, time)."""
    for trade_id, price, quantity, maker, time in rows:
        md.record_trade(SYMBOL, trade_id, px(price), qty(quantity), maker, time)


def ohlc(c: Candle) -> tuple[int, int, int, int]:
    return c.open, c.high, c.low, c.close


# -- trades -----------------------------------------------------------------------------


def test_recent_trades_are_the_newest_returned_oldest_first() -> None:
    md = fresh()
    tape(md, *((i, "100.00", "0.1", i % 2 == 0, T0 + i) for i in range(1, 8)))
    assert [t.id for t in md.recent_trades(SYMBOL, 3)] == [5, 6, 7]
    last = md.recent_trades(SYMBOL, 1)[0]
    assert (last.price, last.quantity, last.quote) == (
        px("100"),
        qty("0.1"),
        px("100") * qty("0.1"),
    )
    assert last.buyer_is_maker is False and last.time == T0 + 7


def test_historical_trades_page_forward_from_an_id() -> None:
    md = fresh()
    tape(md, *((i, "100.00", "0.1", False, T0 + i) for i in range(1, 11)))
    assert [t.id for t in md.historical_trades(SYMBOL, 3, from_id=4)] == [4, 5, 6]
    assert [t.id for t in md.historical_trades(SYMBOL, 3)] == [8, 9, 10]  # no fromId: newest
    assert md.historical_trades(SYMBOL, 3, from_id=11) == []


def test_the_tape_keeps_the_last_n_trades() -> None:
    md = fresh(keep_trades=1000)
    tape(md, *((i, "100.00", "0.1", False, T0 + i) for i in range(1, 2501)))
    kept = md.historical_trades(SYMBOL, 1000, from_id=1)
    assert (kept[0].id, kept[-1].id, len(kept)) == (1501, 2500, 1000)


def test_an_unknown_symbol_is_refused() -> None:
    with pytest.raises(InvalidMarket):
        fresh().recent_trades("DOGEUSDT")


def test_engine_trades_record_who_was_maker() -> None:
    engine, md = new_engine(), fresh()
    engine.submit(sell("0.5", "60000.00", account=1), NOW)
    taken = trades(engine.submit(buy("0.2", "60000.00", account=2), NOW + 1))
    engine.submit(buy("0.5", "59000.00", account=1), NOW + 2)
    taken += trades(engine.submit(sell("0.1", "59000.00", account=2), NOW + 3))
    for trade in taken:
        md.record(SYMBOL, trade)
    first, second = md.recent_trades(SYMBOL)
    assert first.buyer_is_maker is False  # a buyer took the ask
    assert second.buyer_is_maker is True  # a seller hit the bid
    assert first.price == px("60000") and second.quantity == qty("0.1")


# -- aggregate trades -------------------------------------------------------------------


def test_consecutive_trades_at_one_price_time_and_side_aggregate() -> None:
    md = fresh()
    tape(
        md,
        (1, "100.00", "0.1", False, T0),
        (2, "100.00", "0.2", False, T0),  # same price, time, side: joins 1
        (3, "100.01", "0.1", False, T0),  # new price
        (4, "100.01", "0.1", True, T0),  # new side
        (5, "100.01", "0.1", True, T0 + 1),  # new time
        (7, "100.01", "0.1", True, T0 + 1),  # a gap in the ids
    )
    aggs = md.agg_trades(SYMBOL)
    assert [(a.id, a.first_id, a.last_id) for a in aggs] == [
        (1, 1, 2), (2, 3, 3), (3, 4, 4), (4, 5, 5), (5, 7, 7),
    ]  # fmt: skip
    assert aggs[0].quantity == qty("0.3") and aggs[0].price == px("100")
    assert aggs[2].buyer_is_maker is True


def test_after_a_restart_aggregate_ids_continue_and_never_name_two_aggregates() -> None:
    md = fresh()
    md.resume(SYMBOL, 41)  # the stored next trade id: 40 trades happened before
    tape(md, (41, "100.00", "0.1", False, T0), (42, "100.01", "0.1", False, T0))
    aggs = md.agg_trades(SYMBOL)
    assert [(a.id, a.first_id) for a in aggs] == [(41, 41), (42, 42)]


def test_trades_of_different_taker_orders_do_not_aggregate() -> None:
    engine, md = new_engine(), fresh()
    engine.submit(sell("0.1", "60000.00", account=1), NOW)
    engine.submit(sell("0.1", "60000.00", account=1), NOW)
    engine.submit(sell("0.1", "60000.00", account=1), NOW)
    one = trades(engine.submit(buy("0.2", "60000.00", account=2), NOW))  # takes two makers
    two = trades(engine.submit(buy("0.1", "60000.00", account=3), NOW))
    for trade in one + two:
        md.record(SYMBOL, trade)
    aggs = md.agg_trades(SYMBOL)
    assert [(a.first_id, a.last_id) for a in aggs] == [(1, 2), (3, 3)]


def test_agg_trades_select_by_id_window_and_limit() -> None:
    md = fresh()
    tape(md, *((i, f"{100 + i}.00", "0.1", False, T0 + i * MIN) for i in range(1, 11)))
    assert [a.id for a in md.agg_trades(SYMBOL, limit=3)] == [8, 9, 10]
    assert [a.id for a in md.agg_trades(SYMBOL, from_id=4, limit=2)] == [4, 5]
    window = md.agg_trades(SYMBOL, start=T0 + 3 * MIN, end=T0 + 6 * MIN)
    assert [a.id for a in window] == [3, 4, 5, 6]  # both ends inclusive
    assert [a.id for a in md.agg_trades(SYMBOL, start=T0 + 3 * MIN, limit=2)] == [3, 4]
    assert [a.id for a in md.agg_trades(SYMBOL, end=T0 + 6 * MIN, limit=2)] == [5, 6]


# -- klines -----------------------------------------------------------------------------


def test_klines_are_built_from_trades_on_aligned_windows() -> None:
    md = fresh()
    tape(
        md,
        (1, "100.00", "1", False, T0 + 5_000),
        (2, "105.00", "1", True, T0 + 20_000),
        (3, "98.00", "2", False, T0 + 59_999),
        (4, "99.00", "1", False, T0 + 3 * MIN + 1),
    )
    first = md.klines(SYMBOL, "1m", start=T0, limit=1, now=T0 + 4 * MIN)[0]
    assert (first.open_time, first.close_time) == (T0, T0 + MIN - 1)
    assert ohlc(first) == (px("100"), px("105"), px("98"), px("98"))
    assert (first.volume, first.trades) == (qty("4"), 3)
    assert first.taker_buy_volume == qty("3")
    hour = md.klines(SYMBOL, "1h", now=T0 + 4 * MIN)
    assert len(hour) == 1 and hour[0].open_time == T0 and hour[0].volume == qty("5")


def test_klines_fill_quiet_intervals_flat_up_to_now() -> None:
    md = fresh()
    tape(md, (1, "100.00", "1", False, T0 + 1), (2, "101.00", "1", False, T0 + 3 * MIN))
    candles = md.klines(SYMBOL, "1m", now=T0 + 5 * MIN + 30_000)
    assert [c.open_time for c in candles] == [T0 + i * MIN for i in range(6)]
    assert [c.close for c in candles] == [px("100")] * 3 + [px("101")] * 3
    quiet = candles[1]
    assert ohlc(quiet) == (px("100"),) * 4 and quiet.volume == 0 and quiet.trades == 0


def test_klines_window_and_limit_follow_binance() -> None:
    md = fresh()
    tape(md, *((i, f"{100 + i}.00", "1", False, T0 + i * MIN) for i in range(10)))
    now = T0 + 9 * MIN
    opens = [c.open_time for c in md.klines(SYMBOL, "1m", limit=3, now=now)]
    assert opens == [T0 + 7 * MIN, T0 + 8 * MIN, T0 + 9 * MIN]  # no times: the newest
    opens = [c.open_time for c in md.klines(SYMBOL, "1m", start=T0 + 2 * MIN, limit=3, now=now)]
    assert opens == [T0 + 2 * MIN, T0 + 3 * MIN, T0 + 4 * MIN]  # startTime: from there on
    opens = [c.open_time for c in md.klines(SYMBOL, "1m", start=T0 + 1, limit=2, now=now)]
    assert opens == [T0 + MIN, T0 + 2 * MIN]  # a candle that opened before startTime is out
    opens = [c.open_time for c in md.klines(SYMBOL, "1m", end=T0 + 4 * MIN + 1, limit=2, now=now)]
    assert opens == [T0 + 3 * MIN, T0 + 4 * MIN]  # endTime alone: the newest up to it
    both = md.klines(SYMBOL, "1m", start=T0 + 2 * MIN, end=T0 + 5 * MIN, limit=500, now=now)
    assert len(both) == 4
    assert md.klines(SYMBOL, "1m", start=T0 - 10 * MIN, limit=1, now=now)[0].open_time == T0
    assert md.klines(SYMBOL, "1m", end=T0 - 1, now=now) == []
    assert md.klines(SYMBOL, "1m", start=now + MIN, now=now) == []


def test_klines_of_an_idle_symbol_are_empty_and_unknown_intervals_fail() -> None:
    md = fresh()
    assert md.klines(SYMBOL, "1m", now=NOW) == []
    with pytest.raises(KeyError):
        md.klines(SYMBOL, "2m", now=NOW)


def test_monthly_klines_step_by_calendar_month() -> None:
    md = fresh()
    nov, dec, jan = (_ms(2026, 11, 1), _ms(2026, 12, 1), _ms(2027, 1, 1))
    md.backfill(SYMBOL, jan + 5 * DAY_MS, px("60000"), seed=1)
    months = md.klines(SYMBOL, "1M", limit=3, now=jan + 5 * DAY_MS)
    assert [(c.open_time, c.close_time) for c in months] == [
        (nov, dec - 1), (dec, jan - 1), (jan, _ms(2027, 2, 1) - 1),
    ]  # fmt: skip
    later = md.klines(SYMBOL, "1M", start=nov - 1, limit=2, now=jan + 5 * DAY_MS)
    assert [c.open_time for c in later] == [nov, dec]


# -- back-filled history ----------------------------------------------------------------


@pytest.mark.parametrize("interval", list(INTERVALS))
def test_backfill_gives_1000_aligned_contiguous_candles_in_every_interval(interval: str) -> None:
    md = fresh()
    md.backfill(SYMBOL, NOW, px("60000"), seed=7)
    candles = md.klines(SYMBOL, interval, limit=1000, now=NOW)
    assert len(candles) == 1000
    for before, after in pairwise(candles):
        assert after.open_time == next_open(before.open_time, interval)
        assert after.open_time == before.close_time + 1
        assert after.open == before.close  # one path: each candle opens at the last close
    assert all(open_time(c.open_time, interval) == c.open_time for c in candles)
    current = candles[-1]
    assert current.open_time == open_time(NOW, interval)  # the candle now is in
    assert current.close == px("60000")
    for c in candles:
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
        assert c.low > 0 and c.low in BTC.rules.prices and c.high in BTC.rules.prices
        assert c.volume % BTC.rules.quantities.step == 0
        assert 0 <= c.taker_buy_volume <= c.volume and c.trades == 0


def test_backfill_is_deterministic_by_seed() -> None:
    def history(seed: int) -> list[tuple[int, int, int, int]]:
        md = fresh()
        md.backfill(SYMBOL, NOW, px("60000"), seed=seed)
        return [ohlc(c) for c in md.klines(SYMBOL, "1h", limit=50, now=NOW)]

    assert history(3) == history(3)
    assert history(3) != history(4)


def test_live_trades_continue_the_backfilled_history() -> None:
    md = fresh()
    md.backfill(SYMBOL, NOW, px("60000"), seed=7)
    tape(md, (1, "60010.00", "0.5", False, NOW + 10), (2, "59990.00", "0.1", True, NOW + 2 * MIN))
    candles = md.klines(SYMBOL, "1m", limit=4, now=NOW + 2 * MIN)
    assert [c.open_time for c in candles] == [NOW - MIN, NOW, NOW + MIN, NOW + 2 * MIN]
    assert candles[0].close == px("60000")
    assert ohlc(candles[1]) == (px("60010"),) * 4 and candles[1].trades == 1
    assert ohlc(candles[2]) == (px("60010"),) * 4 and candles[2].volume == 0
    assert candles[3].close == px("59990")
    # an interval first read after the trades still has its history before them
    assert len(md.klines(SYMBOL, "4h", limit=1000, now=NOW + 2 * MIN)) == 1000


def test_a_symbol_is_backfilled_once() -> None:
    md = fresh()
    md.backfill(SYMBOL, NOW, px("60000"), seed=1)
    with pytest.raises(ValueError, match="already"):
        md.backfill(SYMBOL, NOW, px("60000"), seed=1)


def test_backfill_volume_fits_the_market() -> None:
    md = fresh()
    md.backfill(SYMBOL, NOW, px("60000"), seed=7)
    md.backfill("ETHBTC", NOW, 5000, seed=7)  # 0.05 BTC
    day = md.ticker(SYMBOL, NOW)
    quote = Decimal(day.quote_volume).scaleb(-BTC.quote_scale)
    assert Decimal(10_000_000) < quote < Decimal(1_000_000_000)  # USDT a day
    eth = md.ticker("ETHBTC", NOW)
    assert Decimal(100) < Decimal(eth.quote_volume).scaleb(-8) < Decimal(10_000)  # BTC a day


# -- 24h statistics ---------------------------------------------------------------------


def test_ticker_sums_the_last_24_hours_of_trades() -> None:
    md = fresh()
    now = NOW
    tape(
        md,
        (1, "90.00", "1", False, now - DAY_MS - 2 * MIN),  # before the window
        (2, "100.00", "1", False, now - 20 * HOUR),
        (3, "120.00", "2", True, now - 10 * HOUR),
        (4, "80.00", "1", False, now - 5 * HOUR),
        (5, "110.00", "0.5", True, now - 1),
    )
    t = md.ticker(SYMBOL, now)
    assert (t.open_time, t.close_time) == (open_time(now - DAY_MS, "1m"), now)
    assert (t.open, t.high, t.low, t.last) == (px("100"), px("120"), px("80"), px("110"))
    assert t.prev_close == px("90")
    assert (t.volume, t.count, t.first_id, t.last_id) == (qty("4.5"), 4, 2, 5)
    assert t.quote_volume == BTC.quote_units("475")  # 100 + 240 + 80 + 55
    assert t.last_quantity == qty("0.5")
    assert t.price_change == px("10")
    assert t.price_change_percent == Decimal("10.000")
    assert t.weighted_avg_price == Decimal("105.55555556")  # 475 / 4.5


def test_ticker_of_a_quiet_day_is_flat_at_the_last_price() -> None:
    md = fresh()
    tape(md, (1, "90.00", "1", False, NOW - 2 * DAY_MS))
    t = md.ticker(SYMBOL, NOW)
    assert (t.open, t.high, t.low, t.last, t.prev_close) == (px("90"),) * 5
    assert (t.volume, t.count, t.first_id, t.last_id) == (0, 0, -1, -1)
    assert t.weighted_avg_price == 0 and t.price_change_percent == 0


def test_ticker_of_a_fresh_server_comes_from_the_backfill() -> None:
    md = fresh()
    md.backfill(SYMBOL, NOW, px("60000"), seed=7)
    t = md.ticker(SYMBOL, NOW)
    assert t.last == px("60000") and t.open > 0 and t.prev_close > 0
    assert t.low <= min(t.open, t.last) and t.high >= max(t.open, t.last)
    assert t.volume > 0 and t.low <= t.weighted_avg_price.scaleb(2) <= t.high
    assert (t.count, t.first_id, t.last_id) == (0, -1, -1)


def test_ticker_counts_back_trade_ids_past_the_tape() -> None:
    md = fresh(keep_trades=1000)
    tape(md, *((i, "100.00", "0.1", False, NOW - HOUR + i) for i in range(1, 3001)))
    t = md.ticker(SYMBOL, NOW)
    assert (t.count, t.first_id, t.last_id) == (3000, 1, 3000)


# -- one price path: every interval agrees with the 1m candles ---------------------------


def _aggregate(parts: list[Candle]) -> tuple[int, ...]:
    """What a candle made of ``parts`` holds (the candle's own times aside): the prices
    of those that traded (a quiet candle is flat at the close before it, as Binance's)."""
    traded = [c for c in parts if c.volume] or parts[-1:]
    return (
        traded[0].open,
        max(c.high for c in traded),
        min(c.low for c in traded),
        traded[-1].close,
        sum(c.volume for c in parts),
        sum(c.quote_volume for c in parts),
        sum(c.trades for c in parts),
        sum(c.taker_buy_volume for c in parts),
        sum(c.taker_buy_quote_volume for c in parts),
    )


def _fields(c: Candle) -> tuple[int, ...]:
    return (
        c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades,
        c.taker_buy_volume, c.taker_buy_quote_volume,
    )  # fmt: skip


def _all(md: MarketData, interval: str, now: int, start: int, offset: int = 0) -> list[Candle]:
    """Every ``interval`` candle from ``start`` to ``now``, a page of 1000 at a time."""
    out: list[Candle] = []
    while True:
        page = md.klines(SYMBOL, interval, start=start, limit=1000, now=now, offset=offset)
        out += page
        if len(page) < 1000:
            return out
        start = page[-1].close_time + 1


def _check_against(fine: list[Candle], coarse: list[Candle]) -> int:
    """Assert every ``coarse`` candle that ``fine`` covers is their aggregation; how many."""
    opens = [c.open_time for c in fine]
    checked = 0
    for candle in coarse:
        if candle.open_time < fine[0].open_time:
            continue
        lo = bisect_left(opens, candle.open_time)
        hi = bisect_right(opens, candle.close_time)
        parts = fine[lo:hi]
        assert _fields(candle) == _aggregate(parts), (candle.open_time, len(parts))
        checked += 1
    return checked


LIVE = NOW + 37 * MIN + 12_345  # a server started mid-hour


def _live_market(seed: int = 7) -> MarketData:
    """History back-filled at ``LIVE``, then an hour and a half of trades."""
    md = fresh()
    md.backfill(SYMBOL, LIVE, px("60000"), seed=seed)
    md.klines(SYMBOL, "1m", limit=1, now=LIVE)  # the history is made before the trades
    price = 60000
    for i in range(1, 200):
        price += (-1) ** (i * 7 % 3) * (i % 11)
        md.record_trade(SYMBOL, i, px(str(price)), qty("0.01") * (i % 4 + 1), i % 3 == 0,
                        LIVE + i * 27_000)  # fmt: skip
    return md


@pytest.mark.parametrize("offset", [0, 8 * HOUR, -(3 * HOUR + 30 * MIN), 5 * HOUR + 45 * MIN])
def test_every_interval_is_the_aggregation_of_the_1m_candles(offset: int) -> None:
    md = _live_market()
    now = LIVE + 200 * 27_000 + 5 * MIN
    minutes = _all(md, "1m", now, start=0)
    assert minutes[0].open_time <= open_time(now - 30 * DAY_MS, "1m")  # 30 days at 1m
    assert minutes[-1].open_time == open_time(now, "1m")
    assert sum(c.trades for c in minutes) == 199
    for interval in INTERVALS:
        if interval in ("1s", "1m"):
            continue
        coarse = md.klines(SYMBOL, interval, limit=1000, now=now, offset=offset)
        assert len(coarse) == 1000
        assert coarse[-1].open_time <= now <= coarse[-1].close_time  # the current one
        assert _check_against(minutes, coarse) >= 1, interval
    current = md.klines(SYMBOL, "1d", limit=1, now=now, offset=offset)[0]
    assert current.volume > sum(c.volume for c in minutes if c.open_time >= LIVE - MIN)


def test_the_current_candle_holds_its_whole_period() -> None:
    md = fresh()
    md.backfill(SYMBOL, LIVE, px("60000"), seed=7)
    tape(md, (1, "60010.00", "0.5", False, LIVE + 10), (2, "59990.00", "0.1", True, LIVE + 2 * MIN))
    now = LIVE + 5 * MIN
    for interval in ("1h", "4h", "1d", "1w", "1M"):
        current = md.klines(SYMBOL, interval, limit=1, now=now)[0]
        minutes = md.klines(SYMBOL, "1m", start=current.open_time, limit=1000, now=now)
        assert minutes[0].open_time == current.open_time and minutes[0].trades == 0
        if interval in ("1h", "4h"):  # within a page of 1m candles
            assert minutes[-1].open_time == open_time(now, "1m")
            assert _fields(current) == _aggregate(minutes)
        assert current.trades == 2 and current.volume > qty("0.6")  # the back-fill is in it
        assert current.close == px("59990")


def test_back_filled_1m_candles_are_the_aggregation_of_the_1s_candles() -> None:
    """Live 1s candles come from the trades as Binance's do (a minute whose first trade
    comes after its first second opens at that trade, not at a quiet second)."""
    md = _live_market()
    anchor = open_time(LIVE, "1m")
    seconds = md.klines(SYMBOL, "1s", end=anchor - 1, limit=1000, now=LIVE + 3 * MIN)
    minutes = md.klines(SYMBOL, "1m", end=anchor - 1, limit=16, now=LIVE + 3 * MIN)
    assert seconds[-1].close_time == anchor - 1 and seconds[-1].close == px("60000")
    assert _check_against(seconds, minutes) == 16


@pytest.mark.parametrize(
    ("fine", "coarse", "days_back"),
    [("1h", "12h", 400), ("1h", "1d", 400), ("1d", "1w", 2000), ("1d", "3d", 2000)],
)
def test_older_history_agrees_across_intervals_where_finer_candles_exist(
    fine: str, coarse: str, days_back: int
) -> None:
    md = _live_market()
    start = open_time(LIVE - days_back * DAY_MS, "1w")
    fines = md.klines(SYMBOL, fine, start=start, limit=1000, now=LIVE)
    coarses = md.klines(SYMBOL, coarse, start=start, limit=1000, now=LIVE)
    coarses = [c for c in coarses if c.close_time <= fines[-1].close_time]
    assert _check_against(fines, coarses) >= 20


def test_bots_get_1000_candles_of_every_interval_back_to_1m_resolution() -> None:
    md = _live_market()
    for interval in INTERVALS:
        candles = md.klines(SYMBOL, interval, limit=1000, now=LIVE)
        assert len(candles) == 1000, interval
        assert all(c.low > 0 and c.low <= c.open <= c.high for c in candles), interval


def test_the_backfill_is_the_same_from_the_same_seed_anchor_and_price() -> None:
    """A restart that starts from the same stored state sees the same history."""
    one, two = _live_market(), _live_market()
    now = LIVE + 100 * MIN
    one.klines(SYMBOL, "1d", limit=1, now=now)  # all of it at once
    two.ticker(SYMBOL, now)  # the last two days, then older minutes as reads reach them
    assert _all(two, "1m", now, start=LIVE - 20 * DAY_MS) == _all(
        one, "1m", now, start=LIVE - 20 * DAY_MS
    )
    for interval in ("1m", "15m", "1h", "1d", "1M"):
        assert [_fields(c) for c in one.klines(SYMBOL, interval, limit=1000, now=now)] == [
            _fields(c) for c in two.klines(SYMBOL, interval, limit=1000, now=now)
        ]


def test_minutes_older_than_35_days_live_on_in_the_hours() -> None:
    md = fresh()
    start = NOW - 40 * DAY_MS
    for i in range(40 * 24 * 4):  # a trade every quarter of an hour for 40 days
        md.record_trade(SYMBOL, i + 1, px(str(60000 + i % 97)), qty("0.01"), i % 2 == 0,
                        start + i * 15 * MIN)  # fmt: skip
    first = md.klines(SYMBOL, "1m", start=0, limit=1, now=NOW)[0]
    assert NOW - 37 * DAY_MS <= first.open_time <= NOW - 35 * DAY_MS  # trimmed to 35 days
    hours = _all(md, "1h", NOW, start=0)
    assert hours[0].open_time == start and len(hours) == 40 * 24 + 1  # all still there
    assert sum(h.trades for h in hours) == 40 * 24 * 4
    assert _check_against(_all(md, "1m", NOW, start=0), hours) >= 35 * 24

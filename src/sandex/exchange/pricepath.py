"""One symbol's price path: the rows every kline interval is aggregated from.

A path holds candle rows at four resolutions, each over its own stretch of time, and
each stretch joins the next seamlessly (a row opens at the close of the row before)::

    weeks    [W0, D0)      back-filled (1000 months and more)
    days     [D0, H0)      back-filled (3001 days); then derived from the hours
    hours    [H0, M0)      back-filled (501 days); then derived from the minutes
    minutes  [M0, ...)     back-filled (31 days) up to the anchor, then the live trades

plus 1s rows for the last 20 back-filled minutes, whose 1m rows are their aggregation.

A candle of any interval is the aggregation of the coarsest rows that tile its period
(volumes and counts summed; open = first open, close = last close, high = max and
low = min of the rows that traded: a quiet row is flat at the close before it and, as
on Binance, adds no price). So wherever finer rows exist the coarser candles are
exactly their aggregation; where only coarser rows exist (older history, or a time
zone whose offset splits them) a candle takes the rows that open inside it.

The back-fill walks backwards from the anchor price by a seeded geometric Brownian
motion, pulled gently toward the anchor over years so that decades of monthly candles
stay plausible. It is made when first read, the last two days of minutes first and the
rest when a read reaches it; the same seed, anchor and price give the same rows in
whatever order they are made.

Pure: no I/O, no clock. Prices are ints in the symbol's price units, quantities in
its quantity units, quotes in ``price * quantity`` units.
"""

from __future__ import annotations

import math
import random
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sandex.exchange.klines import Candle

__all__ = [
    "Rows",
    "PathRules",
    "Backfill",
    "PricePath",
    "generate_rows",
    "aggregate",
    "SECOND",
    "MINUTE",
    "KEEP_MINUTES",
]

SECOND: Final = 1000
MINUTE: Final = 60 * SECOND
_HOUR: Final = 60 * MINUTE
_DAY: Final = 24 * _HOUR
_YEAR: Final = 365 * _DAY
_VOLATILITY: Final = 0.6
"""Annual volatility of the back-filled walk (as the live model's)."""
_TAU: Final = 2 * math.pi
_REVERSION: Final = 0.5
"""Pull of the log price toward the anchor, per year (keeps decades of history sane)."""


class Rows:
    """Candle rows of one resolution: row ``i`` opens at ``start + i * step``."""

    __slots__ = ("c", "h", "l", "n", "o", "q", "start", "step", "tb", "tq", "v")

    def __init__(self, step: int, start: int) -> None:
        self.step = step
        self.start = start
        self.o = array("q")
        self.h = array("q")
        self.l = array("q")
        self.c = array("q")
        self.v = array("q")
        self.tb = array("q")
        self.n = array("q")
        self.q: list[int] = []
        self.tq: list[int] = []

    def __len__(self) -> int:
        return len(self.o)

    @property
    def stop(self) -> int:
        """The open time after the last row."""
        return self.start + len(self.o) * self.step

    def append(
        self, o: int, h: int, low: int, c: int, v: int, tb: int, n: int, q: int, tq: int
    ) -> None:
        self.o.append(o)
        self.h.append(h)
        self.l.append(low)
        self.c.append(c)
        self.v.append(v)
        self.tb.append(tb)
        self.n.append(n)
        self.q.append(q)
        self.tq.append(tq)

    def flat(self, price: int) -> None:
        """Append a row without trades at ``price``."""
        self.append(price, price, price, price, 0, 0, 0, 0, 0)

    def add_trade(self, price: int, qty: int, quote: int, taker_buys: bool) -> None:
        """Count a trade in the last row."""
        i = len(self.o) - 1
        if self.n[i] == 0 and self.v[i] == 0:  # a row opened by a trade opens at its price
            self.o[i] = self.h[i] = self.l[i] = price
        if price > self.h[i]:
            self.h[i] = price
        if price < self.l[i]:
            self.l[i] = price
        self.c[i] = price
        self.v[i] += qty
        self.q[i] += quote
        self.n[i] += 1
        if taker_buys:
            self.tb[i] += qty
            self.tq[i] += quote

    def extend(self, other: Rows) -> None:
        """Append ``other``'s rows (same step, starting at this one's stop)."""
        for mine, theirs in (
            (self.o, other.o), (self.h, other.h), (self.l, other.l), (self.c, other.c),
            (self.v, other.v), (self.tb, other.tb), (self.n, other.n),
        ):  # fmt: skip
            mine.extend(theirs)
        self.q.extend(other.q)
        self.tq.extend(other.tq)

    def drop_before(self, count: int) -> None:
        """Forget the oldest ``count`` rows."""
        for column in (self.o, self.h, self.l, self.c, self.v, self.tb, self.n):
            del column[:count]
        del self.q[:count]
        del self.tq[:count]
        self.start += count * self.step

    def derive(self, finer: Rows, upto: int) -> None:
        """Append the aggregation of ``finer``'s rows, one row per ``step``, for every
        period that ``finer`` has closed (it holds a row at or after the period's end)
        and that ends at or before ``upto``."""
        step = self.step
        while True:
            begin = self.stop
            end = begin + step
            if end > upto or finer.stop <= end or finer.start >= end:
                return
            lo = max(0, (begin - finer.start) // finer.step)
            hi = (end - finer.start) // finer.step
            self.append(*_sum_rows(finer, lo, hi))


def _prices(r: Rows, lo: int, hi: int) -> tuple[int, int, int, int] | None:
    """Open, high, low and close of rows ``lo:hi`` that traded (as Binance's candles are
    of the trades: a quiet row, flat at the close before it, adds no price); None if
    none did."""
    if 0 not in r.v[lo:hi]:  # the common case: every row traded
        return r.o[lo], max(r.h[lo:hi]), min(r.l[lo:hi]), r.c[hi - 1]
    traded = [i for i in range(lo, hi) if r.v[i]]
    if not traded:
        return None
    return (
        r.o[traded[0]],
        max(r.h[i] for i in traded),
        min(r.l[i] for i in traded),
        r.c[traded[-1]],
    )


def _sum_rows(r: Rows, lo: int, hi: int) -> tuple[int, int, int, int, int, int, int, int, int]:
    prices = _prices(r, lo, hi)
    o, h, low, c = (r.c[hi - 1],) * 4 if prices is None else prices
    return (
        o,
        h,
        low,
        c,
        sum(r.v[lo:hi]),
        sum(r.tb[lo:hi]),
        sum(r.n[lo:hi]),
        sum(r.q[lo:hi]),
        sum(r.tq[lo:hi]),
    )


@dataclass(frozen=True, slots=True)
class PathRules:
    """The symbol's grid: prices from ``price_lo`` to ``price_hi`` by ``price_step``,
    quantities by ``qty_step`` (all in units)."""

    price_lo: int
    price_step: int
    price_hi: int
    qty_step: int


@dataclass(frozen=True, slots=True)
class Backfill:
    """What a back-fill is generated from: the anchor (the back-fill's rows end just
    before it), the price there, the seed and the typical volume per minute (units)."""

    anchor: int
    price: int
    seed: int
    volume_per_minute: float


def generate_rows(
    plan: Backfill, rules: PathRules, step: int, start: int, stop: int, close: float, salt: int
) -> Rows:
    """Rows of ``step`` from ``start`` to ``stop`` (aligned), walked backwards from a
    last close of ``close`` (price units, as a float so stretches join exactly)."""
    rng = random.Random(plan.seed * 16 + salt)
    count = max(0, (stop - start) // step)
    sd = _VOLATILITY * math.sqrt(step / _YEAR)
    wick = sd * 0.4
    keep = 1.0 - _REVERSION * step / _YEAR  # the pull toward the anchor, in log terms
    anchor_log = math.log(plan.price)
    volume = plan.volume_per_minute * step / MINUTE
    lo, tick, hi, q_step = rules.price_lo, rules.price_step, rules.price_hi, rules.qty_step
    o_col, h_col, l_col, c_col, v_col, tb_col = [], [], [], [], [], []
    q_col, tq_col = [], []
    log_close = math.log(close)
    c = min(max(lo + round((close - lo) / tick) * tick, lo), hi)
    rand, exp, log, sqrt, cos, sin = rng.random, math.exp, math.log, math.sqrt, math.cos, math.sin
    half = tick / 2
    for _ in range(count):
        # two normals (Box-Muller): the step, and the volume's lognormal factor
        radius = sqrt(-2.0 * log(1.0 - rand()))
        angle = _TAU * rand()
        log_open = anchor_log + (log_close - anchor_log) * keep - sd * radius * cos(angle)
        o = lo + int((exp(log_open) - lo + half) // tick) * tick
        if o < lo:
            o = lo
        elif o > hi:
            o = hi
        # wicks: exponential beyond the body
        if log_open > log_close:
            h = lo + int((exp(log_open - wick * log(1.0 - rand())) - lo + half) // tick) * tick
            low = lo + int((exp(log_close + wick * log(1.0 - rand())) - lo + half) // tick) * tick
        else:
            h = lo + int((exp(log_close - wick * log(1.0 - rand())) - lo + half) // tick) * tick
            low = lo + int((exp(log_open + wick * log(1.0 - rand())) - lo + half) // tick) * tick
        top = o if o > c else c
        bottom = c if o > c else o
        if h < top:
            h = top
        elif h > hi:
            h = hi
        if low > bottom:
            low = bottom
        elif low < lo:
            low = lo
        v = int(volume * exp(0.5 * radius * sin(angle))) // q_step * q_step or q_step
        tb = int(v * (0.4 + 0.2 * rand())) // q_step * q_step
        mid = (o + h + low + c) // 4
        o_col.append(o)
        h_col.append(h)
        l_col.append(low)
        c_col.append(c)
        v_col.append(v)
        tb_col.append(tb)
        q_col.append(v * mid)
        tq_col.append(tb * mid)
        log_close, c = log_open, o
    out = Rows(step, start)
    for column, values in (
        (out.o, o_col), (out.h, h_col), (out.l, l_col), (out.c, c_col),
        (out.v, v_col), (out.tb, tb_col), (out.n, [0] * count),
    ):  # fmt: skip
        values.reverse()
        column.extend(values)
    q_col.reverse()
    tq_col.reverse()
    out.q, out.tq = q_col, tq_col
    return out


def aggregate(stores: tuple[Rows, ...], begin: int, end: int) -> Candle | None:
    """The candle over ``[begin, end)`` from ``stores`` (coarsest first): each stretch
    from the coarsest rows that fit inside it; where none fit (a period that does not
    align with the only rows there are), the rows that open inside it. None when no
    row opens in it."""
    pos = begin
    o = h = low = c = v = tb = n = q = tq = 0
    found = priced = False
    while pos < end:
        taken: Rows | None = None
        covering: Rows | None = None
        for rows in stores:
            if rows.start <= pos < rows.stop:
                covering = rows
                if (pos - rows.start) % rows.step == 0 and pos + rows.step <= end:
                    taken = rows
                    break
        if taken is None:
            if covering is None:
                starts = [r.start for r in stores if r.o and r.start > pos]
                if not starts:
                    break
                pos = min(starts)
                continue
            offset = (pos - covering.start) % covering.step
            if offset:
                pos += covering.step - offset  # that row opened before this candle
                continue
            taken = covering  # a coarse row that opens here and reaches past the end
        i = (pos - taken.start) // taken.step
        # the run of this store's rows that fit (one row when it reaches past the end)
        last = max(i + 1, min(len(taken), (end - taken.start) // taken.step))
        prices = _prices(taken, i, last)
        if prices is not None:
            if priced:
                h, low = max(h, prices[1]), min(low, prices[2])
            else:
                o, h, low = prices[0], prices[1], prices[2]
                priced = True
            c = prices[3]
        elif not priced:  # quiet so far: flat at the close before
            o = h = low = c = taken.c[last - 1]
        found = True
        v += sum(taken.v[i:last])
        tb += sum(taken.tb[i:last])
        n += sum(taken.n[i:last])
        q += sum(taken.q[i:last])
        tq += sum(taken.tq[i:last])
        pos = taken.start + last * taken.step
    if not found:
        return None
    return Candle(begin, end - 1, o, h, low, c, v, q, n, tb, tq)


_SECONDS_BACK: Final = 20 * MINUTE
"""Back-filled 1s rows before the anchor (1000 candles of 1s, and a margin)."""
_RECENT_BACK: Final = 2 * _DAY
"""Back-filled 1m rows made at the first read; older ones when a read reaches them."""
_MINUTES_BACK: Final = 31 * _DAY
"""Back-filled 1m rows reach back this far (then to the day's start): ``freqtrade
download-data --days 30`` finds them all."""
_HOURS_BACK: Final = 501 * _DAY
"""Back-filled 1h rows before the minutes: 1000 candles of 12h."""
_DAYS_BACK: Final = 3001 * _DAY
"""Back-filled 1d rows before the hours: 1000 candles of 3d."""
_MONTHS_BACK: Final = 1001
"""Back-filled 1w rows before the days reach back this many months (1000 of 1M)."""
_WEEK: Final = 7 * _DAY
_MONDAY: Final = 4 * _DAY  # 1970-01-05, the first Monday
KEEP_MINUTES: Final = 35 * 24 * 60
"""Live 1m rows kept (older ones live on in the hours derived from them)."""


def _month_start(ts: int, back: int) -> int:
    """The first day of the month ``back`` months before the one containing ``ts``."""
    moment = datetime.fromtimestamp(ts // 1000, tz=UTC)
    index = moment.year * 12 + moment.month - 1 - back
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp()) * 1000


def _monday(ts: int) -> int:
    """The Monday 00:00 UTC on or before ``ts``."""
    return ts - (ts - _MONDAY) % _WEEK


class PricePath:
    """One symbol's rows (see the module's docstring), back-filled on first use."""

    __slots__ = (
        "_coarse", "_fine", "_older", "days", "hours", "minutes", "plan", "rules", "seconds",
        "weeks",
    )  # fmt: skip

    def __init__(self, rules: PathRules) -> None:
        self.rules = rules
        self.plan: Backfill | None = None
        self.seconds: Rows | None = None
        """Back-filled 1s rows (live 1s candles are kept by the caller)."""
        self.minutes: Rows | None = None
        self.hours: Rows | None = None
        self.days: Rows | None = None
        self.weeks: Rows | None = None
        self._fine = False
        self._older: int | None = None
        """Where the back-filled minutes not made yet begin."""
        self._coarse = False

    # -- recording --------------------------------------------------------------------

    def record(self, ts: int, price: int, qty: int, quote: int, taker_buys: bool) -> None:
        """Count a trade (in time order; a late one joins the last row)."""
        opened = ts - ts % MINUTE
        m = self.minutes
        if m is None:
            m = self.minutes = Rows(MINUTE, opened)
            m.flat(price)
        elif opened >= m.stop:
            last = m.c[-1]
            while m.stop < opened:
                m.flat(last)
            m.flat(price)
        m.add_trade(price, qty, quote, taker_buys)

    # -- back-fill and upkeep ---------------------------------------------------------

    def ensure(self, now: int, *, coarse: bool) -> tuple[Rows, ...]:
        """Generate what is due, bring the rows up to ``now`` and return the stores to
        aggregate from (coarsest first; the minutes alone unless ``coarse``)."""
        if not self._fine:
            self._fine = True
            if self.plan is not None:
                self._generate_fine(self.plan)
        m = self.minutes
        if m is None:
            return ()
        last = m.c[-1]
        closed = now - now % MINUTE  # flat rows for the quiet minutes that have closed
        while m.stop < closed:
            m.flat(last)
        if not coarse and len(m) <= KEEP_MINUTES + 24 * 60:
            return (m,)
        if not self._coarse:
            self._coarse = True
            self._generate_coarse()
        m, hours, days, weeks = self.minutes, self.hours, self.days, self.weeks
        assert m is not None and hours is not None and days is not None and weeks is not None
        hours.derive(m, closed)
        days.derive(hours, closed)
        extra = len(m) - KEEP_MINUTES
        if extra > 24 * 60:  # in bulk, and only what the hours already hold
            m.drop_before(min(extra, max(0, (hours.stop - m.start) // MINUTE)))
        return (weeks, days, hours, m) if coarse else (m,)

    def _generate_fine(self, plan: Backfill) -> None:
        live = self.minutes
        anchor = plan.anchor - plan.anchor % MINUTE
        if live is not None:
            anchor = min(anchor, live.start)
        s0 = anchor - _SECONDS_BACK
        r0 = min(s0, (anchor - _RECENT_BACK) // _DAY * _DAY)
        rules = self.rules
        seconds = generate_rows(plan, rules, SECOND, s0, anchor, float(plan.price), 1)
        minutes = generate_rows(plan, rules, MINUTE, r0, s0, float(seconds.o[0]), 2)
        self._older = (anchor - _MINUTES_BACK) // _DAY * _DAY  # made when first read
        per = MINUTE // SECOND
        for i in range(0, len(seconds), per):
            minutes.append(*_sum_rows(seconds, i, i + per))
        if live is not None:
            while minutes.stop < live.start:
                minutes.flat(plan.price)
            minutes.extend(live)
        self.seconds, self.minutes = seconds, minutes

    def reach(self, ts: int) -> None:
        """Make the back-filled minutes from ``ts`` on (the older ones wait for a read
        that reaches them: most reads want the last day or two)."""
        m, older, plan = self.minutes, self._older, self.plan
        if m is None or older is None or plan is None or ts >= m.start:
            return
        self._older = None
        rows = generate_rows(plan, self.rules, MINUTE, older, m.start, float(m.o[0]), 6)
        rows.extend(m)
        self.minutes = rows

    @property
    def first_minute(self) -> int | None:
        """Where the 1m rows begin (back-filled or not yet)."""
        m = self.minutes
        if m is None:
            return None
        return m.start if self._older is None else min(self._older, m.start)

    def _generate_coarse(self) -> None:
        self.reach(0)
        m = self.minutes
        assert m is not None
        plan = self.plan
        if plan is None:
            self.hours = Rows(_HOUR, m.start - m.start % _HOUR)
            self.days = Rows(_DAY, m.start - m.start % _DAY)
            self.weeks = Rows(_WEEK, self.days.start)  # never more than empty
            return
        m0 = m.start
        h0 = m0 - _HOURS_BACK
        d0 = _monday(h0 - _DAYS_BACK)
        w0 = _monday(_month_start(m0, _MONTHS_BACK))
        rules = self.rules
        self.hours = hours = generate_rows(plan, rules, _HOUR, h0, m0, float(m.o[0]), 3)
        self.days = days = generate_rows(plan, rules, _DAY, d0, h0, float(hours.o[0]), 4)
        self.weeks = generate_rows(plan, rules, _WEEK, w0, d0, float(days.o[0]), 5)

    # -- reading ----------------------------------------------------------------------

    def last_open(self) -> int | None:
        m = self.minutes
        return None if m is None or not m.o else m.stop - m.step

    def close_before(self, ts: int, stores: tuple[Rows, ...]) -> int | None:
        """The close of the newest row that opened before ``ts``."""
        best: tuple[int, int] | None = None
        for rows in stores:
            if not rows.o or rows.start >= ts:
                continue
            i = min(len(rows), -(-(ts - rows.start) // rows.step)) - 1
            opened = rows.start + i * rows.step
            if best is None or opened >= best[0]:
                best = (opened, rows.c[i])
        return None if best is None else best[1]

"""Matching-engine throughput on the DESIGN §6 workload, in process.

    .venv/bin/python bench/engine.py [--rounds 7] [--orders 100000]

100,000 LIMIT GTC orders drawn from ``random.Random(42)``, per order and in this
order: buy if ``rng.random() < 0.5``; quantity ``rng.randint(1, 10)`` lots; if
``rng.random() < 0.30`` the order crosses (a buy at mid + ``randint(1, 10)`` ticks,
a sell at mid - ``randint(0, 9)``), else it rests (a buy at mid - ``randint(0, 49)``,
a sell at mid + ``randint(1, 50)``). Mid is 10,000 ticks, the book starts empty,
buyers and sellers are different accounts. The timed loop draws, builds each
``PlaceOrder`` and submits it through the engine's public interface
(``Engine.submit(command, now) -> events``), counting the ``Trade`` events.

The run must yield 37,951 trades (a check that the matching is right): the script
exits 1 when it does not. It prints orders/s for the best and the median round, and
whether the engine ran compiled (``make native``, which ``make bench`` runs) or as
plain Python.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from decimal import Decimal

from sandex.exchange import (
    Engine,
    LotSize,
    Notional,
    PlaceOrder,
    PriceFilter,
    Side,
    Symbol,
    TimeInForce,
    Trade,
)
from sandex.exchange import engine as engine_module

EXPECTED_TRADES = 37_951
MID = 10_000
NOW = 1_800_000_000_000
BUYER, SELLER = 1, 2

# One tick = 0.01 and one lot = 1 unit, so the symbol's fixed-point units are
# exactly the workload's ticks and lots. No MAX_NUM_ORDERS: each account ends with
# tens of thousands of resting orders.
BENCH = Symbol(
    name="LOTSUSD",
    base_asset="LOTS",
    quote_asset="USD",
    price_filter=PriceFilter(Decimal("0.01"), Decimal("1000000"), Decimal("0.01")),
    lot_size=LotSize(Decimal(1), Decimal(1_000_000), Decimal(1)),
    notional=Notional(Decimal(0)),
    max_num_orders=None,
    max_num_algo_orders=None,
)


def run(orders: int) -> tuple[float, int]:
    """One round on a fresh engine: (seconds, trades)."""
    engine = Engine([BENCH])
    submit = engine.submit
    rng = random.Random(42)
    rand = rng.random
    randint = rng.randint
    symbol = BENCH.name
    buy_side, sell_side = Side.BUY, Side.SELL
    limit = PlaceOrder.limit  # builds the same tuple as PlaceOrder(..., OrderType.LIMIT, ...)
    gtc = TimeInForce.GTC
    trades = 0
    start = time.perf_counter()
    for _ in range(orders):
        buy = rand() < 0.5
        qty = randint(1, 10)
        if rand() < 0.30:
            price = MID + randint(1, 10) if buy else MID - randint(0, 9)
        else:
            price = MID - randint(0, 49) if buy else MID + randint(1, 50)
        if buy:
            order = limit(symbol, BUYER, buy_side, qty, price, gtc)
        else:
            order = limit(symbol, SELLER, sell_side, qty, price, gtc)
        events = submit(order, NOW)
        if len(events) > 1:  # a lone event is Accepted (or Rejected): no trade to count
            trades += sum(type(e) is Trade for e in events)
    return time.perf_counter() - start, trades


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    times = []
    for _ in range(args.rounds):
        seconds, trades = run(args.orders)
        if args.orders == 100_000 and trades != EXPECTED_TRADES:
            print(f"FAIL: {trades} trades, expected {EXPECTED_TRADES}", file=sys.stderr)
            return 1
        times.append(seconds)
    best, median = min(times), statistics.median(times)
    per = args.orders
    mode = "plain Python" if engine_module.__file__.endswith(".py") else "compiled by mypyc"
    print(f"engine ({mode}): {per:,} limit orders, {trades:,} trades, {args.rounds} rounds")
    for name, seconds in (("best", best), ("median", median)):
        print(f"  {name:<6} {per / seconds:>10,.0f} orders/s  ({seconds * 1e6 / per:.2f} µs/order)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

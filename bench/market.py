"""The simulated market's cost per step, in process, over SQLite.

    .venv/bin/python bench/market.py [--steps 600] [--orders 0]

The exchange core with the default symbols and the simulated market, over a fresh
SQLite database in a temporary directory, stepped as ``sandex serve`` steps it: every
500 ms of simulated time, a symbol at a time, each step written as one batch. With
``--orders N`` a user also sends N small IOC orders per step that cross the touch (as
bench/orders.py does), so the makers' quotes are eaten and must be put back.

Prints per symbol step: the engine commands the makers sent (placed and canceled
orders), the rows written to the database, the time the step's commands take on the
event loop and the time of its write; and how many levels each side of BTCUSDT's
book shows at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from sandex.bootstrap import open_sandex
from sandex.config import Settings
from sandex.exchange import (
    CancelAll,
    CancelOrder,
    PlaceOrder,
    Side,
    TimeInForce,
    default_symbols,
)
from sandex.exchange.venue import MAKER, Venue
from sandex.service.engine_commands import Place
from sandex.service.exchange_core import ExchangeCore
from sandex.service.journal import Batch
from sandex.storage.exchange_store import SqlExchangeStore

START = 1_800_000_000_000
USER = 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="market steps (of 500 ms)")
    parser.add_argument("--orders", type=int, default=0, help="user IOC orders per step")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, open_sandex(Settings(data_dir=Path(tmp))) as sx:
        store = SqlExchangeStore(sx.db)
        core = ExchangeCore(Venue(default_symbols()), store)
        simulator = core.simulator
        rows: list[int] = []
        written = store.write

        def counting_write(batch: Batch) -> None:  # a tally around the real write
            rows.append(
                len(batch.orders)
                + len(batch.trades)
                + len(batch.balances)
                + len(batch.journal)
                + len(batch.books)
                + len(batch.applied_credits)
                + len(batch.market_trades)
                + len(batch.market_minutes)
            )
            written(batch)

        store.write = counting_write  # type: ignore[method-assign]
        core.start(START)
        store.add_credit(USER, "USDT", 10**9 * 10**8, "bench", START)
        store.add_credit(USER, "BTC", 10**4 * 10**8, "bench", START)
        simulator.apply_credits(store.pending_credits(), START)
        asyncio.run(core.journal.durable())
        venue = core.venue
        sent = {"place": 0, "cancel": 0}
        run = simulator._run  # the makers' commands, counted on their way in

        overhead = [0.0]

        def counting_run(commands: list[object], now: int) -> None:
            began = time.perf_counter()
            for c in commands:
                if isinstance(c, PlaceOrder) and c.account == MAKER:
                    sent["place"] += 1
                elif isinstance(c, CancelOrder) and c.account == MAKER:
                    sent["cancel"] += 1
                elif isinstance(c, CancelAll) and c.account == MAKER:
                    sent["cancel"] += len(venue.engine.open_orders(c.symbol, MAKER))
            overhead[0] += time.perf_counter() - began  # the tally is not the makers' time
            run(commands, now)  # type: ignore[arg-type]

        simulator._run = counting_run  # type: ignore[method-assign]
        btc = venue.symbols["BTCUSDT"]
        symbols = sorted(core.symbols)
        times: list[float] = []
        writes: list[float] = []
        tick_rows: list[int] = []
        for step in range(1, args.steps + 1):
            now = START + step * 500
            for n in range(args.orders):
                bid, ask = venue.engine.best_bid("BTCUSDT"), venue.engine.best_ask("BTCUSDT")
                if bid is None or ask is None:
                    break
                buy = n % 2 == 0
                price = ask.price * 101 // 100 if buy else bid.price * 99 // 100
                core.apply(
                    Place(
                        PlaceOrder.limit(
                            "BTCUSDT",
                            USER,
                            Side.BUY if buy else Side.SELL,
                            btc.quantity_units(str(Decimal("0.0005"))),
                            price,
                            TimeInForce.IOC,
                        )
                    ),
                    now,
                )
            asyncio.run(core.journal.durable())
            for name in symbols:
                mark = len(rows)
                overhead[0] = 0.0
                began = time.perf_counter()
                simulator.tick(now, name)
                stepped = time.perf_counter()
                asyncio.run(core.journal.durable())
                times.append(stepped - began - overhead[0])
                writes.append(time.perf_counter() - stepped)
                tick_rows.append(sum(rows[mark:]))
        ticks = args.steps * len(symbols)
        bids, asks = venue.engine.depth("BTCUSDT", 5000)
        core.close()
    user_rows = f", {args.orders} user orders per step" if args.orders else ""
    print(f"simulated market, {len(symbols)} symbols, {args.steps} steps of 500 ms{user_rows}")
    print(f"  maker orders placed per symbol step    {sent['place'] / ticks:8.1f}")
    print(f"  maker orders canceled per symbol step  {sent['cancel'] / ticks:8.1f}")
    print(f"  rows written per symbol step           {statistics.fmean(tick_rows):8.1f}")
    print(f"  time of its commands (median)          {statistics.median(times) * 1e6:8.0f} µs")
    print(f"  time of its write (median)             {statistics.median(writes) * 1e6:8.0f} µs")
    print(f"  BTCUSDT levels at the end              {len(bids):4d} bids {len(asks):4d} asks")
    return 0


if __name__ == "__main__":
    sys.exit(main())

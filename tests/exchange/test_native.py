"""The engine compiled by mypyc (``make native``) and the same sources as plain Python.

``book``, ``engine`` and ``market`` run compiled when their C extensions sit next to
them, as plain Python otherwise. Both must answer every command with the same events,
and a build older than its sources must not pass unnoticed (Python would keep
importing the stale extension). Also here: the book's bookkeeping that the other tests
rarely reach (sweeping filled orders out of a level and out of an account's list,
restoring orders out of id order).
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from exchange_support import BTC, NOW, SYMBOL, accepted, buy, new_engine, sell
from sandex.exchange import (
    Accepted,
    CancelAll,
    Canceled,
    CancelOrder,
    CancelReplace,
    Engine,
    Event,
    LotSize,
    Notional,
    OrderType,
    PlaceOrder,
    PriceFilter,
    SelfTradePrevention,
    Side,
    Symbol,
    TimeInForce,
    Trade,
    default_symbols,
)
from sandex.exchange import book as book_module
from sandex.exchange import engine as engine_module
from sandex.exchange import market as market_module

EXCHANGE = Path(book_module.__file__).parent
COMPILED = [book_module, engine_module, market_module]
# what the compiled modules are built from (the Makefile's NATIVE_DEPS)
SOURCES = [
    EXCHANGE / f"{name}.py"
    for name in (
        "book engine market checks errors events money orders rejections symbols units".split()
    )
]
UNITS = Symbol(
    name="UNITUSD",
    base_asset="UNIT",
    quote_asset="USD",
    price_filter=PriceFilter(Decimal("0.01"), Decimal("1000"), Decimal("0.01")),
    lot_size=LotSize(Decimal(1), Decimal(1000), Decimal(1)),
    notional=Notional(Decimal(0)),
)
"""Tick and step of one unit, so LIMIT orders take the engine's fast path."""
BIG = replace(BTC, max_num_orders=None)
"""BTCUSDT without a cap on open orders per account."""


def compiled() -> bool:
    return any(not m.__file__.endswith(".py") for m in COMPILED)


# -- the build --------------------------------------------------------------------------


def test_the_compiled_engine_is_not_older_than_its_sources():
    if not compiled():
        pytest.skip("the engine runs as plain Python (no `make native` build)")
    newest = max(SOURCES, key=lambda p: p.stat().st_mtime)
    for module in COMPILED:
        built = Path(module.__file__)
        assert built.stat().st_mtime >= newest.stat().st_mtime, (
            f"{built.name} is older than {newest.name}: Python still runs the old build. "
            "Run `make native` (or `make pure` to drop the build)."
        )


def _workload(engine: Engine, seed: int, commands: int = 4000) -> list[object]:
    """Every event of a mixed random workload on two symbols, and some read-side views."""
    rng = random.Random(seed)
    out: list[object] = []
    oids: dict[str, list[int]] = {UNITS.name: [], SYMBOL: []}
    for n in range(commands):
        symbol = UNITS.name if rng.random() < 0.7 else SYMBOL
        grid = 1 if symbol == UNITS.name else 100  # BTCUSDT: cents, 1e-5 BTC
        mid = 10_000 if symbol == UNITS.name else 6_000_000
        account = rng.randint(1, 4)
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        sign = 1 if side is Side.BUY else -1
        quantity = rng.randint(1, 8) * grid
        price = mid + sign * rng.randint(-5, 40) * grid
        stp = rng.choice([None, None, *SelfTradePrevention])
        roll = rng.random()
        cmd: PlaceOrder | CancelOrder | CancelAll | CancelReplace
        if roll < 0.55:
            tif = rng.choice([TimeInForce.GTC] * 4 + [TimeInForce.IOC, TimeInForce.FOK])
            cid = f"c{n}" if rng.random() < 0.1 else None
            cmd = PlaceOrder.limit(symbol, account, side, quantity, price, tif, cid, stp)
        elif roll < 0.62:
            cmd = PlaceOrder(symbol, account, side, OrderType.MARKET, quantity, stp_mode=stp)
        elif roll < 0.65:
            quote = rng.randint(1, 20) * mid // 10
            cmd = PlaceOrder(symbol, account, side, OrderType.MARKET, quote_quantity=quote)
        elif roll < 0.68:
            cmd = PlaceOrder(
                symbol, account, side, OrderType.LIMIT_MAKER, quantity, price, stp_mode=stp
            )
        elif roll < 0.73:
            kind = rng.choice([OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT])
            stop_price = mid + rng.randint(-30, 30) * grid
            limit = price if kind is OrderType.STOP_LOSS_LIMIT else None
            tif = TimeInForce.GTC if limit is not None else None
            cmd = PlaceOrder(symbol, account, side, kind, quantity, limit, tif, None, stop_price)
        elif roll < 0.93 and oids[symbol]:
            cmd = CancelOrder(symbol, account, rng.choice(oids[symbol]))
        elif roll < 0.96 and oids[symbol]:
            new = PlaceOrder.limit(symbol, account, side, quantity, price)
            cmd = CancelReplace(CancelOrder(symbol, account, rng.choice(oids[symbol])), new)
        else:
            cmd = CancelAll(symbol, account)
        events = engine.submit(cmd, NOW + n * 1_000)
        oids[symbol] += [e.order_id for e in events if isinstance(e, Accepted)]
        out += events
        if n % 97 == 0:
            out += [engine.depth(symbol, 5), engine.open_orders(symbol, account)]
            out += [engine.average_price(symbol, NOW + n * 1_000), engine.snapshot(symbol)]
            out += [engine.market_fill(symbol, side, 50 * grid, account)]
    return out


def _digest(seed: int) -> str:
    engine = Engine([UNITS, *default_symbols()])
    return hashlib.sha256(repr(_workload(engine, seed)).encode()).hexdigest()


_PLAIN_PYTHON = """
import importlib.util, sys
exchange = sys.argv[1]
class PlainPython:  # load these modules from their .py files, even beside a build
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in ("sandex.exchange.book", "sandex.exchange.engine", "sandex.exchange.market"):
            return importlib.util.spec_from_file_location(name, f"{exchange}/{name[16:]}.py")
        return None
sys.meta_path.insert(0, PlainPython)
sys.path[:0] = sys.argv[2:]
import test_native
assert not test_native.compiled()
print(test_native._digest(7))
"""


def test_plain_python_and_the_build_answer_alike():
    """The same workload as plain Python (in a child process) and as imported here
    (compiled after ``make native``): the same events, views and snapshots."""
    here = Path(__file__).parent
    tests = here.parent
    child = subprocess.run(
        [sys.executable, "-c", _PLAIN_PYTHON, str(EXCHANGE), str(here), str(tests)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == _digest(7)


# -- bookkeeping the other tests rarely reach -------------------------------------------


def test_a_level_drops_its_filled_orders_and_keeps_time_priority():
    engine = Engine([BIG])
    for n in range(202):
        engine.submit(sell("0.001", "60000", account=2 + n % 3), NOW)
    for _ in range(150):  # fills the first 150 of the 202, one by one
        events = engine.submit(buy("0.001", "60000", account=1), NOW)
        assert [type(e) for e in events] == [Accepted, Trade]
    assert engine.best_ask(SYMBOL).quantity == 52 * 100
    events = engine.submit(buy("0.002", "60000", account=1), NOW)
    assert [e.maker_order_id for e in events if isinstance(e, Trade)] == [151, 152]
    assert [o.order_id for o in engine.open_orders(SYMBOL)] == list(range(153, 203))


def test_an_account_sweeps_its_filled_orders_and_still_finds_the_rest():
    engine = Engine([BIG])
    oids = [
        accepted(engine.submit(sell("0.001", str(60000 + n), account=2), NOW)).order_id
        for n in range(300)
    ]
    engine.submit(buy("0.25", "60250", account=1), NOW)  # fills the 250 cheapest
    left = engine.open_orders(SYMBOL, 2)
    assert [o.order_id for o in left] == oids[250:]
    assert engine.submit(CancelOrder(SYMBOL, 2, oids[0]), NOW)[0].code == -2011
    assert engine.submit(CancelOrder(SYMBOL, 2, oids[260]), NOW) == [
        Canceled(oids[260], 2, 100, NOW)
    ]
    assert len(engine.submit(CancelAll(SYMBOL, 2), NOW)) == 49
    assert engine.open_orders(SYMBOL, 2) == []


def test_restore_takes_orders_in_priority_order_not_id_order():
    engine = new_engine()
    engine.submit(sell("0.1", "60010", account=2), NOW)
    engine.submit(sell("0.1", "60000", account=2), NOW)  # a later id, a better price
    copy = new_engine()
    copy.restore(engine.snapshot(SYMBOL))
    assert [o.order_id for o in copy.open_orders(SYMBOL, 2)] == [1, 2]
    assert copy.submit(CancelOrder(SYMBOL, 2, 1), NOW)[0] == Canceled(1, 2, 10_000, NOW)
    assert copy.snapshot(SYMBOL).resting == engine.snapshot(SYMBOL).resting[:1]


def test_a_limit_order_with_a_float_or_bool_field_is_refused_not_coerced():
    engine = Engine([UNITS])
    ok = PlaceOrder.limit(UNITS.name, 1, Side.BUY, 5, 10_000)
    illegal = engine.submit(ok._replace(quantity=5.0), NOW)
    assert illegal[0].code == -1100
    assert engine.submit(ok._replace(price=True), NOW)[0].code == -1100
    assert engine.submit(ok._replace(symbol=None), NOW)[0].code == -1121
    assert type(engine.submit(ok, NOW)[0]) is Accepted


def test_events_are_the_declared_types():
    """The compiled engine builds its events as the events module's NamedTuples."""
    engine = Engine([UNITS])
    engine.submit(PlaceOrder.limit(UNITS.name, 2, Side.SELL, 5, 10_000), NOW)
    events: list[Event] = engine.submit(PlaceOrder.limit(UNITS.name, 1, Side.BUY, 5, 10_000), NOW)
    assert [type(e) for e in events] == [Accepted, Trade]
    assert events[1] == Trade(1, 10_000, 5, 2, 1, 1, 2, Side.BUY, 0, 0, NOW)
    assert events[1].maker_order_id == 1

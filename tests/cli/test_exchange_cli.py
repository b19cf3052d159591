"""``sandex balances credit`` and ``sandex market crash``, as an operator uses them: with
no server running (the order waits in the database) and with one (it applies at once).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from sandex.bootstrap import Sandex, build_core, open_sandex
from sandex.config import Settings
from sandex.exchange.venue import MAKER
from sandex.service.exchange_core import ExchangeCore
from sandex.service.ports import ShockKind
from sandex.storage.exchange_store import SqlExchangeStore
from sandex.storage.tables import credits, market_shocks
from support import FAST_HASH, PG_URL, Cli, make_user

EMAIL = "alice@example.com"
UNIT = 10**8
_T = TypeVar("_T")


@pytest.fixture
def env_settings(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Settings:
    """The environment the CLI reads (SQLite in tmp_path, or a PostgreSQL schema), with
    a fast market schedule for a server started by the test."""
    for name in ("SANDEX_DATABASE_URL", "SANDEX_DATABASE_SCHEMA", "SANDEX_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SANDEX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SANDEX_SIMULATE", "0")
    monkeypatch.setenv("SANDEX_MARKET_TICK_MS", "50")
    if backend == "postgresql":
        monkeypatch.setenv("SANDEX_DATABASE_URL", PG_URL)
        monkeypatch.setenv("SANDEX_DATABASE_SCHEMA", request.getfixturevalue("pg_schema"))
    return dataclasses.replace(Settings.from_env(), password_hash=FAST_HASH)


@pytest.fixture
def sx(env_settings: Settings) -> Iterator[Sandex]:
    """The operator's database, with Alice in it (her starting balance queued)."""
    with open_sandex(env_settings) as opened:
        make_user(opened, EMAIL, now=opened.clock.now())
        yield opened


@pytest.fixture
def cli(
    sx: Sandex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cli]:
    yield Cli(capsys, monkeypatch)


@pytest.fixture
def fast_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """``credit`` waits up to 3 s for a server to apply it; with none running, don't."""
    monkeypatch.setattr("sandex.cli.exchange._WAIT_S", 0.2)


OnServer = Callable[[Callable[[ExchangeCore], _T]], _T]


@contextmanager
def running_server(settings: Settings) -> Iterator[OnServer[Any]]:
    """The exchange as ``sandex serve`` runs it (its market schedule on an event loop),
    in a thread of this process, over the same database. Yields a function that runs a
    function of the trading service on the server's loop (to read its book)."""
    server = open_sandex(settings)
    core = build_core(server)
    started, stop = threading.Event(), threading.Event()
    loops: list[asyncio.AbstractEventLoop] = []

    def on_server(fn: Callable[[ExchangeCore], _T]) -> _T:
        async def call() -> _T:
            return fn(core)

        return asyncio.run_coroutine_threadsafe(call(), loops[0]).result(10)

    async def serve() -> None:
        loops.append(asyncio.get_running_loop())
        core.start(server.clock.now())
        core.run_background(server.clock, server.settings.market_tick_ms)
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.02)
        core.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="test-server")
    thread.start()
    try:
        assert started.wait(10), "the exchange did not start"
        yield on_server
    finally:
        stop.set()
        thread.join()
        server.close()


def operator_credits(sx: Sandex) -> list[tuple[int, str, int, bool]]:
    with sx.db.connect() as conn:
        rows = conn.execute(
            select(credits).where(credits.c.reason == "operator credit").order_by(credits.c.id)
        ).all()
    return [(r.account, r.asset, r.amount, r.applied_at is not None) for r in rows]


def shocks(sx: Sandex) -> list[tuple[str, str, int, bool]]:
    with sx.db.connect() as conn:
        rows = conn.execute(select(market_shocks).order_by(market_shocks.c.id)).all()
    return [(r.symbol, r.factor, r.duration_ms, r.applied_at is not None) for r in rows]


# -- sandex balances credit ------------------------------------------------------------------


@pytest.mark.usefixtures("fast_wait")
def test_a_credit_without_a_running_server_is_queued(cli: Cli, sx: Sandex) -> None:
    out = cli.ok("balances", "credit", EMAIL, "btc", "0.5")
    assert out.startswith(f"queued 0.50000000 BTC for {EMAIL}: no running server applied it")
    assert "sandex serve" in out
    alice = sx.users.find(EMAIL)
    assert operator_credits(sx) == [(alice.id, "BTC", UNIT // 2, False)]

    core = build_core(sx)  # the next server start applies it, once
    core.start(sx.clock.now())
    core.close()
    assert core.balances(alice.id)["BTC"] == (UNIT // 2, 0)
    assert operator_credits(sx) == [(alice.id, "BTC", UNIT // 2, True)]


def test_a_credit_with_a_running_server_is_applied_at_once(
    cli: Cli, sx: Sandex, env_settings: Settings
) -> None:
    alice = sx.users.find(EMAIL)
    with running_server(env_settings):
        out = cli.ok("balances", "credit", EMAIL, "USDT", "1234.5")
    assert out.strip() == f"credited 1234.50000000 USDT to {EMAIL}"
    assert operator_credits(sx) == [(alice.id, "USDT", 123_450_000_000, True)]
    stored = {(a, asset): free for a, asset, free, _ in SqlExchangeStore(sx.db).load().balances}
    assert stored[(alice.id, "USDT")] == 1_123_450_000_000  # 10000 to start, and 1234.5


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["bob@example.com", "USDT", "1"], "error: no user with e-mail bob@example.com"),
        ([EMAIL, "US-DT", "1"], "error: asset 'US-DT' must be 2-16 letters or digits, like USDT"),
        ([EMAIL, "U", "1"], "error: asset 'U' must be 2-16 letters or digits, like USDT"),
        ([EMAIL, "USDT", "--", "-1"], "error: amount '-1' is not a number like 1000 or 0.5"),
        ([EMAIL, "USDT", "1e5"], "error: amount '1e5' is not a number like 1000 or 0.5"),
        ([EMAIL, "USDT", "NaN"], "error: amount 'NaN' is not a number like 1000 or 0.5"),
        ([EMAIL, "USDT", "Infinity"], "error: amount 'Infinity' is not a number like 1000 or 0.5"),
        ([EMAIL, "USDT", "ten"], "error: amount 'ten' is not a number like 1000 or 0.5"),
        ([EMAIL, "USDT", "0"], "error: the amount must be a positive number"),
        ([EMAIL, "USDT", "0.000000001"], "error: the amount has more than 8 decimals"),
        ([EMAIL, "USDT", "99999999999"], "error: the amount is too large"),
    ],
)
def test_a_bad_credit_is_refused_in_one_line_and_queues_nothing(
    cli: Cli, sx: Sandex, args: list[str], error: str
) -> None:
    assert cli.fails("balances", "credit", *args) == error
    assert operator_credits(sx) == []


def test_a_negative_amount_without_a_double_dash_is_a_usage_error(cli: Cli, sx: Sandex) -> None:
    code, out, err = cli("balances", "credit", EMAIL, "USDT", "-1")
    assert code == 2 and "No such option: -1" in err and "Traceback" not in err + out
    assert operator_credits(sx) == []


# -- sandex market crash -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said", "shock"),
    [
        (["--drop", "30%"], "BTCUSDT: drop 30% over 10s ordered", ("BTCUSDT", "0.7", 10_000)),
        (["--pump", "50", "--over", "2m"], "BTCUSDT: pump 50 over 120s ordered", ("BTCUSDT", "1.5", 120_000)),
        (["--drop", "12.5%", "--over", "500ms"], "BTCUSDT: drop 12.5% over 0.5s ordered", ("BTCUSDT", "0.875", 500)),
    ],
)  # fmt: skip
def test_a_crash_or_pump_is_ordered_for_the_next_market_step(
    cli: Cli, sx: Sandex, args: list[str], said: str, shock: tuple[str, str, int]
) -> None:
    out = cli.ok("market", "crash", "btcusdt", *args)
    assert out.startswith(said) and "a running server applies it" in out
    assert shocks(sx) == [(*shock, False)]


def test_a_running_server_takes_the_crash_on_its_next_step(
    cli: Cli, sx: Sandex, env_settings: Settings
) -> None:
    with running_server(env_settings):
        cli.ok("market", "crash", "ETHUSDT", "--drop", "20%")
        for _ in range(100):
            if shocks(sx)[0][3]:
                break
            time.sleep(0.05)
    assert shocks(sx) == [("ETHUSDT", "0.8", 10_000, True)]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["BTCUSDT"], "error: give one of --drop 30% or --pump 30%"),
        (["BTCUSDT", "--drop", "30%", "--pump", "5%"], "error: give one of --drop 30% or --pump 30%"),
        (["DOGEUSDT", "--drop", "30%"], "error: unknown symbol DOGEUSDT"),
        (["BTCUSDT", "--drop", "lots"], "error: 'lots' is not a percentage like 30%"),
        (["BTCUSDT", "--drop", "1e1%"], "error: '1e1%' is not a percentage like 30%"),
        (["BTCUSDT", "--drop", "-5%"], "error: '-5%' is not a percentage like 30%"),
        (["BTCUSDT", "--drop", "0%"], "error: the percentage must be positive"),
        (["BTCUSDT", "--drop", "100%"], "error: a drop must be below 100%"),
        (["BTCUSDT", "--drop", "30%", "--over", "soon"], "error: 'soon' is not a duration like 10s, 500ms or 2m"),
        (["BTCUSDT", "--drop", "30%", "--over", "-1s"], "error: '-1s' is not a duration like 10s, 500ms or 2m"),
        (["BTCUSDT", "--drop", "30%", "--over", "25h"], "error: a shock lasts at most 24h"),
    ],
)  # fmt: skip
def test_a_bad_crash_is_refused_in_one_line_and_orders_nothing(
    cli: Cli, sx: Sandex, args: list[str], error: str
) -> None:
    assert cli.fails("market", "crash", *args) == error
    assert shocks(sx) == []


# -- sandex market liquidity ---------------------------------------------------------------------


def test_liquidity_is_ordered_for_the_next_market_step(cli: Cli, sx: Sandex) -> None:
    out = cli.ok("market", "liquidity", "btcusdt", "--factor", "0.1", "--for", "10m")
    assert out.startswith("BTCUSDT: liquidity x0.1 for 600s ordered")
    assert cli.ok("market", "liquidity", "ETHUSDT", "--factor", "1").startswith(
        "ETHUSDT: liquidity x1 until changed ordered"
    )
    assert shocks(sx) == [("BTCUSDT", "0.1", 600_000, False), ("ETHUSDT", "1", 0, False)]
    pending = SqlExchangeStore(sx.db).pending_shocks(sx.clock.now())
    assert [(p.symbol, p.kind) for p in pending] == [
        ("BTCUSDT", ShockKind.LIQUIDITY),
        ("ETHUSDT", ShockKind.LIQUIDITY),
    ]


def _maker_depth(core: ExchangeCore) -> tuple[int, int, int]:
    """BTCUSDT: bid levels, ask levels, and the makers' resting quantity (a side's)."""
    engine = core.venue.engine
    bids, asks = engine.depth("BTCUSDT", 1000)
    quantity = sum(o.remaining for o in engine.resting("BTCUSDT", MAKER) if o.side == "BUY")
    return len(bids), len(asks), quantity


def test_a_running_server_thins_the_book_and_it_recovers(
    cli: Cli, sx: Sandex, env_settings: Settings
) -> None:
    settings = dataclasses.replace(env_settings, simulate=True)
    with running_server(settings) as on_server:
        bids, asks, normal = on_server(_maker_depth)
        assert bids >= 50 and asks >= 50
        cli.ok("market", "liquidity", "BTCUSDT", "--factor", "0.1", "--for", "2s")
        thin = normal
        for _ in range(100):
            bids, asks, thin = on_server(_maker_depth)
            if thin < normal * Decimal("0.2"):
                break
            time.sleep(0.05)
        assert normal * Decimal("0.05") < thin < normal * Decimal("0.2")
        assert bids >= 50 and asks >= 50  # thinner, not shorter
        for _ in range(100):  # after 2 s, the usual book again
            time.sleep(0.05)
            bids, asks, again = on_server(_maker_depth)
            if again > normal * Decimal("0.8"):
                break
        assert normal * Decimal("0.8") < again < normal * Decimal("1.25")
        assert bids >= 50 and asks >= 50
    assert shocks(sx)[0][3]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["DOGEUSDT", "--factor", "0.1"], "error: unknown symbol DOGEUSDT"),
        (["BTCUSDT", "--factor", "thin"], "error: 'thin' is not a factor like 0.1"),
        (["BTCUSDT", "--factor", "1e-1"], "error: '1e-1' is not a factor like 0.1"),
        (["BTCUSDT", "--factor", "0"], "error: the factor must be from 0.01 to 100"),
        (["BTCUSDT", "--factor", "101"], "error: the factor must be from 0.01 to 100"),
        (["BTCUSDT", "--factor", "0.1", "--for", "soon"], "error: 'soon' is not a duration like 10s, 500ms or 2m"),
        (["BTCUSDT", "--factor", "0.1", "--for", "0s"], "error: --for must be a positive duration like 10m"),
        (["BTCUSDT", "--factor", "0.1", "--for", "25h"], "error: a shock lasts at most 24h"),
    ],
)  # fmt: skip
def test_a_bad_liquidity_is_refused_in_one_line_and_orders_nothing(
    cli: Cli, sx: Sandex, args: list[str], error: str
) -> None:
    assert cli.fails("market", "liquidity", *args) == error
    assert shocks(sx) == []

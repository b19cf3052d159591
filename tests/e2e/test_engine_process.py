"""The engine in a process of its own: ``sandex serve --workers 2`` (which starts one),
and ``sandex serve --engine remote`` gateways beside a ``sandex engine``, traded
through by unmodified ccxt and freqtrade; the engine and the broker dying under them.

Every process runs on 127.0.0.1 with a Redis namespace of the test's own (and, on
PostgreSQL, a schema of its own); a log holding a traceback fails the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import httpx
import pytest
import redis

from e2e.clients import account_balances, close_clients, new_key, spot_ccxt_client
from e2e.conftest import (
    HOST,
    EngineRun,
    Launch,
    Server,
    assert_no_traceback,
    engine_command,
    free_port,
    launch_engine,
    serve_command,
    server_env,
    stop_group,
)
from e2e.engine_cluster import (
    ENGINE_DOWN,
    TRADE,
    broker_env,
    order_params,
    signed,
    trader,
    wait_trading,
)
from e2e.test_freqtrade import (
    PAIR,
    RUN_LIMIT_S,
    FreqtradeRun,
    _closed_trades,
    _config,
    _rows,
    _why,
    freqtrade_bin,  # noqa: F401 - the fixture
)

BTC = "BTC/USDT"
ZERO = Decimal(0)
FEE_RATE = Decimal("0.001")
DEPTH_POLL_S = 1.0


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def _balances(ex: ccxt.binance) -> dict[str, tuple[Decimal, Decimal]]:
    return account_balances(ex)


def _stop_and_check(processes: list[Server | EngineRun]) -> None:
    """Stop ``processes`` (clients' keep-alive connections closed first, so that no
    graceful shutdown waits on them), then fail if a log holds a traceback."""
    close_clients()
    for process in processes:
        process.stop()
    for process in processes:
        assert_no_traceback(process.log)


@pytest.fixture
def logs() -> Iterator[list[Server | EngineRun]]:
    """Processes whose logs must hold no traceback, stopped and read after the test
    (a test whose database goes away before its fixtures' teardown stops them itself)."""
    processes: list[Server | EngineRun] = []
    yield processes
    _stop_and_check(processes)


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[list[EngineRun]]:
    """``sandex engine`` processes stopped after the test."""
    runs: list[EngineRun] = []
    yield runs
    for run in runs:
        run.stop()


def _far_bid(ex: ccxt.binance, timeout: float = 10.0) -> float:
    """A price 3% under the best bid: the order rests. (A gateway started a moment ago
    may not have its read model yet: its book is empty until the first snapshot.)"""
    deadline = time.monotonic() + timeout
    while not (bids := ex.fetch_order_book(BTC, 5)["bids"]):
        assert time.monotonic() < deadline, f"no bids at {ex.urls['api']['public']}"
        time.sleep(0.1)
    return float(ex.price_to_precision(BTC, bids[0][0] * 0.97))


def _trade_round(placer: ccxt.binance, other: ccxt.binance) -> None:
    """Through ``placer``: a resting LIMIT buy, fetched and cancelled through ``other``
    at once, and a MARKET buy; both clients see the balances it leaves."""
    before = _balances(placer)
    usdt, btc = before["USDT"][0], before.get("BTC", (ZERO, ZERO))[0]
    assert before["USDT"][1] == ZERO and _balances(other) == before
    price = _far_bid(placer)
    amount = Decimal("0.01234")
    order = placer.create_order(BTC, "limit", "buy", float(amount), price)
    assert order["status"] == "open", order
    held = _d(price) * amount
    seen = other.fetch_order(order["id"], BTC)
    assert seen["status"] == "open" and _d(seen["price"]) == _d(price), seen
    assert _d(seen["amount"]) == amount, seen
    for ex in (placer, other):
        assert _balances(ex)["USDT"] == (usdt - held, held)
    assert order["id"] in {o["id"] for o in other.fetch_open_orders(BTC)}
    cancelled = other.cancel_order(order["id"], BTC)
    assert cancelled["status"] == "canceled", cancelled
    assert placer.fetch_order(order["id"], BTC)["status"] == "canceled"
    for ex in (placer, other):
        assert _balances(ex) == before

    bought = placer.create_order(BTC, "market", "buy", 0.001)
    assert bought["status"] == "closed", bought
    fills = bought["info"]["fills"]
    qty = sum((_d(f["qty"]) for f in fills), ZERO)
    quote = sum((_d(f["qty"]) * _d(f["price"]) for f in fills), ZERO)
    fee = sum((_d(f["commission"]) for f in fills), ZERO)
    assert qty == Decimal("0.001") and {f["commissionAsset"] for f in fills} == {"BTC"}
    assert fee == qty * FEE_RATE
    want = {"USDT": (usdt - quote, ZERO), "BTC": (btc + qty - fee, ZERO)}
    for ex in (placer, other):
        assert _balances(ex) == want
    assert other.fetch_order(bought["id"], BTC)["filled"] == pytest.approx(0.001)


# -- 1: serve --workers 2 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_ccxt_trades_through_two_workers(
    start_server: Launch,
    redis_namespace: str,
    database: str,
    request: pytest.FixtureRequest,
    logs: list[Server | EngineRun],
) -> None:
    schema = request.getfixturevalue("pg_schema") if database == "postgresql" else None
    server = start_server(env=broker_env(redis_namespace, schema), workers=2)
    logs.append(server)
    assert "gateways of the engine process" in server.log.read_text()
    with server.open() as sx:
        first, creds = trader(sx, server.base, f"e2e-workers-{database}@example.com")
    second = spot_ccxt_client(server.base, creds)  # another connection: maybe another worker
    second.load_markets()
    _trade_round(first, second)
    assert server.proc.poll() is None, server.log_tail()
    _stop_and_check(logs)  # while its schema is there


# -- 2: two gateways and one engine ------------------------------------------------------------


@pytest.mark.postgres
def test_an_order_placed_through_one_gateway_is_cancelled_through_another(
    start_server: Launch,
    engines: list[EngineRun],
    redis_namespace: str,
    pg_schema: str,
    tmp_path: Path,
    logs: list[Server | EngineRun],
) -> None:
    env = broker_env(redis_namespace, pg_schema)
    engines.append(launch_engine(tmp_path / "engine", tmp_path / "engine.log", env))
    a = start_server(env=env, data_dir=tmp_path / "host-a", engine="remote")
    b = start_server(env=env, data_dir=tmp_path / "host-b", engine="remote")
    logs += [*engines, a, b]
    with a.open() as sx:
        through_a, creds = trader(sx, a.base, "e2e-gateways@example.com")
    through_b = spot_ccxt_client(b.base, creds)
    through_b.load_markets()

    # B's public book shows what was placed through A, within a short poll
    price = _far_bid(through_a)
    amount = 0.04321
    order = through_a.create_order(BTC, "limit", "buy", amount, price)
    placed = time.monotonic()
    while True:
        asked = time.monotonic() - placed  # when the request that finds it was sent
        book = through_b.fetch_order_book(BTC, 5000)
        bids = {p: q for p, q, *_ in book["bids"]}
        if bids.get(price, 0.0) >= amount:
            break
        assert asked < DEPTH_POLL_S, f"{price} not in B's book: {bids}"
        time.sleep(0.05)
    print(f"\nB's depth showed A's order to a request sent {asked * 1000:.0f} ms after")
    assert through_b.cancel_order(order["id"], BTC)["status"] == "canceled"
    _trade_round(through_a, through_b)
    _trade_round(through_b, through_a)


# -- 4: serve --workers 2 restarts its engine ----------------------------------------------------


def test_serve_restarts_its_engine_after_kill_9(
    start_server: Launch, redis_namespace: str, logs: list[Server | EngineRun]
) -> None:
    env = broker_env(redis_namespace, SANDEX_ENGINE_TIMEOUT_MS="1000")
    server = start_server(env=env, workers=2)
    logs.append(server)
    client = redis.Redis.from_url(env["SANDEX_REDIS_URL"])
    alive = f"{redis_namespace}:engine:alive"
    try:
        pid = int(client.get(alive) or 0)
        assert f"gateways of the engine process {pid}" in server.log.read_text()
        with server.open() as sx:
            ex, creds = trader(sx, server.base, "e2e-engine-child@example.com")
        assert ex.create_order(BTC, "market", "buy", 0.001)["status"] == "closed"

        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        while True:
            now = client.get(alive)
            if now is not None and int(now) != pid:
                break
            assert time.monotonic() - killed < 20, server.log_tail()
            time.sleep(0.05)
        back = time.monotonic()
    finally:
        client.close()
    assert f"the engine process {pid} exited (code -9); restarting it" in server.log.read_text()
    took = wait_trading(server.base, creds, since=back, limit=5.0)
    print(f"\nengine back {back - killed:.1f} s after kill -9; trading {took:.2f} s after that")
    assert took <= 2.0
    assert ex.create_order(BTC, "market", "buy", 0.001)["status"] == "closed"
    assert server.proc.poll() is None


# -- 5: the broker down -------------------------------------------------------------------------


def test_a_gateway_without_its_broker_refuses_to_start(tmp_path: Path) -> None:
    env = server_env(
        SANDEX_REDIS_URL=f"redis://{HOST}:{free_port()}/0", SANDEX_REDIS_NAMESPACE="nowhere"
    )
    for command in (
        serve_command(tmp_path / "data", free_port(), engine="remote"),
        engine_command(tmp_path / "data"),
    ):
        result = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        said = result.stdout + result.stderr
        assert result.returncode != 0, said
        assert "Traceback" not in said, said
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and "SANDEX_REDIS_URL" in errors[0], said
        assert "serving" not in result.stdout, said


class PrivateRedis:
    """A ``redis-server`` of this test's own that keeps nothing on disk."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", HOST, "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while True:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
            try:
                client.ping()
                return
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
            finally:
                client.close()

    def kill(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, signal.SIGKILL, 10)
            self.proc = None


def test_trading_while_the_broker_is_down_gets_1007_and_resumes_after(
    start_server: Launch, engines: list[EngineRun], tmp_path: Path, logs: list[Server | EngineRun]
) -> None:
    broker = PrivateRedis(tmp_path)
    broker.start()
    try:
        env = server_env(
            SANDEX_REDIS_URL=broker.url,
            SANDEX_REDIS_NAMESPACE="private",
            SANDEX_ENGINE_TIMEOUT_MS="1000",
        )
        data = tmp_path / "data"
        engines.append(launch_engine(data, tmp_path / "engine.log", env))
        gateway = start_server(env=env, data_dir=data, engine="remote")
        logs += [*engines, gateway]
        with gateway.open() as sx:
            ex, creds = trader(sx, gateway.base, "e2e-broker@example.com")
        assert ex.create_order(BTC, "market", "buy", 0.001)["status"] == "closed"

        broker.kill()
        with httpx.Client(timeout=30.0, trust_env=False) as client:
            for n in range(3):
                started = time.monotonic()
                response = signed(
                    client,
                    "POST",
                    gateway.base,
                    "/api/v3/order",
                    creds,
                    order_params(f"broker-down-{n}"),
                )
                took = time.monotonic() - started
                assert response.status_code == 503, response.text
                assert response.json() == ENGINE_DOWN
                assert took < 3.0, f"-1007 after {took:.1f} s"
        broker.start()
        back = time.monotonic()
        first = wait_trading(gateway.base, creds, since=back, limit=15.0)
        # every pooled connection of the engine and the gateway was to the old server:
        # trading is steady once three probes in a row succeed
        steady = max(wait_trading(gateway.base, creds, since=back, limit=15.0) for _ in range(3))
        print(f"\nbroker restarted: trading again {first:.2f} s later, steady {steady:.2f} s")
        assert ex.create_order(BTC, "market", "buy", 0.001)["status"] == "closed"
    finally:
        broker.kill()


# -- 7: freqtrade against --workers 2 ---------------------------------------------------------


def test_freqtrade_trades_live_against_two_workers(
    freqtrade_bin: Path,  # noqa: F811 - the fixture
    start_server: Launch,
    redis_namespace: str,
    tmp_path: Path,
    logs: list[Server | EngineRun],
) -> None:
    server = start_server(env=broker_env(redis_namespace), workers=2)
    logs.append(server)
    with server.open() as sx:
        creds = new_key(
            sx, "e2e-freqtrade-workers@example.com", label="freqtrade", permissions=TRADE
        )
    db = tmp_path / "trades.sqlite"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_config(server.base, creds, db), indent=2))
    config.chmod(0o600)
    run = FreqtradeRun(tmp_path, config, creds.signing_secret)
    started = time.monotonic()
    try:
        while not _closed_trades(db):
            if run.proc.poll() is not None:
                pytest.fail(f"freqtrade exited with {run.proc.returncode}" + _why(run, server))
            if time.monotonic() - started > RUN_LIMIT_S:
                pytest.fail(f"freqtrade closed no trade in {RUN_LIMIT_S:.0f} s" + _why(run, server))
            time.sleep(1.0)
        took = time.monotonic() - started
    finally:
        run.stop()
    print(f"\nfreqtrade opened and closed a trade through two workers in {took:.1f} s")
    trade = _closed_trades(db)[0]
    assert trade["pair"] == PAIR and trade["exit_reason"] == "quick_exit", dict(trade)
    orders = _rows(db, "SELECT * FROM orders WHERE ft_trade_id = ?", trade["id"])
    assert {o["ft_order_side"] for o in orders} == {"buy", "sell"}
    ex = spot_ccxt_client(server.base, creds)
    for row in orders:
        order = ex.fetch_order(row["order_id"], PAIR)
        assert order["status"] == "closed" and order["filled"] == pytest.approx(row["filled"])
    assert server.proc.poll() is None, _why(run, server)

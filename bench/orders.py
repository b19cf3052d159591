"""Signed order placement over HTTP, one worker, durable (DESIGN §6: >= 4k orders/s at
32 connections).

Prints orders/s with p50/p99 latency at 1 and 32 connections for ``POST /api/v3/order``
(HMAC-signed, form body, as ccxt sends it), for both durability modes:

- ``group``: every order is acknowledged only after the batch holding it is committed;
  orders waiting at one moment share one transaction (the default);
- ``transaction``: each order writes and commits its own transaction before answering.

    .venv/bin/python bench/orders.py [--duration 5] [--modes group,transaction]
                                     [--database-url postgresql://...]

One ``sandex serve`` process (one uvicorn worker) on a fresh data directory, with the
simulated market running; the load comes from wrk on the same two cores. The orders
are LIMIT IOC on BTCUSDT, alternately buying and selling, half of them priced to
cross the market makers' quotes (they trade and settle) and half to miss (they
expire): every one changes the ledger or the order table and so must be written.
Any non-2xx answer aborts the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _servers
from _servers import (
    HOST,
    NO_LIMIT,
    BenchError,
    cpu_seconds,
    engine_process,
    exit_on_signals,
    free_port,
    redis_pid,
)

PATH = "/api/v3/order"
CONCURRENCY = ((1, 1), (32, 2))

WRK_LUA = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  used = 0
  exhausted = 0
  pool = {}
  local f = assert(io.open(args[1] .. "." .. id, "r"))
  local key = f:read("*l")
  local headers = {}
  headers["X-MBX-APIKEY"] = key
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  for line in f:lines() do
    pool[#pool + 1] = wrk.format("POST", "/api/v3/order", headers, line)
  end
  f:close()
end
function request()
  used = used + 1
  local r = pool[used]
  if r == nil then
    exhausted = 1
    wrk.thread:stop()
    return pool[1]
  end
  pool[used] = nil
  return r
end
function done(summary, latency, requests)
  local ex = 0
  for _, t in ipairs(threads) do ex = ex + (t:get("exhausted") or 0) end
  local e = summary.errors
  io.write(string.format(
    "SANDEX_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status=%d"
      .. " connect=%d read=%d write=%d timeout=%d exhausted=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout, ex))
end
"""


def server_env(mode: str, database_url: str | None) -> dict[str, str]:
    env = _servers.server_env(
        SANDEX_ORDERS_10S=NO_LIMIT,
        SANDEX_ORDERS_1D=NO_LIMIT,
        SANDEX_DURABILITY=mode,
        SANDEX_STARTING_BALANCE="1000000000 USDT, 10000 BTC",
    )
    if database_url:
        env["SANDEX_DATABASE_URL"] = database_url
    return env


def create_key(data_dir: Path, env: dict[str, str]) -> tuple[str, str, int, int]:
    """A user (with a large starting balance) and a SPOT_TRADE HMAC key for 127.0.0.1:
    (API key, secret, the user's account, the key's id)."""
    code = (
        "import sys\n"
        "from sandex.bootstrap import open_sandex\n"
        "from sandex.config import Settings\n"
        "from sandex.keys import IpAllowlist, KeySettings, Permission\n"
        "from sandex.service import Actor\n"
        "op = Actor.operator()\n"
        f"with open_sandex(Settings.from_env(data_dir={str(data_dir)!r})) as sx:\n"
        "    now = sx.clock.now()\n"
        "    u = sx.users.create('bench@example.com', 'bench password 123', now=now, actor=op)\n"
        "    k = sx.keys.create(u.id, KeySettings('bench', Permission.READ | Permission.SPOT_TRADE,"
        " allowlist=IpAllowlist.parse(['127.0.0.1'])), now=now, actor=op)\n"
        "    sys.stdout.write(f'{k.api_key} {k.secret} {u.id} {k.key.id}')\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"could not create the bench key:\n{done.stderr[-2000:]}")
    api_key, secret, account, key_id = done.stdout.split()
    return api_key, secret, int(account), int(key_id)


@contextlib.contextmanager
def server(
    data_dir: Path, port: int, env: dict[str, str], log: Path, workers: int = 1
) -> Iterator[int]:
    """``sandex serve``, once the market makers have posted their first quotes (and the
    other workers have started)."""
    with _servers.serve(data_dir, port, env, log, workers, 1.5 if workers == 1 else 3.0) as pid:
        yield pid


def best_prices(port: int) -> tuple[float, float]:
    url = f"http://{HOST}:{port}/api/v3/ticker/bookTicker?symbol=BTCUSDT"
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read().decode()
    bid = float(re.search(r'"bidPrice":"([0-9.]+)"', body).group(1))  # type: ignore[union-attr]
    ask = float(re.search(r'"askPrice":"([0-9.]+)"', body).group(1))  # type: ignore[union-attr]
    return bid, ask


def bodies(secret: str, count: int, bid: float, ask: float, start: int) -> list[str]:
    """Signed, distinct, fresh order bodies: LIMIT IOC BTCUSDT, half crossing, half not."""
    from sandex.keys.signing import sign_hmac

    rng = random.Random(start)
    key = secret.encode()
    timestamp = int(time.time() * 1000)
    out = []
    for n in range(start, start + count):
        buy = n % 2 == 0
        cross = rng.random() < 0.5
        if buy:
            price = ask * 1.01 if cross else bid * 0.99
        else:
            price = bid * 0.99 if cross else ask * 1.01
        qty = f"0.000{rng.randint(10, 99)}"
        payload = (
            f"symbol=BTCUSDT&side={'BUY' if buy else 'SELL'}&type=LIMIT&timeInForce=IOC"
            f"&quantity={qty}&price={price:.2f}&newOrderRespType=RESULT"
            f"&newClientOrderId=bench-{n}&timestamp={timestamp}&recvWindow=60000"
        )
        out.append(f"{payload}&signature={sign_hmac(key, payload.encode())}")
    return out


def _answer(port: int, api_key: str, body: str) -> str:
    request = urllib.request.Request(
        f"http://{HOST}:{port}{PATH}",
        data=body.encode(),
        headers={"X-MBX-APIKEY": api_key, "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310
            return f"{r.status} {r.read()[:300]!r}"
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {exc.read()[:300]!r}"
    except OSError as exc:
        return repr(exc)


def run_wrk(
    wrk: str, workdir: Path, port: int, connections: int, threads: int, duration: float,
    api_key: str, pool: list[list[str]],
) -> dict[str, int]:  # fmt: skip
    script = workdir / "orders.lua"
    script.write_text(WRK_LUA)
    prefix = workdir / "pool"
    for t in range(threads):
        Path(f"{prefix}.{t}").write_text("\n".join([api_key, *pool[t]]) + "\n")
    command = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
        "--timeout", "10s", "-s", str(script), f"http://{HOST}:{port}{PATH}", "--", str(prefix),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    match = re.search(r"^SANDEX_RESULT (.*)$", done.stdout, re.M)
    if done.returncode != 0 or match is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
    if r["status"] or errors:
        raise BenchError(
            f"{r['status']} non-2xx answers, {errors} socket errors: {r}; one more answered"
            f" {_answer(port, api_key, pool[0][-1])}"
        )
    return r


def bench_mode(
    wrk: str,
    mode: str,
    duration: float,
    database_url: str | None,
    workers: int = 1,
    redis_url: str | None = None,
) -> list[tuple[int, float, float, float, bool, float]]:
    """``sandex serve`` (``--workers`` of them: then with an engine process behind Redis)
    on a fresh data directory: a row per entry of :data:`CONCURRENCY`."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="sandex-orders-") as tmp:
        work = Path(tmp)
        data = work / "data"
        schema = None
        env = server_env(mode, database_url)
        namespace = None
        if workers > 1:
            assert redis_url is not None
            namespace = f"sandex-bench-orders-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            env.update(SANDEX_REDIS_URL=redis_url, SANDEX_REDIS_NAMESPACE=namespace)
        if database_url:
            schema = f"bench_orders_{os.getpid()}_{mode}_{workers}"
            _pg(database_url, f"CREATE SCHEMA {schema}")
            env["SANDEX_DATABASE_SCHEMA"] = schema
        try:
            api_key, secret, _, _ = create_key(data, env)
            port = free_port()
            rpid = redis_pid() if workers > 1 else None
            with server(data, port, env, work / "server.log", workers) as pid:
                bid, ask = best_prices(port)
                made = 0
                for connections, threads in CONCURRENCY:
                    # enough distinct requests for twice the target rate
                    per_thread = int(duration * (9000 if connections > 1 else 4000)) // threads
                    pool = []
                    for _ in range(threads):
                        pool.append(bodies(secret, per_thread, bid, ask, made))
                        made += per_thread
                    cpu = cpu_seconds(pid) + (cpu_seconds(rpid) if rpid else 0.0)
                    r = run_wrk(wrk, work, port, connections, threads, duration, api_key, pool)
                    cpu = cpu_seconds(pid) + (cpu_seconds(rpid) if rpid else 0.0) - cpu
                    seconds = r["duration_us"] / 1e6
                    rows.append(
                        (
                            connections,
                            r["requests"] / seconds,
                            r["p50_us"] / 1000,
                            r["p99_us"] / 1000,
                            r["exhausted"] > 0,
                            1e6 * cpu / max(1, r["requests"]),
                        )
                    )
        finally:
            if schema is not None and database_url is not None:
                _pg(database_url, f"DROP SCHEMA {schema} CASCADE")
            if namespace is not None and redis_url is not None:
                _forget_namespace(redis_url, namespace)
    return rows


def _forget_namespace(redis_url: str, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        names = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if names:
            client.delete(*names)
    finally:
        client.close()


# -- the engine alone: broker, engine and group commit, no HTTP ---------------------------


@dataclass
class EngineRun:
    inflight: int
    commands: int
    seconds: float
    p50_ms: float
    p99_ms: float
    rejected: int
    engine_cpu_s: float
    redis_cpu_s: float

    @property
    def rate(self) -> float:
        return self.commands / self.seconds


async def _drive_engine(
    redis_url: str, namespace: str, payloads: list[bytes], inflight: int
) -> tuple[float, list[float], list[bytes]]:
    """Send ``payloads`` (encoded ``Place`` commands) as a gateway's RedisEngineLink does
    (what waits when the previous entry has gone out goes in one entry), keeping at most
    ``inflight`` unanswered: (seconds, latencies, answers)."""
    import redis.asyncio as aioredis

    from sandex.broker.redis_streams import StreamNames, joined, split

    names = StreamNames(namespace)
    gateway = uuid.uuid4().hex
    replies_stream = names.replies(gateway)
    client = aioredis.Redis.from_url(redis_url)
    reader = aioredis.Redis.from_url(redis_url)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    replies: list[bytes] = []
    room = asyncio.Semaphore(inflight)
    total = len(payloads)

    async def read() -> None:
        last = "0-0"
        while len(replies) < total:
            got = await reader.xread({replies_stream: last}, count=4096, block=5000)
            if not got:
                raise BenchError("no answer from the engine for 5 s")
            now = time.perf_counter()
            for entry_id, fields in got[0][1]:
                last = entry_id
                for command_id, answer in split(fields, b"r"):
                    latencies.append(now - sent_at.pop(command_id))
                    replies.append(answer)
                    room.release()

    async def send() -> None:
        n = 0
        while n < total:
            await room.acquire()
            batch = 1
            while n + batch < total and not room.locked():
                await room.acquire()
                batch += 1
            now = time.perf_counter()
            ids = [uuid.uuid4().hex.encode() for _ in range(batch)]
            for command_id in ids:
                sent_at[command_id.decode()] = now
            fields: Any = joined(ids, payloads[n : n + batch], "c")
            fields["g"] = gateway
            await client.xadd(names.commands, fields)
            n += batch

    start = time.perf_counter()
    reading = asyncio.create_task(read())
    try:
        await send()
        await reading
    finally:
        reading.cancel()
        await client.aclose()
        await reader.aclose()
    return time.perf_counter() - start, latencies, replies


async def _engine_books(redis_url: str, namespace: str) -> tuple[int, int]:
    """BTCUSDT's best bid and ask, in price units, from the engine's snapshot."""
    from sandex.broker.redis_streams import RedisEngineLink, StreamNames, connect_gateway

    link = RedisEngineLink(connect_gateway(redis_url), StreamNames(namespace), timeout_s=10)
    link.start()
    try:
        snapshot = await link.snapshot()
    finally:
        link.stop()  # quiet, and closes its connections
    book = next(b for b in snapshot.books if b.symbol == "BTCUSDT")
    return book.bids[0].price, book.asks[0].price


def place_commands(
    account: int, key_id: int, count: int, bid: int, ask: int, start: int
) -> list[bytes]:
    """``count`` encoded ``Place`` commands like :func:`bodies`: LIMIT IOC BTCUSDT,
    alternately buying and selling, half crossing the makers' quotes."""
    from sandex.broker.codec import encode
    from sandex.exchange import OrderType, PlaceOrder, Side, TimeInForce
    from sandex.keys import RiskPolicy
    from sandex.service.engine_commands import Place

    rng = random.Random(count)
    policy = RiskPolicy()
    out = []
    for n in range(start, start + count):
        buy = n % 2 == 0
        cross = rng.random() < 0.5
        if buy:
            price = ask + ask // 100 if cross else bid - bid // 100
        else:
            price = bid - bid // 100 if cross else ask + ask // 100
        order = PlaceOrder(
            "BTCUSDT", account, Side.BUY if buy else Side.SELL, OrderType.LIMIT,
            quantity=rng.randint(10, 99), price=price, time_in_force=TimeInForce.IOC,
            client_order_id=f"engine-{n}",
        )  # fmt: skip
        out.append(encode(Place(order, key_id, policy)))
    return out


def bench_engine(
    commands: int, inflights: list[int], database_url: str | None, redis_url: str
) -> list[EngineRun]:
    """``sandex engine`` alone on a fresh data directory and a private Redis namespace:
    ``commands`` Place commands pushed onto its stream at each of ``inflights``."""
    from sandex.broker.codec import decode
    from sandex.exchange import Rejected

    runs = []
    rpid = redis_pid()
    namespace = f"sandex-bench-engine-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="sandex-engine-") as tmp:
        work = Path(tmp)
        data = work / "data"
        env = server_env("group", database_url)
        env.update(SANDEX_REDIS_URL=redis_url, SANDEX_REDIS_NAMESPACE=namespace)
        schema = None
        if database_url:
            schema = f"bench_engine_{os.getpid()}"
            _pg(database_url, f"CREATE SCHEMA {schema}")
            env["SANDEX_DATABASE_SCHEMA"] = schema
        try:
            _, _, account, key_id = create_key(data, env)
            with engine_process(data, env, work / "engine.log") as pid:
                bid, ask = asyncio.run(_engine_books(redis_url, namespace))
                made = 0
                for inflight in inflights:
                    count = min(commands, 2000) if inflight == 1 else commands
                    payloads = place_commands(account, key_id, count, bid, ask, made)
                    made += count
                    cpu, rcpu = cpu_seconds(pid), cpu_seconds(rpid) if rpid else math.nan
                    seconds, latencies, replies = asyncio.run(
                        _drive_engine(redis_url, namespace, payloads, inflight)
                    )
                    cpu = cpu_seconds(pid) - cpu
                    rcpu = (cpu_seconds(rpid) if rpid else math.nan) - rcpu
                    latencies.sort()
                    rejected = 0
                    for data_ in replies:
                        events = decode(data_).events
                        if events and type(events[0]) is Rejected:
                            if not rejected:
                                print(f"rejected: {events[0]}", file=sys.stderr)
                            rejected += 1
                    runs.append(
                        EngineRun(
                            inflight, count, seconds,
                            1000 * latencies[len(latencies) // 2],
                            1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
                            rejected, cpu, rcpu,
                        )
                    )  # fmt: skip
        finally:
            if schema is not None and database_url is not None:
                _pg(database_url, f"DROP SCHEMA {schema} CASCADE")
            _forget_namespace(redis_url, namespace)
    return runs


def _pg(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as c:
        c.execute(sql)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--modes", default="group,transaction")
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument(
        "--part",
        choices=("all", "modes", "workers", "engine"),
        default="all",
        help="modes: one worker in each durability mode; workers: embedded vs --workers 2;"
        " engine: sandex engine alone, no HTTP",
    )
    parser.add_argument("--redis-url", default=None, help="default: SANDEX_REDIS_URL or local")
    parser.add_argument("--commands", type=int, default=60_000, help="engine-only commands")
    parser.add_argument("--inflight", default="1,256,2048", help="engine-only: unanswered")
    args = parser.parse_args()
    exit_on_signals()  # SIGTERM unwinds like Ctrl-C: children stopped, temp dirs removed
    redis_url = args.redis_url or os.environ.get("SANDEX_REDIS_URL") or "redis://127.0.0.1:6379/0"
    wrk = shutil.which("wrk")
    if wrk is None and args.part != "engine":
        print("bench/orders.py needs wrk (apt install wrk)", file=sys.stderr)
        return 2
    where = "PostgreSQL" if args.database_url else "SQLite (WAL)"
    try:
        if args.part in ("all", "modes"):
            assert wrk is not None
            print(f"signed POST {PATH} (HMAC, LIMIT IOC, half crossing), one worker, {where}")
            print(f"{'durability':<12} {'conns':>5} {'orders/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
            for mode in args.modes.split(","):
                rows = bench_mode(wrk, mode.strip(), args.duration, args.database_url)
                for connections, rate, p50, p99, exhausted, _ in rows:
                    note = "  (ran out of signed requests)" if exhausted else ""
                    print(
                        f"{mode:<12} {connections:>5} {rate:>10,.0f} {p50:>8.2f} {p99:>8.2f}{note}"
                    )
            print("target: >= 4,000 orders/s at 32 connections, durable (DESIGN §6)")
        if args.part in ("all", "workers"):
            assert wrk is not None
            print()
            print_workers(wrk, args.duration, args.database_url, redis_url, where)
        if args.part in ("all", "engine"):
            print()
            print_engine(args.commands, args.inflight, args.database_url, redis_url, where)
    except BenchError as exc:
        print(f"bench/orders.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/orders.py: interrupted", file=sys.stderr)
        return 130
    return 0


def print_workers(
    wrk: str, duration: float, database_url: str | None, redis_url: str, where: str
) -> None:
    """Embedded (one process) against --workers 2 (engine process + Redis), group commit."""
    print(
        f"signed POST {PATH}, group commit, {where}: embedded (sandex serve, one process) vs"
        " --workers 2 (two gateways, an engine process, Redis Streams)"
    )
    print(
        f"{'setup':<12} {'conns':>5} {'orders/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'x embedded':>10} {'server CPU us/order':>19}"
    )
    embedded = bench_mode(wrk, "group", duration, database_url)
    two = bench_mode(wrk, "group", duration, database_url, workers=2, redis_url=redis_url)
    for label, rows in (("embedded", embedded), ("--workers 2", two)):
        for (connections, rate, p50, p99, exhausted, cpu), base in zip(rows, embedded, strict=True):
            note = "  (ran out of signed requests)" if exhausted else ""
            print(
                f"{label:<12} {connections:>5} {rate:>10,.0f} {p50:>8.2f} {p99:>8.2f}"
                f" {rate / base[1]:>10.2f} {cpu:>19.0f}{note}"
            )
    print(
        "server CPU: the serve process and its children (workers, engine), and Redis's"
        " (shared with whatever else uses it) for --workers 2"
    )
    print("target: --workers 2 >= 0.8x embedded at 32 connections (2 cores, wrk on them too)")


def print_engine(
    commands: int, inflight: str, database_url: str | None, redis_url: str, where: str
) -> None:
    """The engine alone: Place commands through Redis Streams, the engine and group commit."""
    inflights = [int(n) for n in inflight.split(",")]
    runs = bench_engine(commands, inflights, database_url, redis_url)
    print(
        f"engine only ({where}): Place commands (LIMIT IOC BTCUSDT, half crossing) pushed on"
        " the commands stream with pipelined XADD, answered on a replies stream after the"
        " group commit; no HTTP"
    )
    print(
        f"{'in flight':>9} {'commands':>9} {'commands/s':>11} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'engine CPU us/cmd':>18} {'Redis CPU us/cmd':>17} {'rejected':>8}"
    )
    for r in runs:
        print(
            f"{r.inflight:>9} {r.commands:>9,} {r.rate:>11,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}"
            f" {1e6 * r.engine_cpu_s / r.commands:>18.0f}"
            f" {1e6 * r.redis_cpu_s / r.commands:>17.0f} {r.rejected:>8}"
        )
    print("target: >= 20,000 durable orders/s engine-only (the ceiling for gateway hosts)")


if __name__ == "__main__":
    sys.exit(main())

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
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
PATH = "/api/v3/order"
NO_LIMIT = str(10**9)
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


class BenchError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_env(mode: str, database_url: str | None) -> dict[str, str]:
    env = dict(
        os.environ,
        SANDEX_IP_WEIGHT_1M=NO_LIMIT,
        SANDEX_KEY_WEIGHT_1M=NO_LIMIT,
        SANDEX_ORDERS_10S=NO_LIMIT,
        SANDEX_ORDERS_1D=NO_LIMIT,
        SANDEX_DURABILITY=mode,
        SANDEX_STARTING_BALANCE="1000000000 USDT, 10000 BTC",
    )
    env.pop("SANDEX_DEBUG", None)
    if database_url:
        env["SANDEX_DATABASE_URL"] = database_url
    return env


def create_key(data_dir: Path, env: dict[str, str]) -> tuple[str, str]:
    """A user (with a large starting balance) and a SPOT_TRADE HMAC key for 127.0.0.1."""
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
        "    sys.stdout.write(k.api_key + ' ' + k.secret)\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"could not create the bench key:\n{done.stderr[-2000:]}")
    api_key, secret = done.stdout.split()
    return api_key, secret


@contextlib.contextmanager
def server(data_dir: Path, port: int, env: dict[str, str], log: Path) -> Iterator[int]:
    command = [
        sys.executable, "-c", "from sandex.cli.main import main; main()",
        "--data-dir", str(data_dir), "serve", "--port", str(port),
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise BenchError(f"the server exited:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://{HOST}:{port}/api/v3/ping", timeout=2):
                    break
            if time.monotonic() > deadline:
                raise BenchError("the server did not start within 60 s")
            time.sleep(0.1)
        time.sleep(1.5)  # let the market makers post their first quotes
        yield proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
        raise BenchError(f"{r['status']} non-2xx answers, {errors} socket errors: {r}")
    return r


def bench_mode(
    wrk: str, mode: str, duration: float, database_url: str | None
) -> list[tuple[int, float, float, float, bool]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="sandex-orders-") as tmp:
        work = Path(tmp)
        data = work / "data"
        schema = None
        env = server_env(mode, database_url)
        if database_url:
            schema = f"bench_orders_{os.getpid()}_{mode}"
            _pg(database_url, f"CREATE SCHEMA {schema}")
            env["SANDEX_DATABASE_SCHEMA"] = schema
        try:
            api_key, secret = create_key(data, env)
            port = free_port()
            with server(data, port, env, work / "server.log"):
                bid, ask = best_prices(port)
                made = 0
                for connections, threads in CONCURRENCY:
                    # enough distinct requests for twice the target rate
                    per_thread = int(duration * (9000 if connections > 1 else 4000)) // threads
                    pool = []
                    for _ in range(threads):
                        pool.append(bodies(secret, per_thread, bid, ask, made))
                        made += per_thread
                    r = run_wrk(wrk, work, port, connections, threads, duration, api_key, pool)
                    seconds = r["duration_us"] / 1e6
                    rows.append(
                        (
                            connections,
                            r["requests"] / seconds,
                            r["p50_us"] / 1000,
                            r["p99_us"] / 1000,
                            r["exhausted"] > 0,
                        )
                    )
        finally:
            if schema is not None and database_url is not None:
                _pg(database_url, f"DROP SCHEMA {schema} CASCADE")
    return rows


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
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench/orders.py needs wrk (apt install wrk)", file=sys.stderr)
        return 2
    where = "PostgreSQL" if args.database_url else "SQLite (WAL)"
    print(f"signed POST {PATH} (HMAC, LIMIT IOC, half crossing), one worker, {where}")
    print(f"{'durability':<12} {'conns':>5} {'orders/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for mode in args.modes.split(","):
        try:
            rows = bench_mode(wrk, mode.strip(), args.duration, args.database_url)
        except BenchError as exc:
            print(f"{mode}: {exc}", file=sys.stderr)
            return 1
        for connections, rate, p50, p99, exhausted in rows:
            note = "  (ran out of signed requests)" if exhausted else ""
            print(f"{mode:<12} {connections:>5} {rate:>10,.0f} {p50:>8.2f} {p99:>8.2f}{note}")
    print("target: >= 4,000 orders/s at 32 connections, durable (DESIGN §6)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

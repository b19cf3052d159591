"""HTTP throughput: ping vs signed requests on one worker, and one worker vs two (DESIGN §6).

Prints req/s with p50/p99 latency at 1 and 32 connections for the unauthenticated
``GET /api/v3/ping``, an HMAC-signed ``GET /sapi/v1/account/apiRestrictions`` and the
same request signed with Ed25519, each with its ratio to ping in the same run.

Then (``--part workers``) the same ping and HMAC-signed apiRestrictions on three servers
in turn: one worker with its state in process, one worker with Redis, and
``--workers 2`` with Redis (rate limits, bans and the replay cache shared), each with
``SANDEX_EXCHANGE=0`` so that only the key path is measured (whatever ``--workers``
does with the exchange), and the server CPU per request (Redis's included) from which
to estimate what more cores would give.

    .venv/bin/python bench/http.py [--duration 5] [--rounds 2] [--client auto|wrk|asyncio]
        [--part all|single|workers]

One ``sandex serve`` process (one uvicorn worker, uvloop + httptools) serves a fresh
data directory holding one user with a READ HMAC key and a READ Ed25519 key. The load
comes from wrk (Debian's package) when it is installed, else from an asyncio client in
this process; either way it runs on the same machine and competes with the server
for its cores, so compare the ratios rather than the absolute figures.

The server refuses replays, so every signed request is distinct (a ``nonce``
parameter) and fresh (signed just before its run, ``recvWindow=60000``); a run that
uses up its supply of signed requests stops and is reported, never replayed. Any
non-2xx response aborts the bench: it would be measuring errors, not work.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from _servers import (
    HOST,
    NO_LIMIT,
    BenchError,
    cpu_seconds,
    exit_on_signals,
    free_port,
    redis_pid,
    serve,
    server_env,
    tail,
)

if TYPE_CHECKING:
    from sandex.keys.material import PrivateKey


def _stand_in_for_stdlib_http() -> None:
    """This file is named ``http.py``, so for any script run from ``bench/`` (which puts
    ``bench/`` first on ``sys.path``: ``bench/auth.py``, this one) it shadows the standard
    library's ``http`` package that uvicorn and ``http.client`` need. When it is imported
    under that name, it replaces itself in ``sys.modules`` with the real package (the
    import system returns whatever ``sys.modules`` holds once the module has run).
    Nothing else in this file runs anything or imports Sandex at import time."""
    init = Path(sysconfig.get_path("stdlib")) / "http" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "http", init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["http"] = module
    spec.loader.exec_module(module)


if __name__ == "http":
    _stand_in_for_stdlib_http()

PING = "/api/v3/ping"
SIGNED = "/sapi/v1/account/apiRestrictions"
RECV_WINDOW = 60_000
ACCOUNT = "/api/v3/account"
KINDS = ("ping", "hmac", "account", "ed25519")
LABELS = {
    "ping": f"GET {PING}",
    "hmac": f"GET {SIGNED} (HMAC)",
    "account": f"GET {ACCOUNT} (HMAC)",
    "ed25519": f"GET {SIGNED} (Ed25519)",
}
# (connections, wrk threads)
CONCURRENCY = ((1, 1), (32, 2))
SUPPLY_MARGIN = 2.0  # signed requests prepared per run: expected rate x duration x margin
MAX_SUPPLY_RETRIES = 2

# wrk script: the signed runs read their requests from one file per wrk thread (disjoint
# slices; the thread number is set in setup()); a thread that uses up its file stops and
# is counted as exhausted rather than sending a request twice. The ping runs go through
# the same request() path so that the load generator does the same work per request.
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
  ping = wrk.format("GET", "/api/v3/ping")
  local prefix = args[1]
  if prefix ~= nil and prefix ~= "" then
    local f = assert(io.open(prefix .. "." .. id, "r"))
    wrk.headers["X-MBX-APIKEY"] = f:read("*l")
    for line in f:lines() do
      pool[#pool + 1] = wrk.format("GET", line)
    end
    f:close()
    signed = true
  else
    signed = false
  end
end

function request()
  if not signed then
    return ping
  end
  if exhausted > 0 then
    return ping
  end
  used = used + 1
  local r = pool[used]
  if r == nil then
    used = used - 1
    exhausted = 1
    wrk.thread:stop()
    return ping
  end
  pool[used] = nil
  return r
end

function done(summary, latency, requests)
  local exhausted_threads, used_total = 0, 0
  for _, t in ipairs(threads) do
    exhausted_threads = exhausted_threads + (t:get("exhausted") or 0)
    used_total = used_total + (t:get("used") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "SANDEX_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status=%d"
      .. " connect=%d read=%d write=%d timeout=%d exhausted=%d used=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout, exhausted_threads, used_total))
end
"""


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    exhausted: bool = False
    server_cpu_s: float = math.nan
    """CPU time the server process used during the run (Linux), NaN when unknown."""
    redis_cpu_s: float = 0.0
    """CPU time Redis used during the run, when the server uses it."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_pct(self) -> float:
        return 100 * self.server_cpu_s / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU (workers and Redis) per request, in microseconds."""
        return 1e6 * (self.server_cpu_s + self.redis_cpu_s) / self.requests

    @property
    def per_cpu_s(self) -> float:
        """Requests per second of server CPU: what the server can do on a core of its own."""
        return self.requests / self.server_cpu_s if self.server_cpu_s > 0 else math.nan


# --------------------------------------------------------------------------- setup


@dataclass
class Credentials:
    hmac_api_key: str
    hmac_secret: str
    ed_api_key: str
    ed_private: PrivateKey


def create_credentials(data_dir: Path) -> Credentials:
    """A user with a READ HMAC key and a READ Ed25519 key, in a fresh data directory."""
    from sandex.bootstrap import open_sandex
    from sandex.config import Settings
    from sandex.keys import KeyKind, KeySettings, Permission
    from sandex.keys.material import generate_ed25519_pair, load_private_key
    from sandex.service import Actor

    operator = Actor.operator()
    with open_sandex(Settings.from_env(data_dir=data_dir)) as sx:
        now = sx.clock.now()
        user = sx.users.create("bench@example.com", "bench password 123", now=now, actor=operator)
        hmac_key = sx.keys.create(
            user.id, KeySettings("bench-hmac", Permission.READ), now=now, actor=operator
        )
        private_pem, public_pem = generate_ed25519_pair()
        ed_key = sx.keys.create(
            user.id,
            KeySettings("bench-ed25519", Permission.READ),
            now=now,
            actor=operator,
            kind=KeyKind.ED25519,
            public_key_pem=public_pem,
        )
    assert hmac_key.secret is not None
    return Credentials(
        hmac_key.api_key, hmac_key.secret, ed_key.api_key, load_private_key(private_pem)
    )


class Signer:
    """Distinct, fresh signed request targets (path + query) for one kind of key."""

    def __init__(self, creds: Credentials, kind: str) -> None:
        self.kind = kind
        self.api_key = creds.ed_api_key if kind == "ed25519" else creds.hmac_api_key
        self.path = ACCOUNT if kind == "account" else SIGNED
        self._secret = creds.hmac_secret.encode()
        self._private = creds.ed_private
        self._nonce = 0

    def batch(self, count: int) -> list[str]:
        from sandex.keys.signing import encode_signature_param, sign_hmac, sign_with_private_key

        timestamp = int(time.time() * 1000)
        start, self._nonce = self._nonce, self._nonce + count
        out = []
        path = self.path
        if self.kind != "ed25519":
            secret = self._secret
            for n in range(start, start + count):
                query = f"nonce={n}&timestamp={timestamp}&recvWindow={RECV_WINDOW}"
                out.append(f"{path}?{query}&signature={sign_hmac(secret, query.encode())}")
        else:
            private = self._private
            for n in range(start, start + count):
                query = f"nonce={n}&timestamp={timestamp}&recvWindow={RECV_WINDOW}"
                sig = encode_signature_param(sign_with_private_key(private, query.encode()))
                out.append(f"{path}?{query}&signature={sig}")
        return out


# --------------------------------------------------------------------------- server


def get(port: int, target: str, api_key: str | None = None) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", target, headers={"X-MBX-APIKEY": api_key} if api_key else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def check_route(port: int, signer: Signer | None) -> None:
    """One request of each kind must succeed before anything is measured."""
    if signer is None:
        status, body = get(port, PING)
    else:
        status, body = get(port, signer.batch(1)[0], signer.api_key)
    expected = b"balances" if signer is not None and signer.kind == "account" else b"enableReading"
    if status != 200 or (signer is not None and expected not in body):
        kind = "ping" if signer is None else signer.kind
        raise BenchError(f"{kind}: HTTP {status} {body[:300]!r}")


# --------------------------------------------------------------------------- wrk


class WrkClient:
    name = "wrk"

    def __init__(self, wrk: str, workdir: Path, port: int) -> None:
        self.wrk = wrk
        self.workdir = workdir
        self.port = port
        self.script = workdir / "bench.lua"
        self.script.write_text(WRK_LUA)
        first = subprocess.run(  # noqa: S603 - wrk found on PATH, fixed arguments
            [wrk, "-v"], capture_output=True, text=True, check=False
        )
        self.version = (first.stdout + first.stderr).strip().splitlines()[0].split(" [")[0]

    def run(
        self,
        connections: int,
        threads: int,
        duration: float,
        signer: Signer | None,
        per_thread: int,
    ) -> Run:
        prefix = ""
        if signer is not None:
            prefix = str(self.workdir / f"pool-{signer.kind}")
            for t in range(threads):
                lines = [signer.api_key, *signer.batch(per_thread)]
                Path(f"{prefix}.{t}").write_text("\n".join(lines) + "\n")
        command = [
            self.wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(self.script),
            f"http://{HOST}:{self.port}{PING}",
            "--",
            prefix,
        ]
        done = subprocess.run(  # noqa: S603 - wrk found on PATH, fixed arguments
            command, capture_output=True, text=True, check=False
        )
        if signer is not None:
            for t in range(threads):
                Path(f"{prefix}.{t}").unlink(missing_ok=True)
        match = re.search(r"^SANDEX_RESULT (.*)$", done.stdout, re.M)
        if done.returncode != 0 or match is None:
            raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        r = {k: int(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
        socket_errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
        if r["status"] or socket_errors:
            raise BenchError(
                f"{r['status']} non-2xx responses and {socket_errors} socket errors"
                f" (connect {r['connect']}, read {r['read']}, write {r['write']},"
                f" timeout {r['timeout']})"
            )
        return Run(
            requests=r["requests"],
            seconds=r["duration_us"] / 1e6,
            p50_ms=r["p50_us"] / 1000,
            p99_ms=r["p99_us"] / 1000,
            exhausted=r["exhausted"] > 0,
        )


# --------------------------------------------------------------------------- asyncio


class AsyncioClient:
    """HTTP/1.1 keep-alive over raw sockets: one coroutine per connection."""

    name = "asyncio"

    def __init__(self, port: int) -> None:
        self.port = port
        try:
            import uvloop

            self._new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            self.version = (
                f"asyncio client (uvloop {version('uvloop')}) in this process (wrk not"
                " used): much slower than wrk, it may be the bottleneck, pulling ratios to 1"
            )
        except ImportError:
            self._new_loop = asyncio.new_event_loop
            self.version = (
                "asyncio client in this process (wrk not used): much slower than wrk,"
                " it may be the bottleneck, pulling ratios towards 1"
            )

    def _wire(self, target: str, api_key: str | None) -> bytes:
        head = f"GET {target} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        if api_key is not None:
            head += f"X-MBX-APIKEY: {api_key}\r\n"
        return (head + "\r\n").encode()

    def run(
        self,
        connections: int,
        threads: int,
        duration: float,
        signer: Signer | None,
        per_thread: int,
    ) -> Run:
        if signer is None:
            ping = self._wire(PING, None)
            supply: Iterator[bytes] | None = None
        else:  # one shared supply: the coroutines take turns, so nothing is sent twice
            wires = [self._wire(t, signer.api_key) for t in signer.batch(per_thread * threads)]
            supply = iter(wires)
        latencies: list[int] = []
        state = {"requests": 0, "bad": 0, "exhausted": 0}

        async def connection(deadline: float) -> None:
            reader, writer = await asyncio.open_connection(HOST, self.port)
            perf = time.perf_counter_ns
            try:
                while time.perf_counter() < deadline:
                    wire = ping if supply is None else next(supply, None)
                    if wire is None:
                        state["exhausted"] += 1
                        return
                    start = perf()
                    writer.write(wire)
                    status = int((await reader.readline()).split(b" ", 2)[1])
                    length, chunked = 0, False
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        name, _, value = line.partition(b":")
                        name = name.strip().lower()
                        if name == b"content-length":
                            length = int(value)
                        elif name == b"transfer-encoding" and b"chunked" in value.lower():
                            chunked = True
                    if chunked:
                        while size := int((await reader.readline()).split(b";")[0], 16):
                            await reader.readexactly(size + 2)
                        await reader.readline()
                    else:
                        await reader.readexactly(length)
                    latencies.append(perf() - start)
                    state["requests"] += 1
                    if not 200 <= status < 300:
                        state["bad"] += 1
            finally:
                writer.close()

        async def main() -> float:
            begin = time.perf_counter()
            await asyncio.gather(*(connection(begin + duration) for _ in range(connections)))
            return time.perf_counter() - begin

        loop = self._new_loop()
        try:
            seconds = loop.run_until_complete(main())
        finally:
            loop.close()
        if state["bad"]:
            raise BenchError(f"{state['bad']} non-2xx responses")
        latencies.sort()
        return Run(
            requests=state["requests"],
            seconds=seconds,
            p50_ms=percentile(latencies, 50) / 1e6,
            p99_ms=percentile(latencies, 99) / 1e6,
            exhausted=state["exhausted"] > 0,
        )


def percentile(ordered: list[int], p: float) -> float:
    if not ordered:
        return math.nan
    return float(ordered[min(len(ordered) - 1, math.ceil(len(ordered) * p / 100) - 1)])


# --------------------------------------------------------------------------- bench


def measure(
    client: WrkClient | AsyncioClient,
    kind: str,
    signer: Signer | None,
    connections: int,
    threads: int,
    duration: float,
    expected_rate: float,
    server_pid: int,
    redis: int | None = None,
) -> Run:
    """One run; a signed run that uses up its requests is redone with a larger supply."""
    per_thread = math.ceil(expected_rate * duration * SUPPLY_MARGIN / threads) + 500
    for _ in range(MAX_SUPPLY_RETRIES + 1):
        try:
            cpu = cpu_seconds(server_pid)
            redis_cpu = cpu_seconds(redis) if redis else 0.0
            run = client.run(connections, threads, duration, signer, per_thread)
            run.server_cpu_s = cpu_seconds(server_pid) - cpu
            if redis:
                run.redis_cpu_s = cpu_seconds(redis) - redis_cpu
        except BenchError as exc:  # say what the server answers to a fresh request now
            try:
                status, body = get(
                    client.port,
                    signer.batch(1)[0] if signer else PING,
                    signer.api_key if signer else None,
                )
                now = f"a fresh one now gets HTTP {status} {body[:300]!r}"
            except OSError as err:
                now = f"a fresh one now fails: {err}"
            raise BenchError(f"{kind} at {connections} connections: {exc}; {now}") from None
        if not run.exhausted:
            return run
        print(
            f"  note: {kind} at {connections} connections used up its {per_thread:,}"
            " signed requests per thread (the run stopped early, nothing replayed);"
            " running it again with twice as many",
            flush=True,
        )
        per_thread *= 2
    print(f"  WARNING: {kind} at {connections} connections still ran out; figure is low")
    return run


def collect(
    client: WrkClient | AsyncioClient,
    creds: Credentials,
    kinds: tuple[str, ...],
    args: argparse.Namespace,
    server_pid: int,
    redis: int | None = None,
) -> dict[tuple[str, int], list[Run]]:
    """Every round's run of each kind at each concurrency, after a warm-up."""
    port = client.port
    signers: dict[str, Signer | None] = {
        kind: None if kind == "ping" else Signer(creds, kind) for kind in kinds
    }
    for signer in signers.values():
        check_route(port, signer)

    # warm-up (not reported); it also sizes the supply of signed requests: each run gets
    # SUPPLY_MARGIN x the best rate seen so far for its kind (ping's, before there is one)
    best_rate: dict[tuple[str, int], float] = {}

    def expected(kind: str, connections: int) -> float:
        return best_rate.get((kind, connections)) or best_rate.get(("ping", connections), 20e3)

    def one(kind: str, connections: int, threads: int, duration: float) -> Run:
        signer = signers[kind]
        rate = expected(kind, connections)
        run = measure(client, kind, signer, connections, threads, duration, rate, server_pid, redis)
        key = (kind, connections)
        best_rate[key] = max(best_rate.get(key, 0.0), run.rate)
        return run

    for connections, threads in CONCURRENCY:
        for kind in kinds:
            one(kind, connections, threads, 1)

    results: dict[tuple[str, int], list[Run]] = {}
    for round_no in range(1, args.rounds + 1):
        print(f"round {round_no}/{args.rounds} ...", flush=True)
        for connections, threads in CONCURRENCY:
            for kind in kinds:
                run = one(kind, connections, threads, args.duration)
                results.setdefault((kind, connections), []).append(run)
    return results


def idle_cpu_rate(server_pid: int, seconds: float = 3.0) -> float:
    """CPU seconds per second the server uses with no requests (its background threads:
    not taken off the figures, since under load they get less of the CPU)."""
    before = cpu_seconds(server_pid)
    time.sleep(seconds)
    return (cpu_seconds(server_pid) - before) / seconds


def bench(
    client: WrkClient | AsyncioClient,
    creds: Credentials,
    args: argparse.Namespace,
    server_pid: int,
) -> None:
    results = collect(client, creds, KINDS, args, server_pid)

    rounds_word = "round" if args.rounds == 1 else "rounds"
    print()
    print(
        f"Best of {args.rounds} {rounds_word} of {args.duration:g} s (median req/s in brackets);"
        " p50/p99 and the server's CPU use are those of the best round; req/CPU-s is"
        " requests per second of server CPU (median over rounds), less sensitive to other"
        " work on the machine."
    )
    print(
        f"{'request':<48} {'conns':>5} {'req/s':>8} {'(median)':>10}"
        f" {'p50 ms':>7} {'p99 ms':>7} {'x ping':>6} {'srv CPU':>7} {'req/CPU-s':>9}"
    )
    best: dict[tuple[str, int], Run] = {}
    for connections, _ in CONCURRENCY:
        for kind in KINDS:
            runs = results[(kind, connections)]
            top = max(runs, key=lambda r: r.rate)
            best[(kind, connections)] = top
            median = f"({statistics.median(r.rate for r in runs):,.0f})"
            ratio = top.rate / best[("ping", connections)].rate
            per_cpu = statistics.median(r.per_cpu_s for r in runs)
            print(
                f"{LABELS[kind]:<48} {connections:>5} {top.rate:>8,.0f} {median:>10}"
                f" {top.p50_ms:>7.2f} {top.p99_ms:>7.2f} {ratio:>6.2f}"
                f" {top.cpu_pct:>6.0f}% {per_cpu:>9,.0f}"
            )
    print()
    verdicts = []
    for connections, _ in CONCURRENCY:
        pings = results[("ping", connections)]
        for kind in ("hmac", "account", "ed25519"):
            ratio = best[(kind, connections)].rate / best[("ping", connections)].rate
            # each round's signed run follows its ping run: less exposed to slow drifts
            paired = [
                r.rate / p.rate for r, p in zip(results[(kind, connections)], pings, strict=True)
            ]
            cpu_ratio = statistics.median(
                r.per_cpu_s for r in results[(kind, connections)]
            ) / statistics.median(p.per_cpu_s for p in pings)
            print(
                f"{kind:>8} / ping at {connections:>2} connection(s): {ratio:.2f}x best/best;"
                f" per round {', '.join(f'{x:.2f}' for x in paired)}"
                f" (median {statistics.median(paired):.2f}x); per server CPU-second"
                f" {cpu_ratio:.2f}x"
            )
        word = "connection" if connections == 1 else "connections"
        for kind in ("hmac", "account"):
            ratio = best[(kind, connections)].rate / best[("ping", connections)].rate
            verdicts.append(
                f"{kind} at {connections} {word} {ratio:.2f}x"
                f" {'met' if ratio >= 0.5 else 'NOT met'}"
            )
    print("target: signed HMAC GETs >= 0.5x ping on one worker: " + "; ".join(verdicts))


WORKER_SETUPS = (
    ("1 worker, in process", 1, False),
    ("1 worker, Redis", 1, True),
    ("2 workers, Redis", 2, True),
)
"""(label, --workers, state in Redis): each served in turn, SANDEX_EXCHANGE=0."""
WORKER_KINDS = ("ping", "hmac")


def bench_workers(
    make_client: Callable[[int], WrkClient | AsyncioClient],
    work: Path,
    data_dir: Path,
    creds: Credentials,
    args: argparse.Namespace,
) -> None:
    """One worker against ``--workers 2`` (Redis), ping and signed apiRestrictions."""
    import redis

    url = os.environ.get("SANDEX_REDIS_URL") or "redis://127.0.0.1:6379/0"
    namespace = f"sandex-bench-{os.getpid()}"
    rpid = redis_pid()
    measured: dict[str, dict[tuple[str, int], list[Run]]] = {}
    idle: dict[str, float] = {}
    try:
        for label, workers, shared in WORKER_SETUPS:
            env = {"SANDEX_EXCHANGE": "0", "SANDEX_REDIS_URL": url if shared else ""}
            if shared:
                env["SANDEX_REDIS_NAMESPACE"] = namespace
            port = free_port()
            log = work / f"server-{workers}{'-redis' if shared else ''}.log"
            print(f"{label} (sandex serve --workers {workers}) ...", flush=True)
            with serve(
                data_dir,
                port,
                server_env(**env),
                log,
                workers,
                settle_s=2.0 if workers > 1 else 0.0,  # the first answered; let the others start
                cwd=data_dir.parent,
            ) as pid:
                idle[label] = idle_cpu_rate(pid)
                measured[label] = collect(
                    make_client(port),
                    creds,
                    WORKER_KINDS,
                    args,
                    pid,
                    rpid if shared else None,
                )
    finally:
        client = redis.Redis.from_url(url)
        try:
            names = list(client.scan_iter(match=f"{namespace}:*", count=1000))
            if names:
                client.delete(*names)
        finally:
            client.close()

    print()
    print(
        f"One worker vs two, SANDEX_EXCHANGE=0 (the key path alone); best of {args.rounds}"
        " (median req/s in brackets); CPU us/req is the server's CPU (all its workers, and"
        " Redis's) per request, median over rounds, background threads included (idle: "
        + ", ".join(f"{label} {rate:.2f} CPU-s/s" for label, rate in idle.items())
        + ")"
        + ("" if rpid else " (redis-server not found: its CPU is not counted)")
    )
    print(
        f"{'setup':<22} {'request':<44} {'conns':>5} {'req/s':>8} {'(median)':>10}"
        f" {'p50 ms':>7} {'p99 ms':>7} {'x 1 wkr':>7} {'CPU us/req':>10} {'of Redis':>8}"
    )
    base = measured[WORKER_SETUPS[0][0]]
    for connections, _ in CONCURRENCY:
        for kind in WORKER_KINDS:
            one = max(base[(kind, connections)], key=lambda r: r.rate)
            for label, _, _ in WORKER_SETUPS:
                runs = measured[label][(kind, connections)]
                top = max(runs, key=lambda r: r.rate)
                median = f"({statistics.median(r.rate for r in runs):,.0f})"
                cpu = statistics.median(r.cpu_us_per_request for r in runs)
                redis_us = statistics.median(1e6 * r.redis_cpu_s / r.requests for r in runs)
                print(
                    f"{label:<22} {LABELS[kind]:<44} {connections:>5} {top.rate:>8,.0f}"
                    f" {median:>10} {top.p50_ms:>7.2f} {top.p99_ms:>7.2f}"
                    f" {top.rate / one.rate:>7.2f} {cpu:>10.0f} {redis_us:>8.0f}"
                )
    print()
    two = measured[WORKER_SETUPS[2][0]][("hmac", 32)]
    one_runs = base[("hmac", 32)]
    ratio = max(r.rate for r in two) / max(r.rate for r in one_runs)
    cpu_two = statistics.median(r.cpu_us_per_request for r in two)
    cpu_one = statistics.median(r.cpu_us_per_request for r in one_runs)
    print(
        f"signed apiRestrictions at 32 connections: --workers 2 (Redis) {ratio:.2f}x one"
        f" worker ({'met' if ratio >= 1.0 else 'NOT met'}: target >= 1.0x on this machine,"
        " whose cores the load generator shares)"
    )
    print(
        f"server CPU per signed request: {cpu_one:.0f} us in process, {cpu_two:.0f} us with"
        f" two workers and Redis: about {1e6 / cpu_two:,.0f} req/s per core the server has"
        f" to itself, so N workers on N free cores (Redis's share included) ~"
        f" N x {1e6 / cpu_two:,.0f} req/s until Redis (one core) saturates"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--client", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument(
        "--part",
        choices=("all", "single", "workers"),
        default="all",
        help="single: one worker, four kinds of request; workers: one worker vs --workers 2",
    )
    args = parser.parse_args()
    here = Path(__file__).resolve().parent  # see _stand_in_for_stdlib_http
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    if args.duration <= 0 or args.rounds < 1:
        parser.error("--duration must be positive and --rounds at least 1")
    wrk = shutil.which("wrk")
    if args.client == "wrk" and wrk is None:
        parser.error("wrk is not installed (apt-get install wrk), use --client asyncio")
    if args.client == "asyncio":
        wrk = None
    if wrk is not None and args.duration != round(args.duration):
        args.duration = float(max(1, round(args.duration)))  # wrk takes whole seconds

    exit_on_signals()  # SIGTERM unwinds like Ctrl-C: server stopped, temp dir removed
    try:
        with tempfile.TemporaryDirectory(prefix="sandex-bench-http-") as tmp:
            work = Path(tmp)
            data_dir = work / "data"
            creds = create_credentials(data_dir)

            def make_client(port: int) -> WrkClient | AsyncioClient:
                return WrkClient(wrk, work, port) if wrk else AsyncioClient(port)

            cores = os.cpu_count()
            usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
            print(
                f"server: sandex serve: uvicorn {version('uvicorn')} with uvloop"
                f" {version('uvloop')} and httptools {version('httptools')}; Python"
                f" {sys.version.split()[0]}"
            )
            print(
                f"load: {make_client(0).version}; machine: {cores} cores ({usable} usable)"
                " shared by the server and the load generator, so the figures are a lower"
                " bound and the ratios are what to compare"
            )
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
            print(
                f"load average (1 min) before the bench: {load:.2f}"
                + (" - other work is running: expect noise" if load > 0.5 else ""),
            )
            print(
                "every signed request is distinct (nonce) and fresh (signed just before"
                f" its run, recvWindow={RECV_WINDOW}); rate limits raised to {NO_LIMIT}"
                " weight/min",
                flush=True,
            )
            try:
                if args.part != "workers":
                    port = free_port()
                    with serve(
                        data_dir, port, server_env(), work / "server.log", cwd=data_dir.parent
                    ) as pid:
                        print(f"one worker (pid {pid}), default settings", flush=True)
                        bench(make_client(port), creds, args, pid)
                if args.part != "single":
                    print()
                    bench_workers(make_client, work, data_dir, creds, args)
            except BenchError:
                for log_path in sorted(work.glob("server*.log")):
                    log = tail(log_path)
                    if log:
                        print(f"{log_path.name} (tail):\n{log}", file=sys.stderr)
                raise
    except BenchError as exc:
        print(f"bench/http.py: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/http.py: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

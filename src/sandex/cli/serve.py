"""``sandex serve``: the HTTP server (Binance routes and the management API)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import redis
import typer
import uvicorn
import uvloop

from sandex.bootstrap import Sandex, engine_parts
from sandex.cli.parsing import CliInputError
from sandex.cli.recipes import ccxt_snippet
from sandex.cli.state import err, opened, out, state, use_data_dir, warn_if_exposed
from sandex.config import ConfigError, Settings
from sandex.http.websocket import MAX_MESSAGE_BYTES
from sandex.keys import IpAllowlist, KeySettings, Permission
from sandex.runtime import serve_engine
from sandex.service import Actor

__all__ = ["serve", "engine", "EngineProcess", "DEMO_EMAIL", "websocket_options"]

DEMO_EMAIL = "demo@sandex.example"


def _create_demo(sx: Sandex, base: str) -> None:
    """On first run (no users yet): a demo user and a READ+SPOT_TRADE HMAC key, printed once."""
    if sx.users.all():
        return
    now = sx.clock.now()
    password = secrets.token_urlsafe(12)
    user = sx.users.create(DEMO_EMAIL, password, now=now, actor=Actor.operator())
    issued = sx.keys.create(
        user.id,
        KeySettings(
            "demo",
            Permission.READ | Permission.SPOT_TRADE,
            IpAllowlist.parse(["127.0.0.1", "::1"]),
        ),
        now=now,
        actor=Actor.operator(),
    )
    out.print(
        "First run: created a demo user and a demo API key. They are shown ONCE:", markup=False
    )
    out.print(f"  user:     {DEMO_EMAIL}", markup=False)
    out.print(f"  password: {password}", markup=False)
    out.print(f"  API key:  {issued.api_key}", markup=False)
    out.print(f"  secret:   {issued.secret}", markup=False)
    out.print("  permissions READ + SPOT_TRADE; usable from 127.0.0.1 and ::1 only.", markup=False)
    out.print("Connect ccxt (pip install ccxt):", markup=False)
    out.print(ccxt_snippet(base.removeprefix("http://"), issued.api_key), markup=False)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Worker processes (>1 needs Redis).")
    ] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="On first run, create a demo user and key.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where Sandex keeps its data (as sandex --data-dir)."),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="embedded: the engine runs here (with --workers N, in a process of its own"
            " that this command starts); remote: gateways only, for a `sandex engine` that"
            " runs elsewhere on the same database and Redis [env: SANDEX_ENGINE].",
        ),
    ] = "",
) -> None:
    """Serve the Binance-compatible API and the management API until SIGINT/SIGTERM."""
    use_data_dir(ctx, data_dir)
    if engine:
        if engine not in ("embedded", "remote"):
            raise CliInputError(f"--engine is embedded or remote, not {engine!r}")
        os.environ["SANDEX_ENGINE"] = engine
    settings = Settings.from_env(data_dir=state(ctx).data_dir)
    if (workers > 1 or settings.engine == "remote") and not settings.redis_url:
        raise ConfigError(
            "--workers above 1 and --engine remote need SANDEX_REDIS_URL: the gateways reach"
            " the engine over Redis and share rate-limit counters and the replay cache"
        )
    if settings.redis_url:
        _check_redis(settings.redis_url)
    base = f"http://{host}:{port}"
    with opened(ctx) as sx:  # creates and migrates the database before any worker starts
        if demo:
            _create_demo(sx, base)
    warn_if_exposed(settings)
    os.environ["SANDEX_DATA_DIR"] = str(settings.data_dir)
    if not os.environ.get("SANDEX_SIGNUP", "").strip() and not _loopback(host):
        os.environ["SANDEX_SIGNUP"] = "invite"  # open sign-up only where only this host sees it
        out.print(
            f"note: listening on {host}, so sign-up through the API needs an invitation code"
            " (sandex users invite); SANDEX_SIGNUP=open|invite|closed chooses",
            markup=False,
        )
    child: EngineProcess | None = None
    if workers > 1 and settings.engine == "embedded" and settings.exchange:
        # the books live in one process: the workers reach it over Redis
        child = EngineProcess(settings)
        child.start()
        os.environ["SANDEX_ENGINE"] = "remote"
    where = {
        "embedded": "the engine in this process",
        "remote": "gateways of a `sandex engine`",
    }[os.environ.get("SANDEX_ENGINE", settings.engine)]
    if child is not None:
        where = f"gateways of the engine process {child.pid}"
    out.print(
        f"Sandex serving on {base} ({workers} worker{'s' if workers > 1 else ''}, {where});"
        f" data in {settings.data_dir}. Ctrl-C stops it.",
        markup=False,
    )
    try:
        _run_uvicorn(host, port, workers, settings)
    finally:
        if child is not None:
            child.stop()


def websocket_options(settings: Settings) -> dict[str, object]:
    """uvicorn's WebSocket settings for Binance's market streams: the server pings every
    ``ws_ping_interval_s`` (20 s) and drops a client whose pong has not come within
    ``ws_pong_timeout_s`` (60 s); incoming messages above ``MAX_MESSAGE_BYTES`` close the
    connection (1009). No per-message compression: every subscriber would pay for its
    own compressor on the same payloads."""
    return {
        "ws": "websockets-sansio",
        "ws_ping_interval": float(settings.ws_ping_interval_s),
        "ws_ping_timeout": float(settings.ws_pong_timeout_s),
        "ws_max_size": MAX_MESSAGE_BYTES,
        "ws_per_message_deflate": False,
    }


def _run_uvicorn(host: str, port: int, workers: int, settings: Settings) -> None:
    uvicorn.run(
        "sandex.bootstrap:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="sandex.http.wire:JsonErrorsHttpToolsProtocol",  # httptools, JSON parse errors
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; Sandex decides whom
        # to believe itself (SANDEX_TRUSTED_PROXIES), so uvicorn must not rewrite the peer
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        **websocket_options(settings),  # type: ignore[arg-type]
    )


def _check_redis(url: str) -> None:
    """Fail at start, with one clear line, when Redis is not there."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConfigError(f"SANDEX_REDIS_URL: cannot reach Redis ({exc})") from None
    finally:
        client.close()


_ENGINE_START_S = 30.0
_RESTART_PAUSE_S = 1.0


class EngineProcess:
    """``sandex engine`` as a child of ``sandex serve --workers N``: started before the
    workers, restarted if it dies abnormally (one line on stderr says so), stopped after
    them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self._child is not None
        return self._child.pid

    def start(self) -> None:
        """Start the engine; return once it serves (raises :class:`ConfigError` if not)."""
        self._child = self._launch()
        self._watcher = threading.Thread(target=self._watch, name="engine-watch", daemon=True)
        self._watcher.start()

    def _launch(self) -> subprocess.Popen[bytes]:
        s = self.settings
        command = [sys.executable, "-m", "sandex", "--data-dir", str(s.data_dir), "engine"]
        child = subprocess.Popen(command)  # noqa: S603 - our own interpreter and module
        client = redis.Redis.from_url(s.redis_url or "", socket_connect_timeout=2)
        alive = f"{s.redis_namespace}:engine:alive"
        deadline = time.monotonic() + _ENGINE_START_S
        try:
            while True:
                if child.poll() is not None:
                    raise ConfigError(
                        f"the engine process stopped at start (exit {child.returncode})"
                    )
                if client.get(alive) == str(child.pid).encode():
                    return child
                if time.monotonic() > deadline:
                    _terminate(child)
                    raise ConfigError("the engine process did not start in time")
                time.sleep(0.05)
        finally:
            client.close()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            child = self._child
            assert child is not None
            code = child.wait()
            if self._stopping.is_set() or code in (0, -signal.SIGINT, -signal.SIGTERM):
                return  # stopped on purpose (Ctrl-C reaches the whole process group)
            err.print(
                f"the engine process {child.pid} exited (code {code}); restarting it",
                markup=False,
            )
            while not self._stopping.is_set():
                time.sleep(_RESTART_PAUSE_S)
                try:
                    self._child = self._launch()
                    break
                except (ConfigError, OSError, redis.RedisError) as exc:
                    err.print(f"the engine did not restart: {exc}; trying again", markup=False)

    def stop(self) -> None:
        self._stopping.set()
        if self._child is not None:
            _terminate(self._child)


def _terminate(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def engine(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where Sandex keeps its data (as sandex --data-dir)."),
    ] = None,
) -> None:
    """Run the exchange's engine alone, for gateways started with `sandex serve --engine
    remote` (on this host or others) that share its database and Redis."""
    use_data_dir(ctx, data_dir)
    settings = Settings.from_env(data_dir=state(ctx).data_dir)
    if not settings.redis_url:
        raise ConfigError("sandex engine needs SANDEX_REDIS_URL: gateways reach it over Redis")
    _check_redis(settings.redis_url)  # before it says it serves
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(name)s: %(message)s")
    with opened(ctx) as sx:
        out.print(
            f"Sandex engine serving gateways over Redis ({settings.redis_namespace});"
            f" data in {settings.data_dir}. Ctrl-C stops it.",
            markup=False,
        )
        uvloop.run(_engine_until_signal(sx))
    out.print("Sandex engine stopped.", markup=False)


async def _engine_until_signal(sx: Sandex) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve_engine(engine_parts(sx), stop)


def _loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

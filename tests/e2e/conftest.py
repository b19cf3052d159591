"""End-to-end fixtures: real ``sandex serve`` processes on 127.0.0.1, reached over TCP.

``tests/e2e`` is a package (it has an ``__init__.py``) so that this conftest is imported
as ``e2e.conftest`` and never replaces the top-level ``conftest`` module that other test
directories import names from.

Each server runs in its own session (process group) with stdout and stderr in a log
file; a server that does not answer ``/api/v3/ping`` fails the test with the log's
tail. At teardown the group gets SIGTERM, then SIGKILL after 10 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from e2e.clients import close_clients
from sandex.bootstrap import Sandex, open_sandex
from sandex.cli import run
from sandex.config import Settings
from support import FAST_HASH

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_CLI = "from sandex.cli.main import main; main()"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stop_group(proc: subprocess.Popen[bytes], first: int, timeout: float) -> int:
    """Send ``first`` to ``proc``'s process group, SIGKILL it if it is still there after
    ``timeout`` seconds; its exit code."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, first)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return proc.returncode


def server_env(**extra: str) -> dict[str, str]:
    """This process's environment without any SANDEX_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDEX_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def serve_command(
    data_dir: Path, port: int, workers: int = 1, engine: str | None = None
) -> list[str]:
    cmd = [sys.executable, "-c", _CLI, "--data-dir", str(data_dir), "serve"]
    cmd += ["--host", HOST, "--port", str(port)]
    if workers != 1:
        cmd += ["--workers", str(workers)]
    if engine is not None:
        cmd += ["--engine", engine]
    return cmd


def engine_command(data_dir: Path) -> list[str]:
    return [sys.executable, "-c", _CLI, "--data-dir", str(data_dir), "engine"]


def assert_no_traceback(log: Path) -> None:
    """Fail if a process's log holds a traceback (a server prints none in normal
    operation, faults included)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    if "Traceback" in text:
        tail = "\n".join(text.splitlines()[-60:])
        pytest.fail(f"{log.name} holds a traceback:\n{tail}")


@dataclass
class Server:
    """One ``sandex serve`` process (and its workers, in the same process group)."""

    port: int
    data_dir: Path
    env: dict[str, str] = field(repr=False)  # may hold SANDEX_MASTER_KEY
    log: Path
    proc: subprocess.Popen[bytes]
    stopped_with: int | None = field(default=None, init=False)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def settings(self) -> Settings:
        """Settings for opening this server's database from the test process."""
        return dataclasses.replace(
            Settings.from_env(self.env, data_dir=self.data_dir), password_hash=FAST_HASH
        )

    def open(self) -> Sandex:
        return open_sandex(self.settings())

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM to the process group; SIGKILL if it is still there after ``timeout``."""
        if self.stopped_with is None:
            self.stopped_with = stop_group(self.proc, signal.SIGTERM, timeout)
        return self.stopped_with

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                pytest.fail(f"sandex serve exited with {code} during startup:\n{self.log_tail()}")
            try:
                if (
                    httpx.get(self.base + "/api/v3/ping", timeout=1.0, trust_env=False).status_code
                    == 200
                ):
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"sandex serve did not answer /api/v3/ping within {timeout:.0f} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)


def launch(
    data_dir: Path,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    workers: int = 1,
    engine: str | None = None,
) -> Server:
    """Start ``sandex serve`` and wait until it answers."""
    port = free_port()
    env = server_env() if env is None else env
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            serve_command(data_dir, port, workers, engine),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = Server(port, data_dir, env, log, proc)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running(
    data_dir: Path, log: Path, *, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[Server]:
    server = launch(data_dir, log, env=env, workers=workers)
    try:
        yield server
    finally:
        server.stop()


Launch = Callable[..., Server]


@pytest.fixture(autouse=True)
def _client_resources() -> Iterator[None]:
    """Leave nothing for the garbage collector to find in a later test.

    python-binance's Client takes the thread's current event loop, creating one if there
    is none, and never closes it; once something else (``asyncio.run``) unsets it, it is
    collected as an "unclosed event loop" ResourceWarning, which this suite turns into
    an error in whatever test runs then. So each test gets a loop that is closed after
    it, and every client's connection pool is closed too.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        close_clients()
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Launch]:
    """``start_server(env=..., workers=..., data_dir=..., engine=...)``: servers stopped
    after the test."""
    servers: list[Server] = []

    def start(
        *,
        env: dict[str, str] | None = None,
        workers: int = 1,
        data_dir: Path | None = None,
        engine: str | None = None,
    ) -> Server:
        n = len(servers)
        server = launch(
            data_dir or tmp_path / "data",
            tmp_path / f"server-{n}.log",
            env=env,
            workers=workers,
            engine=engine,
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@dataclass
class EngineRun:
    """One ``sandex engine`` process (a session of its own), its output in ``log``."""

    data_dir: Path
    env: dict[str, str] = field(repr=False)
    log: Path
    proc: subprocess.Popen[bytes]

    def alive_pid(self) -> int | None:
        """The pid in ``NS:engine:alive`` (the serving engine's), if any."""
        client = redis.Redis.from_url(self.env["SANDEX_REDIS_URL"])
        try:
            value = client.get(self.env["SANDEX_REDIS_NAMESPACE"] + ":engine:alive")
        finally:
            client.close()
        return None if value is None else int(value)

    def wait_alive(self, timeout: float = STARTUP_TIMEOUT_S) -> float:
        """Wait until this engine says it serves; the monotonic time it was seen."""
        deadline = time.monotonic() + timeout
        while self.alive_pid() != self.proc.pid:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop_group(self.proc, signal.SIGTERM, STOP_TIMEOUT_S)
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
                pytest.fail(f"sandex engine did not start (exit {self.proc.poll()}):\n{tail}")
            time.sleep(0.02)
        return time.monotonic()

    def kill(self) -> None:
        """``kill -9``: no goodbye, nothing flushed."""
        stop_group(self.proc, signal.SIGKILL, STOP_TIMEOUT_S)

    def stop(self) -> int:
        return stop_group(self.proc, signal.SIGTERM, STOP_TIMEOUT_S)


def launch_engine(data_dir: Path, log: Path, env: dict[str, str]) -> EngineRun:
    """Start ``sandex engine`` (output appended to ``log``) and wait until it serves."""
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            engine_command(data_dir),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    run = EngineRun(data_dir, env, log, proc)
    run.wait_alive()
    return run


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on SQLite for the whole module."""
    tmp = tmp_path_factory.mktemp("sandex-e2e")
    with running(tmp / "data", tmp / "server.log") as server:
        yield server


@pytest.fixture
def base(sqlite_server: Server) -> str:
    """The module server's base URL."""
    return sqlite_server.base


@pytest.fixture
def server_alive(sqlite_server: Server) -> Iterator[None]:
    """Fails the test if the module server died during it (use with ``usefixtures``)."""
    yield
    assert sqlite_server.proc.poll() is None, (
        f"the server died during the test:\n{sqlite_server.log_tail()}"
    )


@pytest.fixture
def cli(
    sqlite_server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., None]:
    """``cli("keys", "revoke", prefix)``: the operator's CLI, in-process, on the module
    server's data directory (its output is swallowed; a failure fails the test)."""
    for name in [n for n in os.environ if n.startswith("SANDEX_")]:
        monkeypatch.delenv(name)

    def call(*args: str) -> None:
        code = run(["--data-dir", str(sqlite_server.data_dir), *args])
        captured = capsys.readouterr()
        assert code == 0, captured.err

    return call


@pytest.fixture(scope="module")
def operator(sqlite_server: Server) -> Iterator[Sandex]:
    """The module server's data directory opened from the test process, as the operator
    would with the CLI (keys created here reach the server through the database)."""
    with sqlite_server.open() as sx:
        yield sx

"""The Sandex processes a bench measures: ``sandex serve`` and ``sandex engine``.

Each is started as a child in a process group of its own (so that a Ctrl-C meant for
the bench does not reach it halfway through a run) and stopped as a group on every way
out of the bench: normal end, an error, a start that times out, and SIGTERM or SIGINT
sent to the bench (call :func:`exit_on_signals` first). A group still alive when the
interpreter exits (a second signal during a stop) is killed by an ``atexit`` hook.
Only SIGKILL sent to the bench itself leaves its children behind.

Used by ``bench/http.py`` and ``bench/orders.py``. Nothing here runs at import time but
the registration of that hook, and nothing imported at the top imports ``http``.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "HOST",
    "NO_LIMIT",
    "BenchError",
    "free_port",
    "server_env",
    "exit_on_signals",
    "serve",
    "engine_process",
    "cpu_seconds",
    "redis_pid",
    "tail",
]

HOST = "127.0.0.1"
NO_LIMIT = str(10**9)
START_S = 60.0
"""How long a child has to start serving."""
STOP_S = 20.0
"""How long a child has to stop after SIGTERM before its group is killed."""


class BenchError(Exception):
    """The bench cannot produce a valid figure (server down, non-2xx responses...)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_env(**settings: str) -> dict[str, str]:
    """This process's environment with the request-weight limits lifted, without
    ``SANDEX_DEBUG``, and with ``settings`` on top."""
    env = dict(os.environ, SANDEX_IP_WEIGHT_1M=NO_LIMIT, SANDEX_KEY_WEIGHT_1M=NO_LIMIT)
    env.pop("SANDEX_DEBUG", None)
    env.update(settings)
    return env


def exit_on_signals() -> None:
    """Make SIGTERM (``timeout``, ``kill``) unwind the bench as Ctrl-C does, so that the
    children are stopped and temporary directories removed on the way out."""

    def leave(signum: int, _frame: object) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, leave)


# --------------------------------------------------------------------------- children

_live: set[int] = set()
"""Process groups started and not yet stopped (their leaders' pids)."""


@atexit.register
def _kill_leftovers() -> None:
    for group in list(_live):
        _kill_group(group)


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
    _live.discard(group)


def _start(
    command: list[str], env: dict[str, str], log: Path, cwd: Path | None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, led by proc.pid
        )
    _live.add(proc.pid)
    return proc


def _exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    """``proc``'s exit code as :attr:`~subprocess.Popen.returncode` gives it (negative for
    a signal), or None while it runs; without reaping it, so that while it is a zombie its
    pid, and so its process group's id, cannot be given to another process."""
    if proc.returncode is not None:
        return proc.returncode
    info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None or info.si_pid != proc.pid:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's group (as Ctrl-C would reach it from a terminal), up to
    :data:`STOP_S` for the leader to exit, then SIGKILL to whatever is left of the group
    (stragglers, or everything if the leader did not stop), then reap the leader."""
    group = proc.pid
    try:
        if _exit_code(proc) is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
            deadline = time.monotonic() + STOP_S
            while _exit_code(proc) is None and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        _kill_group(group)
        proc.wait()


def _wait_until(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str, log: Path
) -> None:
    deadline = time.monotonic() + START_S
    while not ready():
        code = _exit_code(proc)
        if code is not None:
            raise BenchError(f"{what} exited ({code}):\n{tail(log)}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not serve within {START_S:g} s:\n{tail(log)}")
        time.sleep(0.1)


def _sandex(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sandex", "--data-dir", str(data_dir), *args]


def _answers_ping(port: int) -> bool:
    # imported here: bench/http.py, which imports this module, stands in for the standard
    # library's http package only once it has run (see _stand_in_for_stdlib_http there)
    import urllib.request

    with contextlib.suppress(OSError):
        url = f"http://{HOST}:{port}/api/v3/ping"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    return False


@contextlib.contextmanager
def serve(
    data_dir: Path,
    port: int,
    env: dict[str, str],
    log: Path,
    workers: int = 1,
    settle_s: float = 0.0,
    cwd: Path | None = None,
) -> Iterator[int]:
    """``sandex serve`` on ``data_dir`` and ``port``, its output in ``log``: its pid once
    it answers ``GET /api/v3/ping`` and ``settle_s`` more seconds have passed (for the
    other workers to start, the market makers to quote)."""
    command = _sandex(data_dir, "serve", "--port", str(port), "--workers", str(workers))
    proc = _start(command, env, log, cwd)
    try:
        _wait_until(proc, lambda: _answers_ping(port), "the server", log)
        time.sleep(settle_s)
        yield proc.pid
    finally:
        _stop(proc)


@contextlib.contextmanager
def engine_process(
    data_dir: Path, env: dict[str, str], log: Path, settle_s: float = 1.5
) -> Iterator[int]:
    """``sandex engine`` on ``data_dir``: its pid once it says it serves
    (``NS:engine:alive`` holds its pid) and ``settle_s`` more seconds have passed (for the
    market makers to post their first quotes). ``SANDEX_BENCH_PROFILE=<file>`` runs it
    under cProfile, written there when it stops."""
    import redis

    command = _sandex(data_dir, "engine")
    profile = os.environ.get("SANDEX_BENCH_PROFILE")
    if profile:
        command[1:1] = ["-m", "cProfile", "-o", profile]
    proc = _start(command, env, log, None)
    try:
        client = redis.Redis.from_url(env["SANDEX_REDIS_URL"])
        alive = f"{env['SANDEX_REDIS_NAMESPACE']}:engine:alive"
        try:
            _wait_until(
                proc, lambda: client.get(alive) == str(proc.pid).encode(), "the engine", log
            )
        finally:
            client.close()
        time.sleep(settle_s)
        yield proc.pid
    finally:
        _stop(proc)


# --------------------------------------------------------------------------- measures


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live descendants (a server's
    workers and engine), threads included; NaN off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children: list[int] = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += [int(c) for c in (task / "children").read_text().split()]
    except (OSError, ValueError, IndexError):
        return math.nan
    return own + sum(cpu_seconds(child) for child in children)


def redis_pid() -> int | None:
    """The local redis-server's pid, to count its CPU (None when not found)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "redis-server":
                    return int(entry.name)
    return None


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log ("" if it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""

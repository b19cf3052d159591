"""The audit writer: a process of its own that writes a server's authentication
decisions to the audit chain, so the request-serving process spends no CPU (and holds
no GIL) on it.

The server's flusher thread hands each batch over a pipe (pickled tuples, about half a
microsecond per decision); the writer appends them to the chain and records each key's
last use, exactly as an in-process flush would. The writer ignores SIGINT and SIGTERM
(a Ctrl-C reaches the whole process group) and stops when the server closes the pipe,
after writing everything it was given, so a stopping or crashing server loses nothing
it handed over. If the writer is gone, the server writes in process again.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from sandex.service.activity import Decision

if TYPE_CHECKING:
    from sandex.config import Settings

__all__ = ["AuditWriter"]

_log = logging.getLogger(__name__)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _writer_main(settings: Settings, reader: Connection) -> None:
    # The server's SIGINT/SIGTERM reach its whole process group, this process too. It
    # starts with them ignored (see AuditWriter) and keeps them so: it stops when the
    # server closes the pipe, after writing what it was given.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from sandex.bootstrap import open_sandex  # in the child only: bootstrap imports us

    sx = open_sandex(settings)
    try:
        while True:
            try:
                batch = reader.recv()
            except EOFError:  # the server is gone: write what we have and stop
                break
            if batch is None:
                break
            sx.activity.extend(batch)
            try:
                sx.activity.flush()
            except Exception:  # kept queued by ActivityLog; retried with the next batch
                _log.warning("audit writer: flush failed, will retry", exc_info=True)
    finally:
        sx.close()  # writes anything still queued


class AuditWriter:
    """The server side of the audit writer process."""

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")
        reader, self._writer = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_writer_main, args=(settings, reader), name="sandex-audit-writer"
        )
        # Started with SIGINT/SIGTERM ignored (an ignored signal stays ignored across
        # exec), so a stop signal sent to the server's process group while the writer is
        # still importing cannot kill it with batches already handed over. The server's
        # own handlers are put back at once (this runs on the main thread, at start-up).
        main = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in _STOP_SIGNALS} if main else {}
        try:
            self._process.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        reader.close()

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def send(self, batch: list[Decision]) -> bool:
        """Hand ``batch`` to the writer; False if it cannot take it (write it yourself)."""
        if not self._process.is_alive():
            return False
        try:
            self._writer.send(batch)
        except (OSError, ValueError):
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Ask the writer to finish what it was given and stop; wait for it."""
        try:
            self._writer.send(None)
        except (OSError, ValueError):
            pass
        self._writer.close()
        self._process.join(timeout)
        if self._process.is_alive():
            _log.error("audit writer did not stop within %.0f s; terminating it", timeout)
            self._process.terminate()
            self._process.join(5)

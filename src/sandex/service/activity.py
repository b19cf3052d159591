"""Batched recording of authentication decisions and key use.

Authentication appends to an in-memory queue (a few hundred nanoseconds); a flush
writes the queue to the audit chain and the keys' last-use columns in one
transaction. The server flushes on a short timer and at shutdown; the CLI flushes
before it exits.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Final, NamedTuple

from sandex.keys import AuditEvent
from sandex.service.failures import report_failure
from sandex.service.ports import UnitOfWorkFactory

__all__ = ["ActivityLog", "Decision"]

_log = logging.getLogger(__name__)
MAX_PENDING: Final = 2_000_000
USE_RESOLUTION_MS: Final = 10_000
"""A key's last use is stored to within 10 s (at once when it comes from a new IP), so a busy
key costs one row update per 10 s, not one per flush."""


class Decision(NamedTuple):
    """One authentication decision as queued on the hot path."""

    time: int
    key_id: int | None
    user_id: int | None
    key_prefix: str | None
    client_ip: str
    method: str
    path: str
    reason: str | None
    """Why the request was refused; None when it was allowed."""


class ActivityLog:
    def __init__(self, uow: UnitOfWorkFactory, *, max_pending: int = MAX_PENDING) -> None:
        self._uow = uow
        self._decisions: deque[Decision] = deque()
        self._max_pending = max_pending
        self._dropped = 0
        self._flush_lock = threading.Lock()
        self._use_written: dict[int, tuple[int, str]] = {}
        self.record_decision = self._decisions.append
        """Queue one decision (thread-safe, never blocks, builds nothing)."""

    @property
    def pending(self) -> int:
        return len(self._decisions)

    def drain(self) -> list[Decision]:
        """Take everything queued (to be written elsewhere, e.g. by the audit writer process)."""
        queue = self._decisions
        return [queue.popleft() for _ in range(len(queue))]

    def requeue(self, batch: list[Decision]) -> None:
        """Put a drained batch back in front of the queue (it could not be handed over)."""
        self._decisions.extendleft(reversed(batch))

    def extend(self, batch: list[Decision]) -> None:
        """Queue decisions recorded by another process."""
        self._decisions.extend(batch)

    def flush(self) -> int:
        """Write everything queued to the audit chain, and each key's latest use, in one
        transaction; returns the number of events written.

        On a storage failure the decisions stay queued (up to a bound; beyond it the
        oldest are dropped and the drop itself is recorded) and the error propagates.
        """
        with self._flush_lock:
            queue = self._decisions
            batch = [queue.popleft() for _ in range(len(queue))]
            if not batch:
                return 0
            events = [
                AuditEvent(
                    ts,
                    "auth.denied" if reason else "auth.allowed",
                    None,
                    user_id,
                    prefix,
                    ip,
                    f"{method} {path}",
                    "denied" if reason else "ok",
                    reason,
                )
                for ts, _, user_id, prefix, ip, method, path, reason in batch
            ]
            last_use: dict[int, tuple[int, str]] = {}
            for d in batch:
                if d.reason is None and d.key_id is not None:
                    last_use[d.key_id] = (d.time, d.client_ip)
            written = self._use_written
            for key_id, (ts, ip) in list(last_use.items()):
                seen = written.get(key_id)
                if seen is not None and seen[1] == ip and ts - seen[0] < USE_RESOLUTION_MS:
                    del last_use[key_id]  # stored already, to within the resolution
            if self._dropped:
                events.append(
                    AuditEvent(
                        batch[-1].time,
                        "audit.dropped",
                        outcome="error",
                        reason=f"{self._dropped} events dropped while storage was unavailable",
                    )
                )
            try:
                with self._uow() as uow:
                    uow.audit.append(events)
                    if last_use:
                        uow.keys.record_use((k, at, ip) for k, (at, ip) in last_use.items())
                    uow.commit()
            except Exception as exc:
                queue.extendleft(reversed(batch))
                overflow = len(queue) - self._max_pending
                if overflow > 0:
                    for _ in range(overflow):
                        queue.popleft()
                    self._dropped += overflow
                report_failure(_log, f"audit flush failed; {len(queue)} events kept queued", exc)
                raise
            if len(written) > 1_000_000:
                written.clear()
            written.update(last_use)
            self._dropped = 0
            return len(events)

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
from typing import Final

from sandex.keys import AuditEvent
from sandex.service.ports import UnitOfWorkFactory

__all__ = ["ActivityLog"]

_log = logging.getLogger(__name__)
MAX_PENDING: Final = 2_000_000


class ActivityLog:
    def __init__(self, uow: UnitOfWorkFactory, *, max_pending: int = MAX_PENDING) -> None:
        self._uow = uow
        self._events: deque[AuditEvent] = deque()
        self._uses: dict[int, tuple[int, str]] = {}
        self._max_pending = max_pending
        self._dropped = 0
        self._flush_lock = threading.Lock()
        self.record = self._events.append
        """Queue one event (thread-safe, never blocks)."""

    def note_use(self, key_id: int, at: int, ip: str) -> None:
        self._uses[key_id] = (at, ip)

    @property
    def pending(self) -> int:
        return len(self._events)

    def flush(self) -> int:
        """Write everything queued; returns the number of events written.

        On a storage failure the events stay queued (up to a bound; beyond it the
        oldest are dropped and the drop itself is recorded) and the error propagates.
        """
        with self._flush_lock:
            events = self._events
            count = len(events)
            batch = [events.popleft() for _ in range(count)]
            uses, self._uses = self._uses, {}
            if not batch and not uses:
                return 0
            marker = []
            if self._dropped and batch:
                marker.append(
                    AuditEvent(
                        batch[-1].ts,
                        "audit.dropped",
                        outcome="error",
                        reason=f"{self._dropped} events dropped while storage was unavailable",
                    )
                )
            try:
                with self._uow() as uow:
                    if batch:
                        uow.audit.append(batch + marker)
                    if uses:
                        uow.keys.record_use((k, at, ip) for k, (at, ip) in uses.items())
                    uow.commit()
            except Exception:
                events.extendleft(reversed(batch))
                for key_id, use in uses.items():
                    self._uses.setdefault(key_id, use)
                overflow = len(events) - self._max_pending
                if overflow > 0:
                    for _ in range(overflow):
                        events.popleft()
                    self._dropped += overflow
                _log.exception("audit flush failed; %d events kept queued", len(events))
                raise
            self._dropped = 0
            return len(batch)

"""The audit chain in SQL: rows plus a one-row head that serialises appends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from sandex.keys import AuditEvent, AuditRecord
from sandex.keys.audit import link
from sandex.storage.tables import audit_head, audit_log

__all__ = ["SqlAuditRepository"]

_HEAD_ID = 1


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        row.seq,
        AuditEvent(
            row.ts,
            row.event,
            row.actor,
            row.user_id,
            row.key_prefix,
            row.ip,
            row.endpoint,
            row.outcome,
            row.reason,
            row.details,
        ),
        bytes(row.hash),
    )


class SqlAuditRepository:
    def __init__(self, conn: Connection, audit_key: bytes | None) -> None:
        self._conn = conn
        self._key = audit_key

    def append(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        if self._key is None:
            raise RuntimeError("audit key not loaded: the unit of work was built without it")
        key = self._key
        head = self._conn.execute(
            select(audit_head.c.seq, audit_head.c.hash)
            .where(audit_head.c.id == _HEAD_ID)
            .with_for_update()
        ).one()
        seq, previous = head.seq, bytes(head.hash)
        rows = []
        for event in events:
            seq += 1
            previous = link(key, previous, seq, event)
            rows.append(
                {
                    "seq": seq,
                    "ts": event.ts,
                    "event": event.event,
                    "actor": event.actor,
                    "user_id": event.user_id,
                    "key_prefix": event.key_prefix,
                    "ip": event.ip,
                    "endpoint": event.endpoint,
                    "outcome": event.outcome,
                    "reason": event.reason,
                    "details": event.details,
                    "hash": previous,
                }
            )
        self._conn.execute(insert(audit_log), rows)
        self._conn.execute(
            update(audit_head).where(audit_head.c.id == _HEAD_ID).values(seq=seq, hash=previous)
        )

    def head(self) -> tuple[int, bytes] | None:
        row = self._conn.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == _HEAD_ID)
        ).first()
        if row is None or row.seq == 0:
            return None
        return row.seq, bytes(row.hash)

    def records(self, *, batch: int = 5000) -> Iterator[AuditRecord]:
        after = 0
        while True:
            rows = self._conn.execute(
                select(audit_log)
                .where(audit_log.c.seq > after)
                .order_by(audit_log.c.seq)
                .limit(batch)
            ).all()
            if not rows:
                return
            for row in rows:
                yield _record(row)
            after = rows[-1].seq

    def tail(
        self, *, limit: int, key_prefix: str | None = None, user_id: int | None = None
    ) -> list[AuditRecord]:
        query = select(audit_log)
        if key_prefix is not None:
            query = query.where(audit_log.c.key_prefix.startswith(key_prefix, autoescape=True))
        if user_id is not None:
            query = query.where(audit_log.c.user_id == user_id)
        rows = self._conn.execute(query.order_by(audit_log.c.seq.desc()).limit(limit)).all()
        return [_record(r) for r in reversed(rows)]

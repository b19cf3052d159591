"""The audit chain in SQL: rows plus a one-row head that serialises appends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from sandex.keys import AuditEvent, AuditRecord
from sandex.keys.audit import AuditChain
from sandex.storage.tables import audit_head, audit_log

__all__ = ["SqlAuditRepository"]

_HEAD_ID = 1
_FIELDS = ("seq", *AuditEvent._fields, "hash")
_INSERT = {  # keyed by "the driver takes ? placeholders" (SQLite) rather than %s (psycopg)
    qmark: f"INSERT INTO audit_log ({', '.join(_FIELDS)})"  # noqa: S608 - constant column names
    f" VALUES ({', '.join(['?' if qmark else '%s'] * len(_FIELDS))})"
    for qmark in (True, False)
}
assert tuple(c.name for c in audit_log.columns) == _FIELDS, "audit_log columns drifted"


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
    def __init__(self, conn: Connection, chain: AuditChain | None) -> None:
        self._conn = conn
        self._chain = chain

    def append(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        if self._chain is None:
            raise RuntimeError("audit key not loaded: the unit of work was built without it")
        link = self._chain.link
        head = self._conn.execute(
            select(audit_head.c.seq, audit_head.c.hash)
            .where(audit_head.c.id == _HEAD_ID)
            .with_for_update()
        ).one()
        seq, previous = head.seq, bytes(head.hash)
        rows = []
        for event in events:
            seq += 1
            previous = link(previous, seq, event)
            rows.append((seq, *event, previous))
        # Straight to the driver: a batch of plain tuples skips per-row parameter processing.
        self._conn.exec_driver_sql(_INSERT[self._conn.dialect.paramstyle == "qmark"], rows)
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

    def hash_at(self, seq: int) -> bytes | None:
        value = self._conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == seq)).scalar()
        return None if value is None else bytes(value)

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

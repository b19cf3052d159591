"""Management sessions in SQL (tokens only as keyed hashes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from sandex.accounts.sessions import Session
from sandex.storage.tables import sessions

__all__ = ["SqlSessionRepository"]


def _session(row: Any) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        access_expires_at=row.access_expires_at,
        refresh_expires_at=row.refresh_expires_at,
        revoked_at=row.revoked_at,
        ip=row.ip,
    )


class SqlSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(
        self,
        user_id: int,
        access_hash: bytes,
        refresh_hash: bytes,
        *,
        now: int,
        access_expires_at: int,
        refresh_expires_at: int,
        ip: str | None,
    ) -> Session:
        session_id = self._conn.execute(
            insert(sessions)
            .values(
                user_id=user_id,
                access_hash=access_hash,
                refresh_hash=refresh_hash,
                created_at=now,
                access_expires_at=access_expires_at,
                refresh_expires_at=refresh_expires_at,
                ip=ip,
            )
            .returning(sessions.c.id)
        ).scalar_one()
        return Session(
            int(session_id), user_id, now, access_expires_at, refresh_expires_at, None, ip
        )

    def by_access_hash(self, access_hash: bytes) -> Session | None:
        row = self._conn.execute(
            select(sessions).where(sessions.c.access_hash == access_hash)
        ).first()
        return None if row is None else _session(row)

    def by_refresh_hash(self, refresh_hash: bytes) -> tuple[Session, bool] | None:
        """The session a refresh token belongs to, and whether it is its *current* one
        (False: an already used refresh token)."""
        row = self._conn.execute(
            select(sessions).where(
                or_(
                    sessions.c.refresh_hash == refresh_hash,
                    sessions.c.previous_refresh_hash == refresh_hash,
                )
            )
        ).first()
        if row is None:
            return None
        return _session(row), row.refresh_hash == refresh_hash

    def renew(
        self,
        session_id: int,
        access_hash: bytes,
        refresh_hash: bytes,
        *,
        access_expires_at: int,
        refresh_expires_at: int,
        ip: str | None,
    ) -> None:
        self._conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(
                previous_refresh_hash=sessions.c.refresh_hash,
                access_hash=access_hash,
                refresh_hash=refresh_hash,
                access_expires_at=access_expires_at,
                refresh_expires_at=refresh_expires_at,
                ip=ip,
            )
        )

    def revoke(self, session_id: int, now: int) -> None:
        self._conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

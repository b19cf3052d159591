"""Users, recovery codes, invitation codes and throttle state in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from sandex.accounts import ThrottleState, TotpSetup, User
from sandex.service.errors import Conflict
from sandex.storage.tables import invites, recovery_codes, throttles, users

__all__ = [
    "SqlUserRepository",
    "SqlRecoveryCodeRepository",
    "SqlInviteRepository",
    "SqlThrottleRepository",
]


def _user(row: Any) -> User:
    totp = None
    if row.totp_envelope is not None:
        totp = TotpSetup(
            bytes(row.totp_envelope),
            row.totp_enrolled_at,
            row.totp_confirmed_at,
            row.totp_last_step,
        )
    return User(row.id, row.email, row.password_hash, row.created_at, totp)


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, email: str, password_hash: str, created_at: int) -> User:
        try:
            with self._conn.begin_nested():
                result = self._conn.execute(
                    insert(users).values(
                        email=email, password_hash=password_hash, created_at=created_at
                    )
                )
        except IntegrityError:
            raise Conflict(f"a user with e-mail {email} already exists") from None
        (user_id,) = result.inserted_primary_key or (None,)
        assert user_id is not None
        return User(int(user_id), email, password_hash, created_at)

    def get(self, user_id: int, *, for_update: bool = False) -> User | None:
        query = select(users).where(users.c.id == user_id)
        if for_update:
            query = query.with_for_update()
        row = self._conn.execute(query).first()
        return None if row is None else _user(row)

    def by_email(self, email: str) -> User | None:
        row = self._conn.execute(select(users).where(users.c.email == email)).first()
        return None if row is None else _user(row)

    def all(self) -> list[User]:
        return [_user(r) for r in self._conn.execute(select(users).order_by(users.c.id))]

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        self._conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    def set_totp(self, user_id: int, totp: TotpSetup | None) -> None:
        values: dict[str, object]
        if totp is None:
            values = dict(
                totp_envelope=None,
                totp_enrolled_at=None,
                totp_confirmed_at=None,
                totp_last_step=None,
            )
        else:
            values = dict(
                totp_envelope=totp.secret_envelope,
                totp_enrolled_at=totp.enrolled_at,
                totp_confirmed_at=totp.confirmed_at,
                totp_last_step=totp.last_step,
            )
        self._conn.execute(update(users).where(users.c.id == user_id).values(**values))


class SqlRecoveryCodeRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def replace(self, user_id: int, digests: Sequence[bytes], created_at: int) -> None:
        self._conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
        if digests:
            self._conn.execute(
                insert(recovery_codes),
                [{"user_id": user_id, "digest": d, "created_at": created_at} for d in digests],
            )

    def consume(self, user_id: int, digest: bytes, used_at: int) -> bool:
        result = self._conn.execute(
            update(recovery_codes)
            .where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.digest == digest,
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=used_at)
        )
        return result.rowcount == 1

    def remaining(self, user_id: int) -> int:
        count = self._conn.execute(
            select(func.count())
            .select_from(recovery_codes)
            .where(recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None))
        ).scalar_one()
        return int(count)


class SqlInviteRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, digest: bytes, created_at: int, expires_at: int) -> int:
        result = self._conn.execute(
            insert(invites).values(digest=digest, created_at=created_at, expires_at=expires_at)
        )
        (invite_id,) = result.inserted_primary_key or (None,)
        assert invite_id is not None
        return int(invite_id)

    def consume(self, digest: bytes, used_at: int) -> int | None:
        """Use up an unused, unexpired code in one statement (of two callers, one wins);
        its id, or None."""
        row = self._conn.execute(select(invites.c.id).where(invites.c.digest == digest)).first()
        if row is None:
            return None
        result = self._conn.execute(
            update(invites)
            .where(
                invites.c.id == row.id,
                invites.c.used_at.is_(None),
                invites.c.expires_at > used_at,
            )
            .values(used_at=used_at)
        )
        return int(row.id) if result.rowcount == 1 else None


class SqlThrottleRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, subject: str) -> ThrottleState:
        row = self._conn.execute(select(throttles).where(throttles.c.subject == subject)).first()
        if row is None:
            return ThrottleState()
        return ThrottleState(row.failures, row.window_started_at, row.locked_until)

    def lock(self, subjects: Sequence[str]) -> dict[str, ThrottleState]:
        """The states of ``subjects``, each row created if missing and locked until the
        transaction ends. Rows are taken in one order (sorted), so that two callers never
        wait on each other crosswise; a missing row is inserted with ``ON CONFLICT DO
        NOTHING``, so two first failures at once are not a unique-key error."""
        states: dict[str, ThrottleState] = {}
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        for subject in sorted(set(subjects)):
            self._conn.execute(
                dialect.insert(throttles)
                .values(subject=subject, failures=0, window_started_at=0, locked_until=0)
                .on_conflict_do_nothing(index_elements=[throttles.c.subject])
            )
            row = self._conn.execute(
                select(throttles).where(throttles.c.subject == subject).with_for_update()
            ).one()
            states[subject] = ThrottleState(row.failures, row.window_started_at, row.locked_until)
        return states

    def put(self, subject: str, state: ThrottleState) -> None:
        """Store ``state`` for a subject :meth:`lock` holds (or delete it once it is blank)."""
        if state == ThrottleState():
            self.clear(subject)
            return
        self._conn.execute(
            update(throttles)
            .where(throttles.c.subject == subject)
            .values(
                failures=state.failures,
                window_started_at=state.window_started_at,
                locked_until=state.locked_until,
            )
        )

    def clear(self, subject: str) -> None:
        self._conn.execute(delete(throttles).where(throttles.c.subject == subject))

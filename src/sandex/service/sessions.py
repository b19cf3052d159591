"""Management-API sessions: log in (password + 2FA), refresh, log out, and who a bearer
token belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from sandex.accounts import User
from sandex.accounts.sessions import (
    ACCESS_PREFIX,
    ACCESS_TTL_MS,
    REFRESH_PREFIX,
    REFRESH_TTL_MS,
    Session,
    new_session_tokens,
)
from sandex.keys import AuditEvent
from sandex.keys.lookup import keyed_hash
from sandex.service.errors import ServiceError
from sandex.service.ports import UnitOfWorkFactory
from sandex.service.users import UserService

__all__ = ["SessionService", "IssuedSession", "SessionInvalid"]

_MAX_TOKEN = 128


class SessionInvalid(ServiceError):
    """No session, or an expired, ended or reused token (HTTP 401)."""


@dataclass(frozen=True)
class IssuedSession:
    """What a log-in or refresh returns; the tokens exist only here."""

    access_token: str
    refresh_token: str
    session: Session
    user: User


class SessionService:
    def __init__(self, *, uow: UnitOfWorkFactory, users: UserService, pepper: bytes) -> None:
        self._uow = uow
        self._users = users
        self._pepper = pepper

    def _hash(self, token: str) -> bytes:
        return keyed_hash(self._pepper, "session:" + token)

    def login(
        self, email: str, password: str, *, now: int, source: str, second_factor: str | None
    ) -> IssuedSession:
        user = self._users.login(
            email, password, now=now, source=source, second_factor=second_factor
        )
        tokens = new_session_tokens()
        with self._uow() as uow:
            session = uow.sessions.add(
                user.id,
                self._hash(tokens.access),
                self._hash(tokens.refresh),
                now=now,
                access_expires_at=now + ACCESS_TTL_MS,
                refresh_expires_at=now + REFRESH_TTL_MS,
                ip=source,
            )
            uow.audit.append([_event(now, "session.created", user.id, source)])
            uow.commit()
        return IssuedSession(tokens.access, tokens.refresh, session, user)

    def authenticate(self, access_token: str, *, now: int) -> Session:
        """The live session ``access_token`` opens, or :class:`SessionInvalid`."""
        if not access_token.startswith(ACCESS_PREFIX) or len(access_token) > _MAX_TOKEN:
            raise SessionInvalid("not a Sandex access token")
        with self._uow(readonly=True) as uow:
            session = uow.sessions.by_access_hash(self._hash(access_token))
        if session is None or not session.access_valid(now):
            raise SessionInvalid("session expired or ended; log in again or refresh")
        return session

    def refresh(self, refresh_token: str, *, now: int, source: str) -> IssuedSession:
        """A new token pair for a current refresh token. A used one ends the session."""
        if not refresh_token.startswith(REFRESH_PREFIX) or len(refresh_token) > _MAX_TOKEN:
            raise SessionInvalid("not a Sandex refresh token")
        tokens = new_session_tokens()
        with self._uow() as uow:
            found = uow.sessions.by_refresh_hash(self._hash(refresh_token))
            if found is None:
                raise SessionInvalid("unknown refresh token; log in again")
            session, current = found
            if not current:
                if session.revoked_at is None:
                    uow.sessions.revoke(session.id, now)
                    uow.audit.append(
                        [
                            AuditEvent(
                                now,
                                "session.refresh_reused",
                                f"user:{session.user_id}",
                                session.user_id,
                                ip=source,
                                outcome="denied",
                                reason="a refresh token was used twice; session ended",
                            )
                        ]
                    )
                    uow.commit()
                raise SessionInvalid("refresh token already used; the session was ended")
            if not session.refresh_valid(now):
                raise SessionInvalid("session expired or ended; log in again")
            user = uow.users.get(session.user_id)
            if user is None:
                raise SessionInvalid("session expired or ended; log in again")
            access_expires_at = now + ACCESS_TTL_MS
            refresh_expires_at = now + REFRESH_TTL_MS
            uow.sessions.renew(
                session.id,
                self._hash(tokens.access),
                self._hash(tokens.refresh),
                access_expires_at=access_expires_at,
                refresh_expires_at=refresh_expires_at,
                ip=source,
            )
            uow.commit()
        renewed = Session(
            session.id,
            session.user_id,
            session.created_at,
            access_expires_at,
            refresh_expires_at,
            None,
            source,
        )
        return IssuedSession(tokens.access, tokens.refresh, renewed, user)

    def logout(self, session: Session, *, now: int, source: str) -> None:
        with self._uow() as uow:
            uow.sessions.revoke(session.id, now)
            uow.audit.append([_event(now, "session.ended", session.user_id, source)])
            uow.commit()


def _event(now: int, event: str, user_id: int, source: str) -> AuditEvent:
    return AuditEvent(now, event, f"user:{user_id}", user_id, ip=source, outcome="ok")

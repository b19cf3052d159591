"""One database transaction with every repository on it."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine, RootTransaction

from sandex.keys.audit import AuditChain
from sandex.storage.audit_store import SqlAuditRepository
from sandex.storage.database import reader
from sandex.storage.exchange_store import SqlCreditRepository
from sandex.storage.key_store import SqlKeyRepository
from sandex.storage.secret_store import SqlSealedStore, SqlServerSecretRepository
from sandex.storage.session_store import SqlSessionRepository
from sandex.storage.user_store import (
    SqlInviteRepository,
    SqlRecoveryCodeRepository,
    SqlThrottleRepository,
    SqlUserRepository,
)

__all__ = ["SqlUnitOfWork", "SqlUnitOfWorkFactory"]


class SqlUnitOfWork:
    """``with uow: ...; uow.commit()`` — anything not committed is rolled back on exit."""

    users: SqlUserRepository
    recovery_codes: SqlRecoveryCodeRepository
    invites: SqlInviteRepository
    throttles: SqlThrottleRepository
    keys: SqlKeyRepository
    audit: SqlAuditRepository
    server_secrets: SqlServerSecretRepository
    sealed: SqlSealedStore
    sessions: SqlSessionRepository
    credits: SqlCreditRepository

    def __init__(self, engine: Engine, chain: AuditChain | None, *, readonly: bool) -> None:
        self._engine = engine
        self._chain = chain
        self._readonly = readonly
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

    def __enter__(self) -> SqlUnitOfWork:
        conn = reader(self._engine) if self._readonly else self._engine.connect()
        self._conn = conn
        self._tx = conn.begin()
        self.users = SqlUserRepository(conn)
        self.recovery_codes = SqlRecoveryCodeRepository(conn)
        self.invites = SqlInviteRepository(conn)
        self.throttles = SqlThrottleRepository(conn)
        self.keys = SqlKeyRepository(conn)
        self.audit = SqlAuditRepository(conn, self._chain)
        self.server_secrets = SqlServerSecretRepository(conn)
        self.sealed = SqlSealedStore(conn)
        self.sessions = SqlSessionRepository(conn)
        self.credits = SqlCreditRepository(conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None and self._tx is not None
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self._conn.close()
            self._conn = self._tx = None

    def commit(self) -> None:
        assert self._tx is not None
        self._tx.commit()


class SqlUnitOfWorkFactory:
    """Makes units of work on one engine. ``audit_key`` is set once the server secrets load."""

    def __init__(self, engine: Engine, audit_key: bytes | None = None) -> None:
        self.engine = engine
        self._chain = None if audit_key is None else AuditChain(audit_key)

    def __call__(self, *, readonly: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self._chain, readonly=readonly)

"""The composition root: the only module that knows both the service layer and storage.

``open_sandex(settings)`` builds everything; the CLI and the HTTP app receive what it
builds. Nothing happens at import time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from sqlalchemy import Engine

from sandex.accounts import PasswordHasher
from sandex.config import Settings
from sandex.service import (
    ActivityLog,
    AuditService,
    Authenticator,
    KeyCache,
    KeyPolicyConfig,
    KeyService,
    MasterKeyRotation,
    MemoryReplayGuard,
    UserService,
)
from sandex.service.keyring import KeyringHolder, ServerSecrets, load_server_secrets
from sandex.service.ports import KeyringSource
from sandex.storage import (
    MASTER_KEY_FILE,
    EnvKeyringSource,
    FileKeyringSource,
    SqlUnitOfWorkFactory,
    make_engine,
    sqlite_url,
    upgrade,
)

__all__ = ["Sandex", "SystemClock", "open_sandex"]

_log = logging.getLogger(__name__)


class SystemClock:
    """The real clock, in epoch milliseconds. Only adapters read it; the domain never does."""

    def now(self) -> int:
        return time.time_ns() // 1_000_000


@dataclass
class Sandex:
    """Everything a running Sandex needs, wired together."""

    settings: Settings
    engine: Engine
    uow: SqlUnitOfWorkFactory
    keyring: KeyringHolder
    secrets: ServerSecrets
    cache: KeyCache
    activity: ActivityLog
    users: UserService
    keys: KeyService
    auth: Authenticator
    audit: AuditService
    master_keys: MasterKeyRotation
    clock: SystemClock = field(default_factory=SystemClock)
    _flusher: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start_background_flush(self, interval: float = 0.2) -> None:
        """Flush queued audit events every ``interval`` seconds in a daemon thread."""
        if self._flusher is not None:
            return

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.activity.flush()
                except Exception:  # logged by ActivityLog; keep trying
                    _log.debug("background audit flush failed", exc_info=True)

        self._flusher = threading.Thread(target=run, name="sandex-audit-flush", daemon=True)
        self._flusher.start()

    def close(self) -> None:
        """Stop the flusher, write what is queued, release the database."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        try:
            self.activity.flush()
        finally:
            self.engine.dispose()

    def __enter__(self) -> Sandex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def keyring_source(settings: Settings) -> KeyringSource:
    if settings.master_key:
        return EnvKeyringSource(settings.master_key)
    return FileKeyringSource(settings.data_dir / MASTER_KEY_FILE)


def open_sandex(settings: Settings) -> Sandex:
    """Create the data directory, migrate the database, unseal the server secrets, wire up."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = settings.database_url or sqlite_url(settings.data_dir)
    engine = make_engine(url, schema=settings.database_schema)
    try:
        upgrade(engine)
        holder = KeyringHolder(keyring_source(settings))
        bare = SqlUnitOfWorkFactory(engine)
        server_secrets = load_server_secrets(bare, holder)
    except BaseException:
        engine.dispose()
        raise
    uow = SqlUnitOfWorkFactory(engine, server_secrets.audit_key)
    cache = KeyCache()
    activity = ActivityLog(uow)
    users = UserService(
        uow=uow,
        hasher=PasswordHasher(settings.password_hash),
        keyring=holder,
        pepper=server_secrets.pepper,
    )
    keys = KeyService(
        uow=uow,
        keyring=holder,
        pepper=server_secrets.pepper,
        cache=cache,
        users=users,
        config=KeyPolicyConfig(unrestricted_trade_days=settings.unrestricted_trade_days),
    )
    auth = Authenticator(
        uow=uow,
        keyring=holder,
        pepper=server_secrets.pepper,
        cache=cache,
        replay=MemoryReplayGuard(),
        activity=activity,
    )
    return Sandex(
        settings=settings,
        engine=engine,
        uow=uow,
        keyring=holder,
        secrets=server_secrets,
        cache=cache,
        activity=activity,
        users=users,
        keys=keys,
        auth=auth,
        audit=AuditService(uow=uow, audit_key=server_secrets.audit_key),
        master_keys=MasterKeyRotation(uow=uow, keyring=holder),
    )

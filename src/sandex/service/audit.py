"""Reading the audit log: verification of the chain and recent events."""

from __future__ import annotations

from sandex.keys import AuditRecord, ChainReport, verify_chain
from sandex.service.ports import UnitOfWorkFactory

__all__ = ["AuditService"]


class AuditService:
    def __init__(self, *, uow: UnitOfWorkFactory, audit_key: bytes) -> None:
        self._uow = uow
        self._key = audit_key

    def verify(self) -> ChainReport:
        """Recompute the whole chain; the report names the first bad entry."""
        with self._uow(readonly=True) as uow:
            head = uow.audit.head()
            return verify_chain(self._key, uow.audit.records(), head)

    def tail(
        self, *, limit: int = 20, key_prefix: str | None = None, user_id: int | None = None
    ) -> list[AuditRecord]:
        """The newest ``limit`` events (oldest first), optionally for one key or one user."""
        with self._uow(readonly=True) as uow:
            return uow.audit.tail(limit=limit, key_prefix=key_prefix, user_id=user_id)

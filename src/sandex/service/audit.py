"""Reading the audit log: verification of the chain and recent events; signed digests
of the chain's head, written regularly and checked by verification."""

from __future__ import annotations

from dataclasses import dataclass

from sandex.keys import AuditRecord, BadDigest, ChainReport, verify_chain
from sandex.keys.audit_digest import (
    EMPTY_HEAD,
    AuditDigest,
    ChainHead,
    DigestSigner,
    check_digests,
    decode_digest,
    head_problem,
    is_digest_name,
)
from sandex.service.errors import AuditDigestProblem
from sandex.service.ports import DigestStore, UnitOfWorkFactory

__all__ = ["AuditService", "AuditCheck"]

_ATTEMPTS = 3


@dataclass(frozen=True)
class AuditCheck:
    """The chain's own report, and what the digests say about its tail."""

    chain: ChainReport
    location: str | None
    """Where the digests are kept; None when this service has no digest directory."""
    newest: AuditDigest | None
    """The newest digest that verifies, which the chain was compared with."""
    digests: int
    """How many digests verify."""
    problems: tuple[str, ...]
    """One sentence per problem found by the digests (the chain's own is in ``chain``)."""

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems


class AuditService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, audit_key: bytes, digests: DigestStore | None = None
    ) -> None:
        self._uow = uow
        self._key = audit_key
        self._signer = DigestSigner(audit_key)
        self._digests = digests

    def verify(self) -> ChainReport:
        """Recompute the whole chain; the report names the first bad entry."""
        with self._uow(readonly=True) as uow:
            head = uow.audit.head()
            return verify_chain(self._key, uow.audit.records(), head)

    def check(self) -> AuditCheck:
        """Verify the chain, the digests, and the chain's tail against the newest digest:
        a truncated, wiped or rewound log, a forged digest or a gap in the digests."""
        store = self._digests
        problems: list[str] = []
        newest = None
        count = 0
        if store is not None:  # digests first: the chain only grows while we read it
            try:
                files = [(name, store.read(name)) for name in store.names()]
            except AuditDigestProblem as exc:
                problems.append(str(exc))
                files = []
            report = check_digests(self._signer, files)
            problems.extend(report.problems)
            newest, count = report.newest, len(report.digests)
        with self._uow(readonly=True) as uow:
            chain = verify_chain(self._key, uow.audit.records(), uow.audit.head())
            if newest is not None:
                last = uow.audit.tail(limit=1)
                last_seq = last[0].seq if last else 0
                problem = head_problem(newest, last_seq, uow.audit.hash_at(newest.head.seq))
                if problem is not None:
                    problems.append(problem)
        location = None if store is None else store.location
        return AuditCheck(chain, location, newest, count, tuple(problems))

    def write_digest(self, now: int) -> AuditDigest | None:
        """Sign the chain's head into the next digest, unless it has not moved since the
        newest digest (None then). The first digest is written even for an empty log.

        Raises AuditDigestProblem, writing nothing, when the directory cannot be used,
        when the newest digest does not verify, or when the chain no longer holds what
        the newest digest recorded: signing a cut log would launder the cut.
        """
        store = self._digests
        if store is None:
            raise AuditDigestProblem("no audit digest directory is configured")
        for _attempt in range(_ATTEMPTS):
            previous = self._newest(store)
            with self._uow(readonly=True) as uow:
                stored = uow.audit.head()
                head = EMPTY_HEAD if stored is None else ChainHead(*stored)
                anchor = None
                if previous is not None and previous.head.seq <= head.seq:
                    anchor = uow.audit.hash_at(previous.head.seq)
            if previous is not None:
                problem = head_problem(previous, head.seq, anchor)
                if problem is not None:
                    raise AuditDigestProblem(
                        f"{problem}; no digest written (run `sandex audit verify`)"
                    )
                if head == previous.head:
                    return None
            digest = self._signer.next(previous, head, now)
            if store.add(digest.file_name, digest.encode()):
                return digest
        raise AuditDigestProblem(f"other processes kept writing to {store.location}; try again")

    def _newest(self, store: DigestStore) -> AuditDigest | None:
        names = [name for name in store.names() if is_digest_name(name)]
        if not names:
            return None
        try:
            digest = decode_digest(names[-1], store.read(names[-1]))
            self._signer.verify(digest)
        except BadDigest as exc:
            raise AuditDigestProblem(
                f"audit digest {exc}; no digest written (run `sandex audit verify`)"
            ) from None
        return digest

    def tail(
        self, *, limit: int = 20, key_prefix: str | None = None, user_id: int | None = None
    ) -> list[AuditRecord]:
        """The newest ``limit`` events (oldest first), optionally for one key or one user."""
        with self._uow(readonly=True) as uow:
            return uow.audit.tail(limit=limit, key_prefix=key_prefix, user_id=user_id)

"""The audit log's hash chain.

Entry ``i`` is stored with ``h_i = HMAC(k_audit, h_{i-1} || canonical(i, entry_i))``
and ``h_0`` = 32 zero bytes. Sequence numbers are contiguous from 1. Without
``k_audit`` nobody can alter, insert, reorder or drop an entry (even the last one:
the chain head is stored separately) without :func:`verify_chain` naming the first
bad entry.

The canonical form is the ASCII literal of the tuple (tag, sequence number, fields),
so no field value can imitate a separator.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

from sandex.keys.lookup import keyed_sha256

__all__ = [
    "GENESIS",
    "AuditEvent",
    "AuditRecord",
    "AuditChain",
    "ChainReport",
    "canonical",
    "details_text",
    "verify_chain",
]

GENESIS: Final = bytes(32)
_TAG: Final = "sandex-audit-v1"


class AuditEvent(NamedTuple):
    """One thing that happened. Never holds a secret: only key prefixes, IPs and reasons."""

    ts: int
    event: str
    actor: str | None = None
    user_id: int | None = None
    key_prefix: str | None = None
    ip: str | None = None
    endpoint: str | None = None
    outcome: str | None = None
    reason: str | None = None
    details: str | None = None


class AuditRecord(NamedTuple):
    """An event as stored: its place in the chain and its hash."""

    seq: int
    event: AuditEvent
    hash: bytes


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


def canonical(seq: int, event: AuditEvent) -> bytes:
    """The exact bytes hashed for entry ``seq``.

    ``ascii()`` of the tuple (tag, seq, fields): every field is a str, an int or None,
    whose ASCII literal is unambiguous (quoted and escaped, so no value can imitate a
    separator or spill into its neighbour), built in C, and depends only on the code
    points, not on the Unicode tables of the running Python.
    """
    return ascii((_TAG, seq, *event)).encode("ascii")


class AuditChain:
    """Links entries under ``key``; the HMAC is keyed once and copied per entry."""

    def __init__(self, key: bytes) -> None:
        self._keyed = keyed_sha256(key)

    def link(self, previous: bytes, seq: int, event: AuditEvent) -> bytes:
        """``HMAC(key, previous || canonical(seq, event))``."""
        state = self._keyed.copy()
        state.update(previous)
        state.update(canonical(seq, event))
        digest: bytes = state.digest()
        return digest


def details_text(details: Mapping[str, object]) -> str:
    """Canonical JSON for an event's details (sorted keys, no spaces)."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


def verify_chain(
    key: bytes, records: Iterable[AuditRecord], head: tuple[int, bytes] | None
) -> ChainReport:
    """Recompute the chain over ``records`` (in sequence order) and compare with ``head``.

    ``head`` is the stored (last seq, last hash), or None for an empty log.
    """
    chain = AuditChain(key)
    previous = GENESIS
    expected = 1
    checked = 0
    for record in records:
        if record.seq != expected:
            return ChainReport(
                False, checked, expected, f"entry {expected} is missing (found {record.seq} next)"
            )
        if not hmac.compare_digest(chain.link(previous, record.seq, record.event), record.hash):
            return ChainReport(False, checked, record.seq, f"entry {record.seq} was altered")
        previous = record.hash
        expected += 1
        checked += 1
    last = expected - 1
    if head is None:
        if last:
            return ChainReport(False, checked, 1, "the chain head is missing")
        return ChainReport(True, 0)
    head_seq, head_hash = head
    if head_seq > last:
        return ChainReport(False, checked, last + 1, f"entries {last + 1}..{head_seq} were deleted")
    if head_seq < last or not hmac.compare_digest(head_hash, previous):
        return ChainReport(
            False,
            checked,
            head_seq + 1 if head_seq < last else head_seq,
            "the chain head does not match the last entry",
        )
    return ChainReport(True, checked)

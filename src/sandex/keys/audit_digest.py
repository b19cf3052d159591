"""Signed digests of the audit chain's head, after AWS CloudTrail's digest files.

The hash chain (:mod:`sandex.keys.audit`) catches an altered, inserted or reordered
entry, but its head is stored beside the entries: whoever can delete rows can cut off
the newest entries and move the head back. A digest is a small signed statement, "at
time T the chain ended at entry S, whose hash is H", written regularly to a directory
that can sit on another disk or host. Each digest names the previous one (its file
name and signature), so the digests form a chain of their own and one removed from the
middle is noticed. Removing the newest digests rolls the anchor back to an older one;
only keeping the directory out of an intruder's reach (another host) prevents that,
as with CloudTrail.

Digests are signed with HMAC-SHA256 under HKDF-SHA256(audit key, info
``sandex-audit-digest-v1``): a key of its own, which only the holder of the master key
can derive (the audit key is sealed under it) and which survives master-key rotation
(rotation re-wraps the audit key, it does not change it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sandex.keys.audit import GENESIS
from sandex.keys.errors import BadDigest

__all__ = [
    "ChainHead",
    "EMPTY_HEAD",
    "PreviousDigest",
    "AuditDigest",
    "DigestSigner",
    "DigestChainReport",
    "digest_file_name",
    "is_digest_name",
    "decode_digest",
    "check_digests",
    "head_problem",
]

_FORMAT: Final = "sandex-audit-digest-v1"
_ALGORITHM: Final = "HMAC-SHA256"
_NAME: Final = re.compile(r"audit-digest-(\d{12})\.json")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_HEX16: Final = re.compile(r"[0-9a-f]{16}")
_FIELDS: Final = frozenset(
    ("format", "number", "time", "ts", "head", "previous", "keyId", "algorithm", "signature")
)


class ChainHead(NamedTuple):
    """The chain's last entry: its sequence number and hash (0 and 32 zero bytes if empty)."""

    seq: int
    hash: bytes


EMPTY_HEAD: Final = ChainHead(0, GENESIS)


class PreviousDigest(NamedTuple):
    file: str
    signature: bytes


@dataclass(frozen=True)
class AuditDigest:
    number: int
    """1 for the first digest of a log, then one more for each."""
    ts: int
    """When it was signed, epoch milliseconds."""
    head: ChainHead
    previous: PreviousDigest | None
    key_id: str
    """A fingerprint of the signing key (safe to show): which database signed it."""
    signature: bytes

    @property
    def file_name(self) -> str:
        return digest_file_name(self.number)

    @property
    def time(self) -> str:
        return _iso(self.ts)

    def describe(self) -> str:
        """``digest 7 (2027-01-15T08:00:00.000Z)``, for messages."""
        return f"digest {self.number} ({self.time})"

    def encode(self) -> bytes:
        """The digest file's bytes: JSON, one field a line, signature last."""
        previous = None
        if self.previous is not None:
            previous = {"file": self.previous.file, "signature": self.previous.signature.hex()}
        document = {
            "format": _FORMAT,
            "number": self.number,
            "time": self.time,
            "ts": self.ts,
            "head": {"seq": self.head.seq, "hash": self.head.hash.hex()},
            "previous": previous,
            "keyId": self.key_id,
            "algorithm": _ALGORITHM,
            "signature": self.signature.hex(),
        }
        return (json.dumps(document, indent=2) + "\n").encode("ascii")


def digest_file_name(number: int) -> str:
    """``audit-digest-000000000007.json``: sorts by number, one name per number."""
    return f"audit-digest-{number:012d}.json"


def is_digest_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def _iso(ts: int) -> str:
    moment = datetime.fromtimestamp(ts / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts % 1000:03d}Z"


def _signed_bytes(
    number: int, ts: int, head: ChainHead, previous: PreviousDigest | None, key_id: str
) -> bytes:
    """What the signature covers: the ASCII literal of every field (as in the chain)."""
    prev = (previous.file, previous.signature.hex()) if previous is not None else None
    return ascii((_FORMAT, number, ts, head.seq, head.hash.hex(), prev, key_id)).encode("ascii")


class DigestSigner:
    """Signs and verifies digests under the key derived from the audit key."""

    def __init__(self, audit_key: bytes) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=_FORMAT.encode()
        ).derive(audit_key)
        fingerprint = hashlib.sha256(b"sandex-audit-digest-key-id:" + self._key).digest()
        self.key_id = fingerprint[:8].hex()

    def _mac(self, data: bytes) -> bytes:
        return hmac.digest(self._key, data, "sha256")

    def next(self, previous: AuditDigest | None, head: ChainHead, now: int) -> AuditDigest:
        """The digest after ``previous`` (the first one when None), recording ``head``."""
        number = 1 if previous is None else previous.number + 1
        link = None
        if previous is not None:
            link = PreviousDigest(previous.file_name, previous.signature)
        signature = self._mac(_signed_bytes(number, now, head, link, self.key_id))
        return AuditDigest(number, now, head, link, self.key_id, signature)

    def verify(self, digest: AuditDigest) -> None:
        """Return if ``digest`` was signed with this key unchanged; else raise BadDigest."""
        if digest.key_id != self.key_id:
            raise BadDigest(
                f"{digest.file_name} was signed with another key (id {digest.key_id}, this"
                f" database's is {self.key_id}): it belongs to another database"
            )
        expected = self._mac(
            _signed_bytes(digest.number, digest.ts, digest.head, digest.previous, digest.key_id)
        )
        if not hmac.compare_digest(expected, digest.signature):
            raise BadDigest(f"{digest.file_name} was forged or altered: its signature is wrong")


def _int(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("not a whole number")
    return value


def _hex(value: object, pattern: re.Pattern[str]) -> bytes:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError("not lower-case hex of the right length")
    return bytes.fromhex(value)


def decode_digest(name: str, data: bytes) -> AuditDigest:
    """Parse the file ``name`` holding ``data``; BadDigest if it is not a well-formed
    digest of that name (the signature is checked by :meth:`DigestSigner.verify`)."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or set(document) != _FIELDS:
            raise ValueError("unexpected fields")
        if document["format"] != _FORMAT or document["algorithm"] != _ALGORITHM:
            raise ValueError("unknown format")
        head = document["head"]
        if not isinstance(head, dict) or set(head) != {"seq", "hash"}:
            raise ValueError("malformed head")
        previous = document["previous"]
        link = None
        if previous is not None:
            if not isinstance(previous, dict) or set(previous) != {"file", "signature"}:
                raise ValueError("malformed previous")
            if not isinstance(previous["file"], str):
                raise ValueError("malformed previous file")
            link = PreviousDigest(previous["file"], _hex(previous["signature"], _HEX64))
        key_id = document["keyId"]
        if not isinstance(key_id, str) or not _HEX16.fullmatch(key_id):
            raise ValueError("malformed key id")
        digest = AuditDigest(
            _int(document["number"]),
            _int(document["ts"]),
            ChainHead(_int(head["seq"]), _hex(head["hash"], _HEX64)),
            link,
            key_id,
            _hex(document["signature"], _HEX64),
        )
        if document["time"] != digest.time:
            raise ValueError("time does not match ts")
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        raise BadDigest(f"{name} is not a well-formed audit digest") from None
    if digest.file_name != name:
        raise BadDigest(f"{name} holds digest {digest.number}: it was renamed")
    return digest


@dataclass(frozen=True)
class DigestChainReport:
    digests: tuple[AuditDigest, ...]
    """The digests that verify, oldest first."""
    problems: tuple[str, ...]
    """One sentence per problem: forged or altered files, gaps, a head that went back."""

    @property
    def newest(self) -> AuditDigest | None:
        return self.digests[-1] if self.digests else None


def check_digests(signer: DigestSigner, files: Sequence[tuple[str, bytes]]) -> DigestChainReport:
    """Verify every digest file (name, bytes) and the chain they form.

    Names that are not digest names are ignored. The report lists the valid digests and
    a problem for each file that does not verify, each digest missing before a present
    one, each digest that does not name its predecessor, and each head that went back.
    """
    problems: list[str] = []
    valid: dict[int, AuditDigest] = {}
    numbers: list[int] = []
    for name, data in sorted(files):
        match = _NAME.fullmatch(name)
        if match is None:
            continue
        numbers.append(int(match.group(1)))
        try:
            digest = decode_digest(name, data)
            signer.verify(digest)
        except BadDigest as exc:
            problems.append(f"audit digest {exc}")
            continue
        valid[digest.number] = digest
    expected = 1
    for number in numbers:
        if number > expected:
            missing = digest_file_name(expected)
            if number - expected > 1:
                missing += f" .. {digest_file_name(number - 1)}"
            problems.append(
                f"the audit digest chain is broken: {missing} missing before"
                f" {digest_file_name(number)}"
            )
        expected = number + 1
    for number, digest in valid.items():
        before = valid.get(number - 1)
        if before is None:
            continue
        if digest.previous != PreviousDigest(before.file_name, before.signature):
            problems.append(
                f"the audit digest chain is broken: {digest.file_name} does not follow"
                f" {before.file_name}"
            )
        elif digest.head.seq < before.head.seq or (
            digest.head.seq == before.head.seq and digest.head.hash != before.head.hash
        ):
            problems.append(
                f"the audit log was cut between {before.describe()} (entry {before.head.seq})"
                f" and {digest.describe()} (entry {digest.head.seq})"
            )
    return DigestChainReport(tuple(valid[n] for n in sorted(valid)), tuple(problems))


def head_problem(digest: AuditDigest, last_seq: int, hash_at: bytes | None) -> str | None:
    """Compare a chain that ends at ``last_seq`` with ``digest``; ``hash_at`` is the
    chain's hash of entry ``digest.head.seq`` (None when there is no such entry).

    None when the chain holds everything the digest recorded, unchanged; else the
    problem: a wiped log, a truncated one, or a head that was rewound and rebuilt.
    """
    recorded = digest.head.seq
    if last_seq < recorded:
        if last_seq == 0:
            return (
                f"the audit log was wiped: {digest.describe()} recorded {recorded} entries,"
                " the log has none"
            )
        return (
            f"the audit log was truncated: {digest.describe()} recorded entries up to"
            f" {recorded}, the log ends at {last_seq} ({recorded - last_seq} newest deleted)"
        )
    expected = GENESIS if recorded == 0 else hash_at
    if expected is None or not hmac.compare_digest(expected, digest.head.hash):
        return (
            f"the audit log's head was rewound: entry {recorded} is not the one"
            f" {digest.describe()} recorded (entries were deleted and others written since)"
        )
    return None

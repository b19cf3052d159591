"""Signed audit digests: signing, the file format, the digest chain, the head check."""

from __future__ import annotations

import dataclasses
import hmac
import json

import pytest

from sandex.keys import BadDigest
from sandex.keys.audit import GENESIS
from sandex.keys.audit_digest import (
    EMPTY_HEAD,
    AuditDigest,
    ChainHead,
    DigestSigner,
    check_digests,
    decode_digest,
    digest_file_name,
    head_problem,
    is_digest_name,
)

KEY = b"a" * 32
NOW = 1_800_000_000_000
SIGNER = DigestSigner(KEY)


def head(seq: int) -> ChainHead:
    return ChainHead(seq, bytes([seq % 256]) * 32) if seq else EMPTY_HEAD


def series(*seqs: int, signer: DigestSigner = SIGNER) -> list[AuditDigest]:
    out: list[AuditDigest] = []
    for n, seq in enumerate(seqs):
        out.append(signer.next(out[-1] if out else None, head(seq), NOW + n * 300_000))
    return out


def files(digests: list[AuditDigest]) -> list[tuple[str, bytes]]:
    return [(d.file_name, d.encode()) for d in digests]


def test_a_digest_round_trips_through_its_file_and_verifies() -> None:
    first, second = series(0, 5)
    assert first.number == 1 and first.previous is None and first.head == EMPTY_HEAD
    assert second.previous == (first.file_name, first.signature)
    assert second.file_name == "audit-digest-000000000002.json" and is_digest_name("x") is False
    decoded = decode_digest(second.file_name, second.encode())
    assert decoded == second
    SIGNER.verify(decoded)
    document = json.loads(second.encode())
    assert document["time"] == "2027-01-15T08:05:00.000Z"
    assert document["head"] == {"seq": 5, "hash": (b"\x05" * 32).hex()}


def test_the_signing_key_is_derived_not_the_audit_key_itself() -> None:
    (digest,) = series(3)
    plain = hmac.digest(KEY, digest.encode(), "sha256")
    assert digest.signature != plain
    assert DigestSigner(KEY).key_id == SIGNER.key_id != DigestSigner(b"b" * 32).key_id


@pytest.mark.parametrize(
    "change",
    [
        {"number": 3},
        {"ts": NOW + 1},
        {"head": ChainHead(4, b"\x04" * 32)},
        {"head": ChainHead(5, b"\x06" * 32)},
        {"previous": None},
        {"signature": bytes(32)},
    ],
)
def test_any_changed_field_breaks_the_signature(change: dict[str, object]) -> None:
    _, second = series(0, 5)
    forged = dataclasses.replace(second, **change)  # type: ignore[arg-type]
    with pytest.raises(BadDigest, match="forged or altered"):
        SIGNER.verify(forged)


def test_a_digest_of_another_database_is_named_as_such() -> None:
    (other,) = series(1, signer=DigestSigner(b"b" * 32))
    with pytest.raises(BadDigest, match="another database"):
        SIGNER.verify(other)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(extra=1),
        lambda d: d.update(number="2"),
        lambda d: d.update(number=True),
        lambda d: d.update(ts=-1),
        lambda d: d.update(ts=10**17),
        lambda d: d.update(ts=10**30),
        lambda d: d.update(time="yesterday"),
        lambda d: d.update(algorithm="none"),
        lambda d: d["head"].update(hash="00"),
        lambda d: d["head"].pop("seq"),
        lambda d: d.update(previous={"file": 1, "signature": "00" * 32}),
        lambda d: d.update(previous=[]),
        lambda d: d.update(keyId="XYZ"),
        lambda d: d.update(head=[]),
    ],
)
def test_a_malformed_file_is_refused(edit: object) -> None:
    _, second = series(0, 5)
    document = json.loads(second.encode())
    edit(document)  # type: ignore[operator]
    with pytest.raises(BadDigest, match="not a well-formed audit digest"):
        decode_digest(second.file_name, json.dumps(document).encode())
    with pytest.raises(BadDigest, match="not a well-formed"):
        decode_digest(second.file_name, b"\xff not json")


def test_a_renamed_file_is_refused() -> None:
    (first,) = series(0)
    with pytest.raises(BadDigest, match="renamed"):
        decode_digest(digest_file_name(9), first.encode())


def test_an_intact_digest_chain_reports_no_problem_and_ignores_other_files() -> None:
    digests = series(0, 3, 3, 10)
    report = check_digests(SIGNER, [*files(digests), (".tmp", b"x"), ("README", b"y")])
    assert report.problems == () and report.digests == tuple(digests)
    assert report.newest == digests[-1]
    assert check_digests(SIGNER, []).newest is None


def test_a_tampered_digest_is_reported_and_the_newest_valid_one_is_used() -> None:
    digests = series(0, 3, 10)
    stored = files(digests)
    document = json.loads(stored[2][1])
    document["head"]["seq"] = 4  # roll the anchor back, to hide a truncation
    stored[2] = (stored[2][0], json.dumps(document).encode())
    report = check_digests(SIGNER, stored)
    assert report.problems == (
        "audit digest audit-digest-000000000003.json was forged or altered: its signature is wrong",
    )
    assert report.newest == digests[1]


def test_digests_missing_from_the_chain_are_named() -> None:
    digests = series(0, 1, 2, 3, 4, 5)
    stored = files(digests)
    report = check_digests(SIGNER, [stored[0], stored[3], stored[5]])
    assert report.problems == (
        "the audit digest chain is broken: audit-digest-000000000002.json .."
        " audit-digest-000000000003.json missing before audit-digest-000000000004.json",
        "the audit digest chain is broken: audit-digest-000000000005.json missing before"
        " audit-digest-000000000006.json",
    )
    assert check_digests(SIGNER, stored[1:]).problems == (
        "the audit digest chain is broken: audit-digest-000000000001.json missing before"
        " audit-digest-000000000002.json",
    )


def test_a_digest_replaced_by_another_signed_one_breaks_the_chain() -> None:
    a = series(0, 3, 10)
    b = series(0, 4)  # same key, another history: its digest 2 does not precede a's 3
    report = check_digests(SIGNER, [*files(a[:1]), *files(b[1:]), *files(a[2:])])
    assert report.problems == (
        "the audit digest chain is broken: audit-digest-000000000003.json does not follow"
        " audit-digest-000000000002.json",
    )


@pytest.mark.parametrize("later", [ChainHead(3, b"\x03" * 32), ChainHead(7, b"\x09" * 32)])
def test_a_head_that_went_back_between_digests_is_a_cut(later: ChainHead) -> None:
    first, second = series(0, 7)
    third = SIGNER.next(second, later, NOW + 600_000)
    report = check_digests(SIGNER, files([first, second, third]))
    assert len(report.problems) == 1
    assert report.problems[0].startswith("the audit log was cut between digest 2")


def test_head_problem_names_truncation_wipe_and_rewind() -> None:
    (digest,) = series(10)
    recorded = digest.head.hash
    assert head_problem(digest, 10, recorded) is None
    assert head_problem(digest, 25, recorded) is None  # more written since: fine
    assert "truncated" in (head_problem(digest, 7, None) or "")
    assert "3 newest deleted" in (head_problem(digest, 7, None) or "")
    assert "wiped" in (head_problem(digest, 0, None) or "")
    assert "rewound" in (head_problem(digest, 12, b"\x00" * 32) or "")
    assert "rewound" in (head_problem(digest, 12, None) or "")
    (empty,) = series(0)
    assert head_problem(empty, 0, None) is None and empty.head.hash == GENESIS

"""Signed audit digests against the attacks of issue 9 (finding 5): the chain's tail cut
off with the stored head moved back, both audit tables wiped, a digest forged or
removed. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat

import pytest
from sqlalchemy import select, update

from conftest import NOW
from sandex.bootstrap import Sandex, open_sandex
from sandex.config import Settings
from sandex.keys.audit_digest import EMPTY_HEAD
from sandex.service import Actor
from sandex.service.errors import AuditDigestProblem
from sandex.storage.audit_digests import DigestDirectory
from sandex.storage.tables import audit_head, audit_log
from support import make_key, make_user

MINUTE = 60_000


def add_events(sx: Sandex, n: int, *, now: int = NOW) -> None:
    """``n`` audit entries: keys created for the first user (one event apiece)."""
    user = sx.users.all()[0]
    for i in range(n):
        make_key(sx, user, now=now, label=f"k{now}-{i}")


def entries(sx: Sandex) -> int:
    head = sx.audit.verify()
    assert head.ok
    return head.checked


def cut_tail(sx: Sandex, n: int) -> None:
    """The attack: delete the newest ``n`` rows and copy the new last hash into the head."""
    with sx.db.begin() as conn:
        last = conn.execute(select(audit_head.c.seq)).scalar_one()
        conn.execute(audit_log.delete().where(audit_log.c.seq > last - n))
        new_last = conn.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        ).one()
        conn.execute(update(audit_head).values(seq=new_last.seq, hash=new_last.hash))


def digest_dir(sx: Sandex) -> DigestDirectory:
    return DigestDirectory(sx.settings.digest_dir)


@pytest.fixture
def anchored(sandex: Sandex) -> Sandex:
    """A log of 6 entries, the last 3 written after the first digest, then a second."""
    make_user(sandex, now=NOW)
    add_events(sandex, 2)
    assert sandex.audit.write_digest(NOW) is not None
    add_events(sandex, 3, now=NOW + MINUTE)
    second = sandex.audit.write_digest(NOW + 5 * MINUTE)
    assert second is not None and second.head.seq == entries(sandex) == 6
    return sandex


def test_cutting_the_tail_and_moving_the_head_back_is_caught(anchored: Sandex) -> None:
    cut_tail(anchored, 2)
    assert anchored.audit.verify().ok  # the chain alone cannot tell: this was the hole
    check = anchored.audit.check()
    assert not check.ok
    assert check.problems == (
        "the audit log was truncated: digest 2 (2027-01-15T08:05:00.000Z) recorded entries"
        " up to 6, the log ends at 4 (2 newest deleted)",
    )


def test_wiping_both_audit_tables_is_caught(anchored: Sandex) -> None:
    with anchored.db.begin() as conn:
        conn.execute(audit_log.delete())
        conn.execute(update(audit_head).values(seq=0, hash=bytes(32)))
    chain = anchored.audit.verify()
    assert chain.ok and chain.checked == 0  # "OK (0 entries)" before digests
    check = anchored.audit.check()
    assert not check.ok
    assert len(check.problems) == 1 and check.problems[0].startswith(
        "the audit log was wiped: digest 2"
    )


def test_a_cut_tail_regrown_by_new_entries_is_a_rewound_head(anchored: Sandex) -> None:
    cut_tail(anchored, 2)
    add_events(anchored, 3, now=NOW + 6 * MINUTE)  # the log is longer than the digest now
    assert entries(anchored) == 7
    (problem,) = anchored.audit.check().problems
    assert problem.startswith("the audit log's head was rewound: entry 6 is not the one digest 2")


def test_the_writer_refuses_to_sign_a_cut_log(anchored: Sandex) -> None:
    cut_tail(anchored, 2)
    with pytest.raises(AuditDigestProblem, match=r"truncated.*no digest written"):
        anchored.audit.write_digest(NOW + 10 * MINUTE)
    add_events(anchored, 3, now=NOW + 11 * MINUTE)
    with pytest.raises(AuditDigestProblem, match=r"rewound.*no digest written"):
        anchored.audit.write_digest(NOW + 12 * MINUTE)
    assert [n for n in digest_dir(anchored).names()] == [
        "audit-digest-000000000001.json",
        "audit-digest-000000000002.json",
    ]


def test_a_tampered_digest_fails_verification(anchored: Sandex) -> None:
    path = anchored.settings.digest_dir / "audit-digest-000000000002.json"
    document = json.loads(path.read_bytes())
    document["head"]["seq"] = 4  # hide the cut of the two newest entries
    path.write_text(json.dumps(document))
    cut_tail(anchored, 2)
    check = anchored.audit.check()
    assert check.problems[0] == (
        "audit digest audit-digest-000000000002.json was forged or altered: its signature is wrong"
    )
    assert check.newest is not None and check.newest.number == 1
    with pytest.raises(AuditDigestProblem, match="forged or altered"):
        anchored.audit.write_digest(NOW + 10 * MINUTE)


def test_a_digest_removed_from_the_middle_breaks_the_digest_chain(anchored: Sandex) -> None:
    add_events(anchored, 1, now=NOW + 7 * MINUTE)
    assert anchored.audit.write_digest(NOW + 10 * MINUTE) is not None
    (anchored.settings.digest_dir / "audit-digest-000000000002.json").unlink()
    (problem,) = anchored.audit.check().problems
    assert problem == (
        "the audit digest chain is broken: audit-digest-000000000002.json missing before"
        " audit-digest-000000000003.json"
    )


def test_removing_the_newest_digest_only_rolls_back_to_the_one_before(anchored: Sandex) -> None:
    """The documented limit (CloudTrail's too): whoever can delete digests can delete the
    newest ones, and the entries written after the digest left are no longer anchored.
    Keep the digest directory on another host."""
    (anchored.settings.digest_dir / "audit-digest-000000000002.json").unlink()
    cut_tail(anchored, 3)  # entries 4..6, written after digest 1: unnoticed
    check = anchored.audit.check()
    assert check.ok and check.newest is not None and check.newest.number == 1
    cut_tail(anchored, 1)  # entry 3, which digest 1 recorded: still caught
    (problem,) = anchored.audit.check().problems
    assert "truncated: digest 1" in problem


def test_no_digest_yet_is_not_ok_by_digests_but_not_a_failure(sandex: Sandex) -> None:
    check = sandex.audit.check()
    assert check.ok and check.newest is None and check.digests == 0
    assert check.location == str(sandex.settings.digest_dir)


def test_a_digest_is_written_only_when_the_head_moved(sandex: Sandex) -> None:
    first = sandex.audit.write_digest(NOW)
    assert first is not None and first.number == 1 and first.head == EMPTY_HEAD
    assert sandex.audit.write_digest(NOW + MINUTE) is None
    make_user(sandex, now=NOW)
    second = sandex.audit.write_digest(NOW + 2 * MINUTE)
    assert second is not None and second.head.seq == 1
    assert second.previous == (first.file_name, first.signature)
    assert sandex.audit.write_digest(NOW + 3 * MINUTE) is None
    check = sandex.audit.check()
    assert check.ok and check.digests == 2 and check.newest == second


def test_digest_files_are_private(sandex: Sandex) -> None:
    digest = sandex.audit.write_digest(NOW)
    assert digest is not None
    directory = sandex.settings.digest_dir
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / digest.file_name).stat().st_mode) == 0o600
    assert [p.name for p in directory.iterdir()] == [digest.file_name]  # no temporary left


def test_a_digest_number_is_never_overwritten(sandex: Sandex) -> None:
    store = digest_dir(sandex)
    assert store.add("audit-digest-000000000001.json", b"first")
    assert not store.add("audit-digest-000000000001.json", b"second")
    assert store.read("audit-digest-000000000001.json") == b"first"
    assert store.names() == ["audit-digest-000000000001.json"]


def test_an_unusable_digest_directory_is_one_clear_error(sandex: Sandex) -> None:
    sandex.settings.digest_dir.parent.mkdir(parents=True, exist_ok=True)
    sandex.settings.digest_dir.write_text("not a directory")
    with pytest.raises(AuditDigestProblem, match=r"cannot .* the audit digest directory"):
        sandex.audit.write_digest(NOW)
    (problem,) = sandex.audit.check().problems
    assert problem.startswith("cannot read the audit digest directory")


def test_digests_outlive_a_master_key_rotation(settings: Settings) -> None:
    with open_sandex(settings) as sx:
        make_user(sx, now=NOW)
        assert sx.audit.write_digest(NOW) is not None
        sx.master_keys.rotate(now=NOW + MINUTE, actor=Actor.operator())
    with open_sandex(settings) as sx:  # the old master key is gone from the key file
        assert sx.audit.write_digest(NOW + 2 * MINUTE) is not None
        check = sx.audit.check()
        assert check.ok and check.digests == 2

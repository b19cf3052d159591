"""The audit log's hash chain: building it, and catching every kind of tampering."""

from __future__ import annotations

import pytest

from sandex.keys.audit import (
    GENESIS,
    AuditChain,
    AuditEvent,
    AuditRecord,
    canonical,
    details_text,
    verify_chain,
)

KEY = b"k" * 32


def events(n: int) -> list[AuditEvent]:
    return [
        AuditEvent(
            ts=1_700_000_000_000 + i,
            event="auth",
            actor="user:1",
            user_id=1,
            key_prefix="sdxkABCD1234",
            ip=f"10.0.0.{i}",
            endpoint="GET /api/v3/account",
            outcome="allowed" if i % 2 else "denied",
            reason=None if i % 2 else "bad signature",
            details=details_text({"n": i}),
        )
        for i in range(1, n + 1)
    ]


def chain(evs: list[AuditEvent], key: bytes = KEY) -> tuple[list[AuditRecord], tuple[int, bytes]]:
    records, previous = [], GENESIS
    for seq, ev in enumerate(evs, start=1):
        previous = AuditChain(key).link(previous, seq, ev)
        records.append(AuditRecord(seq, ev, previous))
    head = (records[-1].seq, records[-1].hash) if records else None
    return records, head


def test_good_chain_verifies():
    records, head = chain(events(5))
    report = verify_chain(KEY, records, head)
    assert report.ok
    assert report.checked == 5
    assert report.first_bad_seq is None
    assert report.problem is None


def test_single_entry_chain():
    records, head = chain(events(1))
    assert verify_chain(KEY, records, head).ok


def test_empty_log_verifies():
    report = verify_chain(KEY, [], None)
    assert report.ok
    assert report.checked == 0


def test_verify_accepts_any_iterable():
    records, head = chain(events(3))
    assert verify_chain(KEY, iter(records), head).ok


def test_genesis_is_32_zero_bytes():
    assert bytes(32) == GENESIS
    records, _ = chain(events(1))
    assert records[0].hash == AuditChain(KEY).link(bytes(32), 1, records[0].event)


@pytest.mark.parametrize("field", ["ts", "event", "actor", "ip", "outcome", "reason", "details"])
def test_altered_field_reports_that_entry(field):
    records, head = chain(events(5))
    original = records[2].event
    value = getattr(original, field)
    changed = value + 1 if isinstance(value, int) else ("x" if value is None else value + "x")
    records[2] = records[2]._replace(event=original._replace(**{field: changed}))
    report = verify_chain(KEY, records, head)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert report.checked == 2
    assert "entry 3 was altered" in report.problem


def test_none_changed_to_empty_string_is_detected():
    evs = [e._replace(actor=None) for e in events(3)]
    records, head = chain(evs)
    records[1] = records[1]._replace(event=evs[1]._replace(actor=""))
    report = verify_chain(KEY, records, head)
    assert (report.ok, report.first_bad_seq) == (False, 2)


def test_altered_hash_reports_that_entry():
    records, head = chain(events(4))
    records[1] = records[1]._replace(hash=bytes(32))
    report = verify_chain(KEY, records, head)
    assert not report.ok
    assert report.first_bad_seq == 2


def test_deleted_middle_entry():
    records, head = chain(events(5))
    del records[2]
    report = verify_chain(KEY, records, head)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "entry 3 is missing" in report.problem


def test_deleted_middle_entry_renumbered_is_caught_by_the_hash():
    records, head = chain(events(5))
    del records[2]
    records = [r._replace(seq=i) for i, r in enumerate(records, start=1)]
    report = verify_chain(KEY, records, head)
    assert not report.ok
    assert report.first_bad_seq == 3


def test_deleted_first_entry():
    records, head = chain(events(3))
    report = verify_chain(KEY, records[1:], head)
    assert not report.ok
    assert report.first_bad_seq == 1


def test_deleted_last_entry_is_caught_by_the_head():
    records, head = chain(events(5))
    report = verify_chain(KEY, records[:-1], head)
    assert not report.ok
    assert report.first_bad_seq == 5
    assert report.checked == 4
    assert "deleted" in report.problem


def test_deleted_last_entries_and_everything():
    records, head = chain(events(5))
    report = verify_chain(KEY, records[:2], head)
    assert (report.ok, report.first_bad_seq) == (False, 3)
    assert "3..5" in report.problem
    report = verify_chain(KEY, [], head)
    assert (report.ok, report.first_bad_seq) == (False, 1)


def test_head_mismatch():
    records, (seq, _) = chain(events(3))
    report = verify_chain(KEY, records, (seq, bytes(32)))
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "head" in report.problem


def test_entry_appended_without_updating_the_head():
    _, head = chain(events(3))
    longer, _ = chain(events(4))
    report = verify_chain(KEY, longer, head)
    assert not report.ok
    assert report.first_bad_seq == 4


def test_missing_head_with_entries():
    records, _ = chain(events(2))
    report = verify_chain(KEY, records, None)
    assert not report.ok
    assert report.first_bad_seq == 1


def test_reordered_entries():
    records, head = chain(events(4))
    swapped = [records[0], records[2], records[1], records[3]]
    report = verify_chain(KEY, swapped, head)
    assert not report.ok
    assert report.first_bad_seq == 2


def test_reordered_events_keeping_seq_and_hash_slots():
    records, head = chain(events(4))
    swapped = [
        records[0],
        records[1]._replace(event=records[2].event),
        records[2]._replace(event=records[1].event),
        records[3],
    ]
    report = verify_chain(KEY, swapped, head)
    assert not report.ok
    assert report.first_bad_seq == 2


def test_forged_chain_without_the_key():
    records, head = chain(events(4))
    # an attacker rewrites entry 3 and re-hashes from there on, with a guessed key
    forged_events = [r.event for r in records]
    forged_events[2] = forged_events[2]._replace(outcome="allowed", reason=None)
    forged, forged_head = chain(forged_events, key=b"guessed-key")
    records = records[:2] + forged[2:]
    for head_ in (head, forged_head):
        report = verify_chain(KEY, records, head_)
        assert not report.ok
        assert report.first_bad_seq == 3


def test_whole_chain_under_another_key_fails_at_entry_1():
    records, head = chain(events(3), key=b"another-key")
    report = verify_chain(KEY, records, head)
    assert not report.ok
    assert report.first_bad_seq == 1


# -- canonical form -----------------------------------------------------------------------


def test_canonical_is_the_ascii_literal_of_tag_seq_and_fields():
    ev = AuditEvent(ts=5, event="revoke", reason="a', 'b")
    assert canonical(7, ev) == (
        b"('sandex-audit-v1', 7, 5, 'revoke', None, None, None, None, None, None, \"a', 'b\", None)"
    )


def ev(**fields) -> AuditEvent:
    return AuditEvent(ts=fields.pop("ts", 1), event=fields.pop("event", "x"), **fields)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (ev(reason="a|b"), ev(reason="a", details="b")),
        (ev(reason="a|1:b"), ev(reason="a", details="b")),
        (ev(reason="a|~"), ev(reason="a")),
        (ev(endpoint="GET /a", outcome="ok"), ev(endpoint="GET ", outcome="/aok")),
        (ev(ip="10.0.0.1|4:GET"), ev(ip="10.0.0.1", endpoint="GET")),
        (ev(actor="~"), ev(actor=None)),
        (ev(actor=""), ev(actor=None)),
        (ev(ts=12), ev(ts=1, event="2x")),
    ],
)
def test_canonical_differs_when_a_value_moves_between_adjacent_fields(a, b):
    assert a != b
    assert canonical(1, a) != canonical(1, b)
    assert AuditChain(KEY).link(GENESIS, 1, a) != AuditChain(KEY).link(GENESIS, 1, b)


def test_canonical_binds_the_sequence_number():
    ev = events(1)[0]
    assert canonical(1, ev) != canonical(2, ev)
    assert AuditChain(KEY).link(GENESIS, 1, ev) != AuditChain(KEY).link(GENESIS, 2, ev)


def test_canonical_handles_non_ascii_and_control_characters():
    ev = AuditEvent(ts=1, event="x", reason="café\x1f😀")
    assert canonical(1, ev).endswith(b"'caf\\xe9\\x1f\\U0001f600', None)")
    assert canonical(1, ev) != canonical(1, AuditEvent(ts=1, event="x", reason="cafe\x1f😀"))


def test_details_text_is_canonical_json():
    assert details_text({"b": 1, "a": [1, 2], "c": None}) == '{"a":[1,2],"b":1,"c":null}'
    assert details_text({"b": 1, "a": 2}) == details_text({"a": 2, "b": 1})

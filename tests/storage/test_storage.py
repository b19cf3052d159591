"""Storage against real SQLite and PostgreSQL: schema, round trips, the audit chain under
concurrency, and tamper detection."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import update

from conftest import NOW
from sandex.bootstrap import Sandex
from sandex.keys import AuditEvent, IpAllowlist, KeySettings, Mode, Permission, RiskPolicy
from sandex.keys.reference import parse_key_ref
from sandex.storage.tables import audit_log, metadata
from support import OPERATOR, make_key, make_user


def test_migrations_build_exactly_the_declared_schema(sandex: Sandex) -> None:
    with sandex.db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_reopening_an_existing_database_migrates_nothing_and_keeps_data(sandex: Sandex) -> None:
    from sandex.bootstrap import open_sandex

    user = make_user(sandex, now=NOW)
    with open_sandex(sandex.settings) as again:
        assert again.users.get(user.id).email == user.email
        assert again.secrets.pepper == sandex.secrets.pepper
        assert again.secrets.audit_key == sandex.secrets.audit_key


def test_every_key_field_survives_a_round_trip(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    settings = KeySettings(
        "full",
        Permission.READ | Permission.SPOT_TRADE | Permission.WITHDRAW,
        IpAllowlist.parse(["10.0.0.0/8", "2001:db8::1"]),
        NOW + 1000,
        RiskPolicy(frozenset({"BTCUSDT", "ETHUSDT"}), Decimal("1234.5"), 7, Mode.CANCEL_ONLY),
    )
    issued = sandex.keys.create(user.id, settings, now=NOW, actor=OPERATOR)
    stored = sandex.keys.find(parse_key_ref(str(issued.key.id)), actor=OPERATOR)
    assert stored == issued.key


def test_last_use_never_moves_backwards(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    key = make_key(sandex, user, now=NOW).key
    with sandex.uow() as uow:
        uow.keys.record_use([(key.id, NOW + 10, "10.0.0.2")])
        uow.keys.record_use([(key.id, NOW + 5, "10.0.0.1")])
        uow.commit()
    stored = sandex.keys.find(parse_key_ref(key.prefix), actor=OPERATOR)
    assert (stored.last_used_at, stored.last_used_ip) == (NOW + 10, "10.0.0.2")


def test_concurrent_writers_keep_one_unbroken_chain(sandex: Sandex) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                with sandex.uow() as uow:
                    uow.audit.append([AuditEvent(NOW + i, "test.event", reason=f"w{n}-{i}")])
                    uow.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = sandex.audit.verify()
    assert report.ok and report.checked == 100


@pytest.mark.parametrize("column", ["reason", "ts", "event", "ip", "hash"])
def test_editing_one_audit_row_is_detected_at_that_row(sandex: Sandex, column: str) -> None:
    user = make_user(sandex, now=NOW)
    for n in range(5):
        make_key(sandex, user, now=NOW, label=f"k{n}")
    assert sandex.audit.verify().ok
    values = {
        "reason": "nothing to see",
        "ts": NOW - 1,
        "event": "key.updated",
        "ip": "10.6.6.6",
        "hash": bytes(32),
    }
    with sandex.db.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values({column: values[column]}))
    report = sandex.audit.verify()
    assert not report.ok
    assert report.first_bad_seq == 3
    assert report.checked == 2


def test_deleting_the_newest_audit_rows_is_detected(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    make_key(sandex, user, now=NOW)
    make_key(sandex, user, now=NOW, label="second")
    with sandex.db.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq >= 2))
    report = sandex.audit.verify()
    assert not report.ok and report.first_bad_seq == 2
    assert "deleted" in (report.problem or "")

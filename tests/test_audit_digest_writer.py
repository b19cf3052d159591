"""The server's audit digests: written at start, on a timer when the head moved, and at
shutdown; a failure is one log line, and the next digest chains on from the last one."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import pytest

from conftest import NOW
from sandex.bootstrap import Sandex, open_sandex
from sandex.config import Settings
from support import make_key, make_user, signed_request


def digest_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("audit-digest-*.json"))


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_server_signs_the_final_head_at_shutdown(settings: Settings) -> None:
    with open_sandex(settings) as sx:
        user = make_user(sx, now=NOW)
        key = make_key(sx, user, now=NOW)
        sx.background.start()  # the audit writer process too
        wait_for(lambda: digest_names(settings.digest_dir))  # the first, at start
        assert key.secret is not None
        for i in range(20):  # decisions handed to the writer process: written at close
            sx.auth.authenticate(
                signed_request(key.api_key, secret=key.secret, timestamp=NOW + i), NOW + i
            )
    with open_sandex(settings) as sx:
        check = sx.audit.check()
        assert check.ok and check.chain.checked == 22
        assert check.newest is not None and check.newest.head.seq == 22
        assert check.newest.number == 2


def test_the_timer_writes_a_digest_when_the_head_moved(settings: Settings) -> None:
    with open_sandex(settings) as sx:
        sx.background.start_audit_digests(interval=0.05)
        wait_for(lambda: len(digest_names(settings.digest_dir)) == 1)
        time.sleep(0.2)  # several ticks with nothing new: no new digest
        assert len(digest_names(settings.digest_dir)) == 1
        make_user(sx, now=NOW)
        wait_for(lambda: len(digest_names(settings.digest_dir)) == 2)
        newest = sx.audit.check().newest
        assert newest is not None and newest.head.seq == 1


def test_a_cli_without_start_background_writes_no_digest_at_close(settings: Settings) -> None:
    with open_sandex(settings) as sx:
        make_user(sx, now=NOW)
    assert not settings.digest_dir.exists()


def _failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "audit digest" in r.getMessage()]


def test_an_unusable_digest_directory_is_one_log_line_and_the_chain_goes_on(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The directory's disk is gone (here: its path is a plain file for a while)."""
    caplog.set_level(logging.INFO)
    with open_sandex(settings) as sx:
        assert sx.background.write_audit_digest()  # digest 1
        make_user(sx, now=NOW)
        away = settings.digest_dir.with_name("unmounted")
        settings.digest_dir.rename(away)
        settings.digest_dir.write_text("")
        assert not sx.background.write_audit_digest()
        (record,) = _failures(caplog)
        assert record.levelno == logging.ERROR and record.exc_info is None
        assert record.getMessage() == (
            f"audit digest not written: cannot read the audit digest directory"
            f" {settings.digest_dir}: Not a directory"
        )
        assert "\n" not in record.getMessage()
        settings.digest_dir.unlink()
        away.rename(settings.digest_dir)
        assert sx.background.write_audit_digest()  # digest 2, chained to 1: nothing half-written
        check = sx.audit.check()
        assert check.ok and check.digests == 2
        assert digest_names(settings.digest_dir) == [
            "audit-digest-000000000001.json",
            "audit-digest-000000000002.json",
        ]


def test_the_background_writer_logs_a_failure_without_a_traceback(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = dataclasses.replace(settings, audit_digest_dir=settings.data_dir / "file")
    blocked.data_dir.mkdir(parents=True)
    (blocked.data_dir / "file").write_text("")
    caplog.set_level(logging.INFO)
    with open_sandex(blocked) as sx:
        sx.background.start_audit_digests(interval=3600)
        wait_for(lambda: _failures(caplog))
    records = _failures(caplog)
    assert len(records) == 2  # at start and at shutdown, one line each
    assert all(r.exc_info is None and r.levelno == logging.ERROR for r in records)


def test_a_sandex_without_digest_writing_still_closes(sandex: Sandex) -> None:
    sandex.close()
    sandex.close()

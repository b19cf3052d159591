"""A real ``sandex serve`` signs the audit chain's head at start and again when it is
stopped, so a stopped server leaves nothing unanchored; it prints no traceback."""

from __future__ import annotations

import signal

from e2e.conftest import Launch
from support import make_user

NOW = 1_800_000_000_000


def test_sandex_serve_writes_an_audit_digest_at_shutdown(start_server: Launch) -> None:
    server = start_server()
    digests = server.settings().digest_dir
    with server.open() as sx:
        at_start = sx.audit.check()
        make_user(sx, "late@example.com", now=NOW)  # written after the start's digest
        head = sx.audit.verify().checked
    assert at_start.newest is not None and at_start.newest.head.seq < head
    assert server.stop() in (0, -signal.SIGTERM), server.log_tail()  # not SIGKILLed
    with server.open() as sx:
        check = sx.audit.check()
    assert check.ok and check.newest is not None
    assert check.newest.head.seq == head and check.newest.number == at_start.newest.number + 1
    assert sorted(p.name for p in digests.iterdir())[-1] == check.newest.file_name
    assert "Traceback" not in server.log.read_text(), server.log_tail()

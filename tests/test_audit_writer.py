"""The audit writer process: decisions handed over are written, at shutdown too, and a
server whose writer died writes them itself."""

from __future__ import annotations

import pytest

from conftest import NOW
from sandex.bootstrap import Sandex, open_sandex
from sandex.config import Settings
from sandex.service import Actor, SignatureInvalid
from support import make_key, make_user, signed_request


def _decide(sx: Sandex, api_key: str, secret: str, n: int) -> None:
    for i in range(n):
        sx.auth.authenticate(signed_request(api_key, secret=secret, timestamp=NOW + i), NOW + i)
    with pytest.raises(SignatureInvalid):
        sx.auth.authenticate(signed_request(api_key, secret="x" * 64, timestamp=NOW), NOW)


def test_decisions_handed_to_the_writer_are_in_the_chain_after_shutdown(settings: Settings) -> None:
    with open_sandex(settings) as sx:
        user = make_user(sx, now=NOW)
        key = make_key(sx, user, now=NOW)
        sx.background.start()
        assert sx.background.audit_writer is not None and sx.background.audit_writer.alive
        assert key.secret is not None
        _decide(sx, key.api_key, key.secret, 50)
    with open_sandex(settings) as sx:
        events = [r.event for r in sx.audit.tail(limit=200, key_prefix=key.key.prefix)]
        assert sum(e.event == "auth.allowed" for e in events) == 50
        assert sum(e.event == "auth.denied" for e in events) == 1
        assert sx.audit.verify().ok
        (stored,) = sx.keys.for_user(user.id, actor=Actor.operator())
        assert stored.last_used_at is not None and stored.last_used_ip == "127.0.0.1"


def test_a_dead_writer_means_writing_in_process(settings: Settings) -> None:
    with open_sandex(settings) as sx:
        user = make_user(sx, now=NOW)
        key = make_key(sx, user, now=NOW)
        sx.background.start()
        writer = sx.background.audit_writer
        assert writer is not None
        writer._process.kill()
        writer._process.join(10)
        assert key.secret is not None
        _decide(sx, key.api_key, key.secret, 5)
    with open_sandex(settings) as sx:
        events = [r.event.event for r in sx.audit.tail(limit=50, key_prefix=key.key.prefix)]
        assert events.count("auth.allowed") == 5 and events.count("auth.denied") == 1
        assert sx.audit.verify().ok

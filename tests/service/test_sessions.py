"""Management sessions: short-lived access, single-use refresh, log-out."""

from __future__ import annotations

import pytest

from conftest import NOW
from sandex.accounts.sessions import ACCESS_TTL_MS, REFRESH_TTL_MS
from sandex.bootstrap import Sandex
from sandex.service.sessions import SessionInvalid
from support import PASSWORD, make_user


def test_access_token_expires_and_refresh_renews_it(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    issued = sandex.sessions.login(
        user.email, PASSWORD, now=NOW, source="1.2.3.4", second_factor=None
    )
    assert sandex.sessions.authenticate(issued.access_token, now=NOW).user_id == user.id
    with pytest.raises(SessionInvalid):
        sandex.sessions.authenticate(issued.access_token, now=NOW + ACCESS_TTL_MS)
    later = NOW + ACCESS_TTL_MS + 1
    renewed = sandex.sessions.refresh(issued.refresh_token, now=later, source="1.2.3.4")
    assert sandex.sessions.authenticate(renewed.access_token, now=later).id == issued.session.id
    with pytest.raises(SessionInvalid):
        sandex.sessions.refresh(renewed.refresh_token, now=later + REFRESH_TTL_MS, source="1.2.3.4")


def test_reused_refresh_token_ends_the_session_and_is_audited(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    issued = sandex.sessions.login(
        user.email, PASSWORD, now=NOW, source="1.2.3.4", second_factor=None
    )
    renewed = sandex.sessions.refresh(issued.refresh_token, now=NOW + 1, source="1.2.3.4")
    with pytest.raises(SessionInvalid, match="already used"):
        sandex.sessions.refresh(issued.refresh_token, now=NOW + 2, source="6.6.6.6")
    with pytest.raises(SessionInvalid):
        sandex.sessions.authenticate(renewed.access_token, now=NOW + 3)
    with pytest.raises(SessionInvalid):
        sandex.sessions.refresh(renewed.refresh_token, now=NOW + 3, source="1.2.3.4")
    events = [r.event for r in sandex.audit.tail(limit=20, user_id=user.id)]
    reused = [e for e in events if e.event == "session.refresh_reused"]
    assert reused and reused[0].ip == "6.6.6.6" and reused[0].outcome == "denied"


def test_logout_ends_the_session(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    issued = sandex.sessions.login(
        user.email, PASSWORD, now=NOW, source="1.2.3.4", second_factor=None
    )
    sandex.sessions.logout(issued.session, now=NOW + 1, source="1.2.3.4")
    with pytest.raises(SessionInvalid):
        sandex.sessions.authenticate(issued.access_token, now=NOW + 2)
    with pytest.raises(SessionInvalid):
        sandex.sessions.refresh(issued.refresh_token, now=NOW + 2, source="1.2.3.4")


@pytest.mark.parametrize("token", ["", "Bearer x", "sdxr_" + "a" * 43, "sdxa_" + "a" * 200])
def test_malformed_tokens_are_refused(sandex: Sandex, token: str) -> None:
    with pytest.raises(SessionInvalid):
        sandex.sessions.authenticate(token, now=NOW)

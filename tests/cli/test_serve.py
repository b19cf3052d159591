"""``sandex serve``'s first-run demo (the server itself is driven in tests/e2e)."""

from __future__ import annotations

import pytest

from sandex.bootstrap import Sandex
from sandex.cli.serve import DEMO_EMAIL, _create_demo
from sandex.keys import Permission
from sandex.service import Actor


def test_first_run_creates_a_demo_user_and_key_printed_once(
    sandex: Sandex, capsys: pytest.CaptureFixture[str]
) -> None:
    _create_demo(sandex, "http://127.0.0.1:8765")
    shown = capsys.readouterr().out
    user = sandex.users.find(DEMO_EMAIL)
    (key,) = sandex.keys.for_user(user.id, actor=Actor.operator())
    assert key.settings.permissions == Permission.READ | Permission.SPOT_TRADE
    assert key.settings.allowlist.entries == ("127.0.0.1", "::1")
    assert key.prefix in shown and "secret:" in shown and "password:" in shown
    assert 'BASE = "http://127.0.0.1:8765"' in shown and "ccxt.binance(" in shown
    assert "<the secret above>" in shown  # the snippet does not repeat the secret

    _create_demo(sandex, "http://127.0.0.1:8765")  # second run: nothing new, nothing shown
    assert capsys.readouterr().out == ""
    assert len(sandex.keys.for_user(user.id, actor=Actor.operator())) == 1

"""``sandex serve``'s first-run demo (the server itself is driven in tests/e2e)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import uvicorn

from sandex.accounts import SignUpMode
from sandex.bootstrap import Sandex
from sandex.cli import run
from sandex.cli.serve import DEMO_EMAIL, _create_demo
from sandex.config import ConfigError, Settings
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


@pytest.mark.parametrize(
    ("host", "given", "signup"),
    [
        ("127.0.0.1", "", ""),  # unset: open, as make run's demo needs
        ("::1", "", ""),
        ("localhost", "", ""),
        ("0.0.0.0", "", "invite"),  # noqa: S104 (reachable by others: invitation unless chosen)
        ("192.0.2.10", "", "invite"),
        ("0.0.0.0", "open", "open"),  # noqa: S104 (the operator's choice stands)
        ("127.0.0.1", "closed", "closed"),
    ],
)
def test_serve_opens_sign_up_on_loopback_only_unless_told(
    host: str,
    given: str,
    signup: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("SANDEX_DATABASE_URL", "SANDEX_DATABASE_SCHEMA", "SANDEX_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SANDEX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SANDEX_SIGNUP", given)  # restored afterwards, as serve changes it
    served: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: served.append(os.environ["SANDEX_SIGNUP"]))
    assert run(["serve", "--host", host]) == 0
    assert served == [signup]
    assert Settings.from_env().signup is SignUpMode(signup or "open")
    assert ("invitation code" in capsys.readouterr().out) == (signup == "invite" and not given)


def test_an_unknown_sign_up_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SANDEX_SIGNUP must be one of open, invite, closed"):
        Settings.from_env({"SANDEX_SIGNUP": "public"}, data_dir=tmp_path)

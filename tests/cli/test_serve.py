"""``sandex serve``'s first-run demo (the server itself is driven in tests/e2e)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import uvicorn

from sandex.accounts import SignUpMode
from sandex.bootstrap import Sandex
from sandex.cli import run
from sandex.cli.recipes import CCXT, SANDEX_URLS
from sandex.cli.serve import DEMO_EMAIL, _create_demo
from sandex.config import ConfigError, Settings
from sandex.keys import Permission
from sandex.service import Actor
from support import Cli


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
    assert SANDEX_URLS in shown and CCXT in shown  # the README's recipe, at this address
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


# -- the data directory ------------------------------------------------------------------


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(capsys, monkeypatch)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """``sandex serve`` up to the point where uvicorn would start: the calls it made."""
    for name in [n for n in os.environ if n.startswith("SANDEX_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SANDEX_DATA_DIR", "unused")  # restored after the test: serve sets it
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    return calls


@pytest.mark.parametrize(
    "where", [["serve", "--data-dir", "{dir}"], ["--data-dir", "{dir}", "serve"]]
)
def test_serve_takes_the_data_directory_before_or_after_the_command(
    served: list[dict[str, object]], tmp_path: Path, cli: Cli, where: list[str]
) -> None:
    data = tmp_path / "data"
    cli.ok(*(arg.format(dir=data) for arg in where), "--port", "8799")
    assert len(served) == 1 and served[0]["port"] == 8799
    assert (data / "sandex.db").exists() and (data / "master.key").exists()
    assert os.environ["SANDEX_DATA_DIR"] == str(data)  # what the workers open


def test_serve_refuses_two_different_data_directories(
    served: list[dict[str, object]], tmp_path: Path, cli: Cli
) -> None:
    line = cli.fails("--data-dir", str(tmp_path / "a"), "serve", "--data-dir", str(tmp_path / "b"))
    assert "--data-dir" in line
    assert served == [] and not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("command", [["serve"], ["init"]])
def test_a_data_directory_open_to_other_users_is_warned_about(
    served: list[dict[str, object]], tmp_path: Path, cli: Cli, command: list[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    code, _, err = cli("--data-dir", str(data), *command)
    assert code == 0 and "warning" not in err

    data.chmod(0o755)
    code, _, err = cli("--data-dir", str(data), *command)
    assert code == 0
    assert f"warning: the data directory {data} is open to other users (mode 755)" in err
    assert f"chmod 700 {data}" in err
    assert stat.S_IMODE((data / "sandex.db").stat().st_mode) == 0o600

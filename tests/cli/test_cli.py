"""The ``sandex`` command, as an operator uses it."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest

from conftest import PG_URL
from sandex.bootstrap import open_sandex
from sandex.config import Settings
from sandex.keys import is_api_key, is_secret
from sandex.keys.material import load_private_key
from support import Cli, signed_request

PASSWORD = "correct horse battery staple"


@pytest.fixture
def cli(
    backend: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Cli:
    for name in ("SANDEX_DATABASE_URL", "SANDEX_DATABASE_SCHEMA", "SANDEX_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SANDEX_DATA_DIR", str(tmp_path / "data"))
    if backend == "postgresql":
        monkeypatch.setenv("SANDEX_DATABASE_URL", PG_URL)
        monkeypatch.setenv("SANDEX_DATABASE_SCHEMA", request.getfixturevalue("pg_schema"))
    return Cli(capsys, monkeypatch)


@pytest.fixture
def alice(cli: Cli) -> str:
    cli.ok("users", "create", "alice@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    return "alice@example.com"


def _counts(cli: Cli) -> tuple[int, int]:
    """(keys, audit entries) as the CLI reports them."""
    keys = cli.json("keys", "list", "--user", "alice@example.com")
    entries = cli.json("audit", "tail", "-n", "10000")
    assert isinstance(keys, list) and isinstance(entries, list)
    return len(keys), len(entries)


def test_the_key_lifecycle_from_the_command_line(cli: Cli, alice: str) -> None:
    created = cli.json(
        "keys",
        "create",
        "--user",
        alice,
        "--label",
        "bot",
        "--permissions",
        "read,spot_trade",
        "--ip",
        "10.0.0.0/24,127.0.0.1",
        "--symbols",
        "btcusdt,ETHUSDT",
        "--max-notional",
        "500",
        "--max-open-orders",
        "3",
        "--expires",
        "90d",
    )
    assert isinstance(created, dict)
    assert is_api_key(created["apiKey"]) and is_secret(created["secretKey"])
    assert created["permissions"] == ["READ", "SPOT_TRADE"]
    assert created["ips"] == ["10.0.0.0/24", "127.0.0.1"] and created["ipRestrict"] is True
    assert created["policy"] == {
        "mode": "NORMAL",
        "symbols": ["BTCUSDT", "ETHUSDT"],
        "maxNotional": "500",
        "maxOpenOrders": 3,
    }
    prefix = created["prefix"]

    listed = cli.json("keys", "list", "--user", alice)
    assert isinstance(listed, list) and [k["prefix"] for k in listed] == [prefix]
    assert created["secretKey"] not in json.dumps(listed)
    assert created["apiKey"] not in json.dumps(listed)
    shown = cli.json("keys", "show", prefix)
    assert isinstance(shown, dict) and shown["status"] == "ACTIVE"

    updated = cli.json(
        "keys",
        "update",
        prefix,
        "--label",
        "bot-2",
        "--no-ip",
        "--all-symbols",
        "--mode",
        "cancel_only",
    )
    assert isinstance(updated, dict)
    assert updated["label"] == "bot-2" and updated["ips"] == []
    assert updated["policy"]["mode"] == "CANCEL_ONLY" and updated["policy"]["symbols"] is None
    assert updated["tradingAuthorityExpirationTime"] is not None  # unrestricted now: it lapses

    rotated = cli.json("keys", "rotate", prefix, "--grace", "2h")
    assert isinstance(rotated, dict)
    assert rotated["apiKey"] != created["apiKey"] and is_secret(rotated["secretKey"])
    assert rotated["previous"]["prefix"] == prefix
    out = cli.ok("keys", "rotate", rotated["prefix"], "--grace", "0")
    assert "works until" in out
    newest = [k for k in cli.json("keys", "list", "--user", alice) if k["status"] == "ACTIVE"]
    assert len(newest) == 1 and newest[0]["prefix"] in out
    assert "froze" in cli.ok("keys", "freeze", newest[0]["prefix"])
    assert "revoked" in cli.ok("keys", "revoke", prefix)
    assert "audit chain intact: " in cli.ok("audit", "verify")
    assert "audit digest 1 " in cli.ok("audit", "digest")
    assert "audit chain OK: " in cli.ok("audit", "verify")
    events = cli.json("audit", "tail", "--key", prefix)
    assert isinstance(events, list)
    assert [e["event"] for e in events] == [
        "key.created",
        "key.updated",
        "key.rotated",
        "key.revoked",
    ]


def test_human_output_shows_the_secret_once_with_a_warning(cli: Cli, alice: str) -> None:
    out = cli.ok("keys", "create", "--user", alice, "--label", "bot")
    assert "Secret key  sdxs" in out and "shown this once" in out
    listing = cli.ok("keys", "list", "--user", alice)
    assert "sdxs" not in listing and "bot" in listing


def test_generate_keeps_the_private_key_in_a_0600_file(
    cli: Cli, alice: str, tmp_path: Path
) -> None:
    private_file = tmp_path / "bot-ed25519.pem"
    created = cli.json(
        "keys", "create", "--user", alice, "--label", "ed", "--generate", str(private_file)
    )
    assert isinstance(created, dict)
    assert created["type"] == "ED25519" and "secretKey" not in created
    assert stat.S_IMODE(private_file.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in private_file.read_text()
    # the key works with the private key the CLI wrote
    settings = Settings.from_env()
    with open_sandex(settings) as sx:
        now = sx.clock.now()
        request = signed_request(
            created["apiKey"], timestamp=now, private_key=load_private_key(private_file.read_text())
        )
        assert sx.auth.authenticate(request, now).key_prefix == created["prefix"]
    # an existing file is never overwritten, and nothing is created
    before = _counts(cli)
    line = cli.fails(
        "keys", "create", "--user", alice, "--label", "ed2", "--generate", str(private_file)
    )
    assert "already exists" in line
    assert _counts(cli) == before


def test_public_key_upload(cli: Cli, alice: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "rsa.pub").write_bytes(pem)
    created = cli.json(
        "keys",
        "create",
        "--user",
        alice,
        "--label",
        "rsa",
        "--type",
        "rsa",
        "--public-key",
        str(tmp_path / "rsa.pub"),
    )
    assert isinstance(created, dict) and created["type"] == "RSA" and "secretKey" not in created


def test_costly_rsa_keys_are_refused_at_create_and_rotate(
    cli: Cli, alice: str, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    good = rsa.generate_private_key(public_exponent=65537, key_size=3072).public_key()
    spki = (Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "good.pub").write_bytes(good.public_bytes(*spki))
    # a 3064-bit exponent on a real modulus: ~100x the verification cost of e=65537
    huge_e = rsa.RSAPublicNumbers((1 << 3063) | 1, good.public_numbers().n).public_key()
    (tmp_path / "huge-e.pub").write_bytes(huge_e.public_bytes(*spki))
    before = _counts(cli)
    line = cli.fails(
        "keys",
        "create",
        "--user",
        alice,
        "--label",
        "slow",
        "--type",
        "rsa",
        "--public-key",
        str(tmp_path / "huge-e.pub"),
    )
    assert line == "error: RSA public exponent must be 65537; this key's is a 3064-bit number"
    assert _counts(cli) == before
    created = cli.json(
        "keys",
        "create",
        "--user",
        alice,
        "--label",
        "rsa",
        "--public-key",
        str(tmp_path / "good.pub"),
    )
    assert isinstance(created, dict)
    line = cli.fails(
        "keys", "rotate", created["prefix"], "--public-key", str(tmp_path / "huge-e.pub")
    )
    assert line == "error: RSA public exponent must be 65537; this key's is a 3064-bit number"
    listed = cli.json("keys", "list", "--user", alice)
    assert isinstance(listed, list)
    assert [(k["prefix"], k["status"]) for k in listed] == [(created["prefix"], "ACTIVE")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--permissions", "read,spot_trade,moon"], "unknown permission moon"),
        (["--permissions", "read,withdraw"], "WITHDRAW requires an IP allowlist"),
        (["--ip", "10.0.0.300"], "not an IPv4/IPv6 address or CIDR range"),
        (["--ip", "10.0.0.5/24"], "did you mean 10.0.0.0/24"),
        (["--ip", ",".join(f"10.0.0.{n}" for n in range(31))], "at most 30"),
        (["--expires", "2001-01-01"], "in the past"),
        (["--expires", "next tuesday"], "not an ISO 8601 date"),
        (["--type", "dsa"], "unknown key type"),
        (["--type", "ed25519"], "needs --public-key"),
        (["--max-notional", "-5"], "positive"),
        (["--symbols", "BTC/USDT"], "invalid symbol"),
    ],
)
def test_bad_key_requests_say_what_is_wrong_and_write_nothing(
    cli: Cli,
    alice: str,
    args,
    message,
) -> None:
    before = _counts(cli)
    line = cli.fails("keys", "create", "--user", alice, "--label", "x", *args)
    assert message in line
    assert _counts(cli) == before


def test_more_bad_input(cli: Cli, alice: str, tmp_path: Path) -> None:
    cli.ok("keys", "create", "--user", alice, "--label", "bot")
    before = _counts(cli)
    assert "labelled 'bot'" in cli.fails("keys", "create", "--user", alice, "--label", "bot")
    (tmp_path / "not.pem").write_text("hello")
    assert "not a PEM public key" in cli.fails(
        "keys", "create", "--user", alice, "--label", "p", "--public-key", str(tmp_path / "not.pem")
    )
    assert "no user with e-mail" in cli.fails("keys", "list", "--user", "nobody@example.com")
    assert "no key" in cli.fails("keys", "revoke", "sdxkDoesNotExist")
    assert "'hello' is not a key: give its id" in cli.fails("keys", "show", "hello")
    assert "out of range" in cli.fails("keys", "freeze", "9" * 30)
    assert _counts(cli) == before
    assert "not a valid e-mail" in cli.fails(
        "users", "create", "not-an-email", "--password-stdin", stdin=PASSWORD
    )
    assert "at least 12" in cli.fails(
        "users", "create", "bob@example.com", "--password-stdin", stdin="short"
    )
    assert "already exists" in cli.fails(
        "users", "create", "ALICE@example.com", "--password-stdin", stdin=PASSWORD
    )


def test_two_factor_enrolment_from_the_command_line(cli: Cli, alice: str) -> None:
    enrolment = cli.json("users", "totp", "enable", alice)
    assert isinstance(enrolment, dict) and enrolment["uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrolment["secret"])
    wrong = "000000" if totp.now() != "000000" else "111111"
    assert "wrong 2FA code" in cli.fails("users", "totp", "confirm", alice, "--code", wrong)
    confirmed = cli.json("users", "totp", "confirm", alice, "--code", totp.now())
    assert isinstance(confirmed, dict) and len(confirmed["recoveryCodes"]) == 10
    assert "already enabled" in cli.fails("users", "totp", "enable", alice)
    out = cli.ok("users", "totp", "disable", alice, "--code", confirmed["recoveryCodes"][0])
    assert "2FA is off" in out


def test_the_qr_code_is_printed_for_enrolment(cli: Cli, alice: str) -> None:
    out = cli.ok("users", "totp", "enable", alice)
    assert "otpauth://totp/Sandex:alice%40example.com" in out
    assert "█" in out or "▀" in out  # a QR code drawn with block characters


@pytest.mark.parametrize("backend", ["sqlite"])
def test_audit_verify_names_the_edited_row(cli: Cli, alice: str, tmp_path: Path) -> None:
    for n in range(3):
        cli.ok("keys", "create", "--user", alice, "--label", f"k{n}")
    assert "4 entries verified" in cli.ok("audit", "verify")
    with sqlite3.connect(tmp_path / "data" / "sandex.db") as db:
        db.execute("update audit_log set reason = 'edited' where seq = 3")
    code, _, err = cli("audit", "verify")
    assert code == 1
    assert "BROKEN at entry 3" in err and "altered" in err


def test_audit_verify_catches_a_cut_tail_that_the_chain_alone_misses(
    cli: Cli, alice: str, tmp_path: Path
) -> None:
    """Issue 9, finding 5: delete the newest rows, copy the new last hash into the head."""
    code, out, err = cli("audit", "verify")
    assert code == 0 and "audit chain intact: 1 entries verified" in out
    assert err.startswith("warning: no audit digest in ") and "cut off unnoticed" in err
    for n in range(3):
        cli.ok("keys", "create", "--user", alice, "--label", f"k{n}")
    assert "audit digest 1 written: head at entry 4, " in cli.ok("audit", "digest")
    assert "has not moved" in cli.ok("audit", "digest")
    assert "the newest (digest 1 (" in cli.ok("audit", "verify")
    settings = Settings.from_env()
    with open_sandex(settings) as sx, sx.db.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_log WHERE seq > 2")
        conn.exec_driver_sql(
            "UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_log WHERE seq = 2)"
        )
    code, out, err = cli("audit", "verify")
    assert code == 1 and out == ""
    assert err.startswith("audit log TAMPERED: the audit log was truncated: digest 1 (")
    assert err.strip().endswith("recorded entries up to 4, the log ends at 2 (2 newest deleted)")
    assert len(err.strip().splitlines()) == 1
    line = cli.fails("audit", "digest")  # never signs the cut log
    assert "truncated" in line and "no digest written" in line

    with open_sandex(settings) as sx, sx.db.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_log")
        conn.exec_driver_sql("UPDATE audit_head SET seq = 0")
    code, _, err = cli("audit", "verify")
    assert code == 1 and "audit log TAMPERED: the audit log was wiped: digest 1 (" in err

    (settings.digest_dir / "audit-digest-000000000001.json").write_text("{}")
    code, _, err = cli("audit", "verify")
    assert code == 1
    assert err.strip() == (
        "audit log TAMPERED: audit digest audit-digest-000000000001.json"
        " is not a well-formed audit digest"
    )


def test_the_audit_digest_directory_can_be_set(
    cli: Cli, alice: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "other-host" / "digests"
    monkeypatch.setenv("SANDEX_AUDIT_DIGEST_DIR", str(elsewhere))
    assert str(elsewhere / "audit-digest-000000000001.json") in cli.ok("audit", "digest")
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o700
    assert not (tmp_path / "data" / "audit-digests").exists()


def test_leak_scanner_finds_keys_in_files(cli: Cli, alice: str, tmp_path: Path) -> None:
    created = cli.json("keys", "create", "--user", alice, "--label", "bot")
    assert isinstance(created, dict)
    leaky = tmp_path / "repo"
    leaky.mkdir()
    (leaky / ".env").write_text(f"API_KEY={created['apiKey']}\nSECRET={created['secretKey']}\n")
    code, out, _ = cli("keys", "scan", str(leaky))
    assert code == 1
    assert out.count("Sandex") == 2 and created["secretKey"] not in out
    (leaky / ".env").write_text("API_KEY=redacted\n")
    assert "no Sandex keys" in cli.ok("keys", "scan", str(leaky))


def test_the_installed_command_fails_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    sandex = Path(sys.executable).with_name("sandex")
    env = {**os.environ, "SANDEX_DATA_DIR": str(tmp_path / "data")}
    env.pop("SANDEX_DATABASE_URL", None)
    result = subprocess.run(
        [str(sandex), "keys", "list", "--user", "ghost@example.com"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no user with e-mail ghost@example.com"
    usage = subprocess.run(
        [str(sandex), "keys", "create"], capture_output=True, text=True, env=env, check=False
    )
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert "Missing option" in usage.stderr

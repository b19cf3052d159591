"""Helpers shared by the tests: users, keys and signed requests built with the one signer."""

from __future__ import annotations

import io
import json
import os
import sys
from urllib.parse import urlencode

import pyotp
import pytest

from sandex.accounts import HashParams, User
from sandex.accounts.totp import TOTP_STEP_MS
from sandex.bootstrap import Sandex
from sandex.cli import run
from sandex.keys import IpAllowlist, KeySettings, Permission
from sandex.keys.material import PrivateKey
from sandex.keys.signing import encode_signature_param, sign_hmac, sign_with_private_key
from sandex.service import Actor, IssuedKey, Request

PG_URL = os.environ.get("SANDEX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SANDEX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FAST_HASH = HashParams(time_cost=1, memory_kib=1024)
"""Cheap argon2 parameters so that tests creating many users stay fast."""

OPERATOR = Actor.operator()
PASSWORD = "correct horse battery staple"


def make_user(sx: Sandex, email: str = "alice@example.com", *, now: int) -> User:
    return sx.users.create(email, PASSWORD, now=now, actor=OPERATOR)


def enable_totp(sx: Sandex, user: User, *, now: int) -> tuple[str, list[str]]:
    """Enrol and confirm TOTP for ``user``; returns (secret, recovery codes)."""
    enrolment = sx.users.begin_totp(user.id, now=now, actor=OPERATOR)
    codes = sx.users.confirm_totp(
        user.id, totp_code(enrolment.secret, now), now=now, actor=OPERATOR
    )
    return enrolment.secret, codes


def totp_code(secret: str, now: int) -> str:
    return str(pyotp.TOTP(secret).at(now // 1000))


def next_step(now: int) -> int:
    """The start of the next TOTP step after ``now`` (a fresh code becomes valid there)."""
    return (now // TOTP_STEP_MS + 1) * TOTP_STEP_MS


def make_key(
    sx: Sandex,
    user: User,
    *,
    now: int,
    label: str = "bot",
    permissions: Permission = Permission.READ,
    ips: tuple[str, ...] = (),
    expires_at: int | None = None,
    **kwargs: object,
) -> IssuedKey:
    settings = KeySettings(label, permissions, IpAllowlist.parse(ips), expires_at)
    return sx.keys.create(user.id, settings, now=now, actor=OPERATOR, **kwargs)


def signed_request(
    api_key: str | None,
    *,
    secret: str | None = None,
    private_key: PrivateKey | None = None,
    params: list[tuple[str, str]] | None = None,
    timestamp: int | str | None = None,
    recv_window: int | str | None = None,
    method: str = "GET",
    path: str = "/api/v3/account",
    ip: str = "127.0.0.1",
    in_body: bool = False,
    signature: str | None = None,
) -> Request:
    """A request signed the way ccxt signs: params in call order, then the signature last."""
    items = list(params or [])
    if timestamp is not None:
        items.append(("timestamp", str(timestamp)))
    if recv_window is not None:
        items.append(("recvWindow", str(recv_window)))
    payload = urlencode(items)
    if signature is None:
        if secret is not None:
            signature = sign_hmac(secret, payload.encode())
        elif private_key is not None:
            signature = encode_signature_param(sign_with_private_key(private_key, payload.encode()))
    wire = payload if signature is None else f"{payload}&signature={signature}"
    headers = {} if api_key is None else {"x-mbx-apikey": api_key}
    query, body = (b"", wire.encode()) if in_body else (wire.encode(), b"")
    return Request(method, path, query, body, headers, ip)


class Cli:
    """Runs ``sandex …`` in process: (exit code, stdout, stderr), and checks on them."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.capsys.readouterr()
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = run(list(args))
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *args: str, stdin: str = "") -> object:
        code, out, err = self(*args, "--json", stdin=stdin)
        assert code == 0, err
        return json.loads(out)

    def ok(self, *args: str, stdin: str = "") -> str:
        code, out, err = self(*args, stdin=stdin)
        assert code == 0, err
        return out

    def fails(self, *args: str, stdin: str = "") -> str:
        code, out, err = self(*args, stdin=stdin)
        assert code == 1, (code, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert "Traceback" not in err + out
        return lines[0]

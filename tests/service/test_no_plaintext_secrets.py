"""No secret Sandex issued or received is ever stored, logged or audited in the clear.

Creates keys of every kind and a user with 2FA, drives authentications that succeed
and fail, then searches the whole data directory (or every PostgreSQL table), the
audit log and the captured logs for every secret.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import text

from conftest import NOW
from sandex.bootstrap import open_sandex
from sandex.config import Settings
from sandex.keys import KeyKind, Permission, generate_ed25519_pair, load_public_key
from sandex.keys.material import load_private_key
from sandex.keys.reference import parse_key_ref
from sandex.service import AuthenticationFailed
from sandex.service.views import audit_view, key_view
from support import OPERATOR, PASSWORD, enable_totp, make_key, make_user, signed_request


def _pem(private) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _stored_text(settings: Settings) -> bytes:
    """Everything Sandex persisted: every file under the data directory, and on PostgreSQL
    every row of every table in the test's schema, as text."""
    blobs = [p.read_bytes() for p in Path(settings.data_dir).rglob("*") if p.is_file()]
    if settings.database_url:
        from sandex.storage import make_engine

        engine = make_engine(settings.database_url, schema=settings.database_schema)
        with engine.connect() as conn:
            tables = (
                conn.execute(
                    text(
                        "select table_name from information_schema.tables where table_schema = :s"
                    ),
                    {"s": settings.database_schema},
                )
                .scalars()
                .all()
            )
            assert "api_keys" in tables
            for table in tables:
                rows = conn.execute(text(f'select row_to_json(t)::text from "{table}" t'))
                blobs.extend(r[0].encode() for r in rows)
        engine.dispose()
    return b"\n".join(blobs)


def test_no_secret_is_stored_logged_or_audited(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = [PASSWORD]
    with open_sandex(settings) as sx:
        user = make_user(sx, now=NOW)
        totp_secret, recovery = enable_totp(sx, user, now=NOW)
        secrets += [totp_secret, *recovery]

        hmac_key = make_key(
            sx, user, now=NOW, label="hmac", permissions=Permission.READ | Permission.SPOT_TRADE
        )
        ed_private = ed25519.Ed25519PrivateKey.generate()
        ed_key = make_key(
            sx, user, now=NOW, label="ed", kind=KeyKind.ED25519, public_key_pem=_pem(ed_private)
        )
        rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_key = make_key(
            sx, user, now=NOW, label="rsa", kind=KeyKind.RSA, public_key_pem=_pem(rsa_private)
        )
        generated_private, generated_public = generate_ed25519_pair()
        gen_key = make_key(
            sx,
            user,
            now=NOW,
            label="generated",
            kind=KeyKind.ED25519,
            public_key_pem=generated_public,
        )
        rotated = sx.keys.rotate(parse_key_ref(hmac_key.key.prefix), now=NOW, actor=OPERATOR)
        # management sessions: bearer tokens, stored only as keyed hashes
        session = sx.sessions.login(
            user.email, PASSWORD, now=NOW, source="127.0.0.1", second_factor=recovery[0]
        )
        renewed = sx.sessions.refresh(session.refresh_token, now=NOW, source="127.0.0.1")
        secrets += [
            session.access_token,
            session.refresh_token,
            renewed.access_token,
            renewed.refresh_token,
        ]
        issued = [hmac_key, ed_key, rsa_key, gen_key, rotated]
        for k in issued:
            secrets.append(k.api_key)
            if k.secret:
                secrets.append(k.secret)
        private_pems = [
            p.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            for p in (ed_private, rsa_private)
        ] + [generated_private]
        # the body of each private key PEM (the base64 lines) must appear nowhere
        secrets += [
            line
            for pem in private_pems
            for line in pem.splitlines()
            if line and not line.startswith("-----")
        ]

        # authentications that succeed ...
        sx.auth.authenticate(
            signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW), NOW
        )
        sx.auth.authenticate(
            signed_request(rotated.api_key, secret=rotated.secret, timestamp=NOW), NOW
        )
        sx.auth.authenticate(
            signed_request(ed_key.api_key, private_key=ed_private, timestamp=NOW), NOW
        )
        sx.auth.authenticate(
            signed_request(rsa_key.api_key, private_key=rsa_private, timestamp=NOW), NOW
        )
        sx.auth.authenticate(
            signed_request(
                gen_key.api_key, private_key=load_private_key(generated_private), timestamp=NOW
            ),
            NOW,
        )
        # ... and that fail, including the classic leak: key and secret swapped
        failures = [
            signed_request(hmac_key.secret, secret=hmac_key.api_key, timestamp=NOW),
            signed_request(hmac_key.api_key, secret=hmac_key.api_key, timestamp=NOW),
            signed_request(hmac_key.api_key + "x", secret=hmac_key.secret, timestamp=NOW),
            signed_request(rotated.api_key, secret=rotated.secret, timestamp=NOW - 60_000),
            signed_request(ed_key.api_key, secret=ed_key.api_key, timestamp=NOW + 1),
        ]
        for request in failures:
            with pytest.raises(AuthenticationFailed) as info:
                sx.auth.authenticate(request, NOW + 1)
            for s in secrets:
                assert s not in str(info.value) and s not in info.value.reason
        sx.activity.flush()
        audit_text = repr([audit_view(r) for r in sx.audit.tail(limit=1000)])
        views = repr([key_view(k, now=NOW) for k in sx.keys.for_user(user.id, actor=OPERATOR)])
        assert len(sx.audit.tail(limit=1000)) > 15

    stored = _stored_text(settings)
    logs = caplog.text
    # the search can fail: what is supposed to be there is found
    assert hmac_key.key.prefix.encode() in stored
    assert hmac_key.key.prefix in audit_text
    assert load_public_key(_pem(ed_private)).pem.splitlines()[1].encode() in stored
    leaks = [
        (where, s[:6] + "…")
        for s in secrets
        for where, haystack in (
            ("storage", stored),
            ("audit", audit_text.encode()),
            ("views", views.encode()),
            ("logs", logs.encode()),
        )
        if s.encode() in haystack
    ]
    assert leaks == []

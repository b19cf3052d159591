"""A public key stored before today's rules (issue 9, finding 4): an RSA key with a huge
exponent already in the database is refused at authentication, never verified slowly."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import update

from conftest import NOW
from http_support import AsgiClient, now_ms
from sandex.bootstrap import Sandex
from sandex.http import Gateway
from sandex.keys import KeyKind
from sandex.service import ApiKeyRejected, AuthenticationFailed
from sandex.storage.tables import api_keys
from support import make_key, make_user, signed_request

REASON = (
    "stored public key not accepted: RSA public exponent must be 65537;"
    " this key's is a 3064-bit number"
)


def _store_huge_exponent_key(sx: Sandex) -> tuple[str, rsa.RSAPrivateKey]:
    """An RSA key created under today's rules, then given a 3064-bit exponent in storage,
    as a key uploaded before the rule existed would have; its API key and private key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    spki = (Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    issued = make_key(
        sx,
        make_user(sx, now=NOW),
        now=NOW,
        kind=KeyKind.RSA,
        public_key_pem=private.public_key().public_bytes(*spki),
    )
    n = private.public_key().public_numbers().n
    huge = rsa.RSAPublicNumbers((1 << 3063) | 1, n).public_key().public_bytes(*spki).decode()
    with sx.db.begin() as conn:
        conn.execute(
            update(api_keys).where(api_keys.c.id == issued.key.id).values(public_key_pem=huge)
        )
    sx.auth.cache.clear()
    return issued.api_key, private


def test_a_stored_key_with_a_huge_exponent_is_refused_with_2015_and_a_clear_audit_reason(
    sandex: Sandex,
) -> None:
    api_key, private = _store_huge_exponent_key(sandex)
    for n in range(3):  # refused every time (the refusal is cached, not re-read)
        request = signed_request(api_key, private_key=private, timestamp=NOW + n)
        with pytest.raises(AuthenticationFailed) as info:
            sandex.auth.authenticate(request, NOW + n)
        assert isinstance(info.value, ApiKeyRejected)
        assert (info.value.code, info.value.msg) == (
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        )
    sandex.activity.flush()
    records = sandex.audit.tail(limit=3)
    assert [(r.event.event, r.event.reason) for r in records] == [("auth.denied", REASON)] * 3


def test_over_http_it_is_a_401_with_2015(gw: tuple[Sandex, Gateway]) -> None:
    sx, gateway = gw
    api_key, private = _store_huge_exponent_key(sx)
    request = signed_request(api_key, private_key=private, timestamp=now_ms())
    r = AsgiClient(gateway).get(
        "/sapi/v1/account/apiRestrictions?" + request.query.decode(),
        headers={"X-MBX-APIKEY": api_key},
    )
    assert r.status_code == 401
    assert r.json() == {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}

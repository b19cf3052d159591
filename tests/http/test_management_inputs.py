"""Management API inputs the security rules decide on: the public key a user uploads
(issue 9, finding 4) and the ``Authorization`` scheme (finding 9)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from http_support import AsgiClient
from support import PASSWORD


def _sign_up_and_log_in(client: AsgiClient, email: str) -> tuple[dict[str, str], str]:
    """Session headers for a new self-registered user (no 2FA), and its access token."""
    r = client.post("/sandex/v1/users", json={"email": email, "password": PASSWORD})
    assert r.status_code == 202, r.text
    r = client.post("/sandex/v1/sessions", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    token = r.json()["accessToken"]
    return {"authorization": "Bearer " + token}, token


def _pem(e: int, n: int) -> str:
    """An RSA public key from its numbers (an attacker's upload need not be half of a pair)."""
    key = rsa.RSAPublicNumbers(e, n).public_key()
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


@pytest.fixture(scope="module")
def modulus() -> int:
    private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return private.public_key().public_numbers().n


@pytest.mark.parametrize(
    ("bits_or_e", "message"),
    [
        ("huge-e", "RSA public exponent must be 65537; this key's is a 3064-bit number"),
        ("e=3", "RSA public exponent must be 65537; this key's is 3"),
        ("8192", "RSA key is 8192 bits; at least 2048 and at most 4096 are accepted"),
    ],
)
def test_a_read_key_with_a_costly_rsa_key_is_refused_at_creation(
    client: AsgiClient, modulus: int, bits_or_e: str, message: str
) -> None:
    # the attack: a self-registered user (no 2FA needed for READ) uploads a 3072-bit key
    # with a 3064-bit exponent; each of its requests then costs ~7 ms of the event loop
    auth, _ = _sign_up_and_log_in(client, "mallory@example.com")
    pem = {
        "huge-e": lambda: _pem((1 << 3063) | 1, modulus),
        "e=3": lambda: _pem(3, modulus),
        "8192": lambda: _pem(65537, (1 << 8191) | 1),
    }[bits_or_e]()
    r = client.post(
        "/sandex/v1/keys", json={"label": "slow", "type": "RSA", "publicKey": pem}, headers=auth
    )
    assert r.status_code == 400, r.text
    assert r.json() == {"code": -9005, "msg": message}
    assert client.get("/sandex/v1/keys", headers=auth).json() == []


def test_rotating_to_a_costly_rsa_key_is_refused_and_the_old_key_stays(
    client: AsgiClient, modulus: int
) -> None:
    auth, _ = _sign_up_and_log_in(client, "erin@example.com")
    good = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    good_pem = good.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    r = client.post(
        "/sandex/v1/keys", json={"label": "rsa", "type": "RSA", "publicKey": good_pem}, headers=auth
    )
    assert r.status_code == 201, r.text
    key_id = r.json()["key"]["id"]
    r = client.post(
        f"/sandex/v1/keys/{key_id}/rotate",
        json={"publicKey": _pem((1 << 3063) | 1, modulus)},
        headers=auth,
    )
    assert r.status_code == 400, r.text
    assert r.json() == {
        "code": -9005,
        "msg": "RSA public exponent must be 65537; this key's is a 3064-bit number",
    }
    (listed,) = client.get("/sandex/v1/keys", headers=auth).json()
    assert (listed["id"], listed["status"]) == (key_id, "ACTIVE")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_name_is_case_insensitive(client: AsgiClient, scheme: str) -> None:
    # RFC 7235 §2.1: "It uses a case-insensitive token as a means to identify the scheme"
    _, token = _sign_up_and_log_in(client, "frank@example.com")
    r = client.get("/sandex/v1/me", headers={"authorization": f"{scheme} {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "frank@example.com"


@pytest.mark.parametrize(
    "value",
    ["{token}", "Bearer{token}", "Basic {token}", "Bearer ", "Bearer", "", "Bearers {token}"],
)
def test_other_authorization_values_are_still_refused(client: AsgiClient, value: str) -> None:
    _, token = _sign_up_and_log_in(client, "grace@example.com")
    r = client.get("/sandex/v1/me", headers={"authorization": value.format(token=token)})
    assert r.status_code == 401
    assert r.json() == {
        "code": -1002,
        "msg": "log in first: send Authorization: Bearer <accessToken>",
    }

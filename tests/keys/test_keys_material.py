"""Public-key material: what a user may upload, and the Ed25519 pair generator."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from sandex.keys.errors import InvalidKeySpec, InvalidPublicKey
from sandex.keys.material import (
    KeyKind,
    generate_ed25519_pair,
    load_private_key,
    load_public_key,
)

PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def public_pem(private) -> str:
    return private.public_key().public_bytes(PEM, SPKI).decode("ascii")


def private_pem(private) -> str:
    return private.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


@pytest.fixture(scope="module")
def rsa2048():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed_key():
    return ed25519.Ed25519PrivateKey.generate()


def test_ed25519_public_key_accepted(ed_key):
    pem = public_pem(ed_key)
    loaded = load_public_key(pem)
    assert loaded.kind is KeyKind.ED25519
    assert isinstance(loaded.key, ed25519.Ed25519PublicKey)
    assert loaded.pem == pem
    assert load_public_key(pem.encode()).pem == pem


def test_rsa_2048_public_key_accepted(rsa2048):
    pem = public_pem(rsa2048)
    loaded = load_public_key(pem)
    assert loaded.kind is KeyKind.RSA
    assert isinstance(loaded.key, rsa.RSAPublicKey)
    assert loaded.key.key_size == 2048
    assert loaded.pem == pem


def test_rsa_pkcs1_public_key_is_stored_as_canonical_spki(rsa2048):
    pkcs1 = rsa2048.public_key().public_bytes(PEM, serialization.PublicFormat.PKCS1).decode("ascii")
    assert "BEGIN RSA PUBLIC KEY" in pkcs1
    loaded = load_public_key(pkcs1)
    assert loaded.pem == public_pem(rsa2048)
    assert loaded.pem.startswith("-----BEGIN PUBLIC KEY-----\n")


def test_canonical_pem_ignores_line_endings_and_surrounding_text(ed_key):
    pem = public_pem(ed_key)
    messy = "my key:\r\n" + pem.replace("\n", "\r\n") + "\r\n\r\n"
    assert load_public_key(messy).pem == pem


def test_loaded_key_verifies_signatures(ed_key, rsa2048):
    loaded = load_public_key(public_pem(ed_key))
    loaded.key.verify(ed_key.sign(b"payload"), b"payload")
    loaded = load_public_key(public_pem(rsa2048))
    sig = rsa2048.sign(b"payload", padding.PKCS1v15(), hashes.SHA256())
    loaded.key.verify(sig, b"payload", padding.PKCS1v15(), hashes.SHA256())


def test_rsa_1024_refused():
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidPublicKey, match="1024 bits; at least 2048 and at most 4096"):
        load_public_key(public_pem(weak))


def rsa_public_pem(e: int, n: int) -> str:
    """A public key built from its numbers: it need not be half of a real pair."""
    return rsa.RSAPublicNumbers(e, n).public_key().public_bytes(PEM, SPKI).decode("ascii")


def test_rsa_4096_accepted():
    largest = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    assert load_public_key(public_pem(largest)).key.key_size == 4096


@pytest.mark.parametrize("bits", [4097, 8192, 16384])
def test_rsa_over_4096_bits_refused(bits):
    # verification cost grows with the modulus; the big exchanges stop at 4096 too
    n = (1 << (bits - 1)) | 1
    with pytest.raises(InvalidPublicKey, match=f"{bits} bits; at least 2048 and at most 4096"):
        load_public_key(rsa_public_pem(65537, n))


def test_rsa_huge_public_exponent_refused():
    # the attack: a 3064-bit exponent made each verification ~130x slower (7.6 ms)
    n = (
        rsa.generate_private_key(public_exponent=65537, key_size=3072)
        .public_key()
        .public_numbers()
        .n
    )
    huge = (1 << 3063) | 1
    pem = rsa_public_pem(huge, n)
    with pytest.raises(InvalidPublicKey) as info:
        load_public_key(pem)
    assert str(info.value) == ("RSA public exponent must be 65537; this key's is a 3064-bit number")


@pytest.mark.parametrize("e", [3, 17, 65539, 2**32 + 1])
def test_rsa_other_public_exponents_refused(rsa2048, e):
    n = rsa2048.public_key().public_numbers().n
    shown = str(e) if e < 2**32 else "a 33-bit number"
    with pytest.raises(InvalidPublicKey, match=f"must be 65537; this key's is {shown}$"):
        load_public_key(rsa_public_pem(e, n))


def test_rsa_refusal_holds_for_pkcs1_input_too(rsa2048):
    n = rsa2048.public_key().public_numbers().n
    pkcs1 = (
        rsa.RSAPublicNumbers(3, n)
        .public_key()
        .public_bytes(PEM, serialization.PublicFormat.PKCS1)
        .decode("ascii")
    )
    with pytest.raises(InvalidPublicKey, match="exponent must be 65537"):
        load_public_key(pkcs1)


@pytest.mark.parametrize("which", ["ed25519", "rsa"])
def test_private_key_refused_with_advice(which, ed_key, rsa2048):
    key = ed_key if which == "ed25519" else rsa2048
    with pytest.raises(InvalidPublicKey) as info:
        load_public_key(private_pem(key))
    assert "upload only the public key" in str(info.value)
    # the message never echoes key material
    assert private_pem(key).splitlines()[1] not in str(info.value)


def test_traditional_rsa_private_key_refused(rsa2048):
    traditional = rsa2048.private_bytes(
        PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    with pytest.raises(InvalidPublicKey, match="upload only the public key"):
        load_public_key(traditional)


def test_ec_p256_refused():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidPublicKey, match="Ed25519 or RSA"):
        load_public_key(public_pem(ec_key))


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "hello",
        "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5vdCBhIHJlYWwga2V5IGF0IGFsbCEhISEhISE user@host",
        b"\x00\xff\xfe",
    ],
)
def test_garbage_refused(garbage):
    with pytest.raises(InvalidPublicKey, match="not a PEM public key"):
        load_public_key(garbage)


def test_oversized_input_refused(ed_key):
    with pytest.raises(InvalidPublicKey, match="too large"):
        load_public_key(public_pem(ed_key) + " " * 20_000)


def test_invalid_public_key_is_an_invalid_spec():
    assert issubclass(InvalidPublicKey, InvalidKeySpec)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("hmac", KeyKind.HMAC_SHA256),
        ("HMAC", KeyKind.HMAC_SHA256),
        ("hmac_sha256", KeyKind.HMAC_SHA256),
        ("HMAC_SHA256", KeyKind.HMAC_SHA256),
        ("Ed25519", KeyKind.ED25519),
        (" rsa ", KeyKind.RSA),
    ],
)
def test_key_kind_parse(text, kind):
    assert KeyKind.parse(text) is kind


@pytest.mark.parametrize("bad", ["", "ecdsa", "ed448", "hmac-sha512"])
def test_key_kind_parse_rejects(bad):
    with pytest.raises(InvalidPublicKey, match="hmac, ed25519, rsa"):
        KeyKind.parse(bad)


def test_generate_ed25519_pair_is_a_usable_pair():
    private_text, public_text = generate_ed25519_pair()
    private = load_private_key(private_text)
    loaded = load_public_key(public_text)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    assert loaded.kind is KeyKind.ED25519
    assert loaded.pem == public_text
    assert public_pem(private) == public_text
    loaded.key.verify(private.sign(b"timestamp=1"), b"timestamp=1")


def test_generate_ed25519_pair_is_fresh_each_time():
    assert generate_ed25519_pair()[1] != generate_ed25519_pair()[1]


def test_load_private_key_refuses_non_keys_and_other_types(ed_key):
    with pytest.raises(InvalidPublicKey):
        load_private_key("nope")
    with pytest.raises(InvalidPublicKey):
        load_private_key(public_pem(ed_key))
    with pytest.raises(InvalidPublicKey, match="Ed25519 or RSA"):
        load_private_key(private_pem(ec.generate_private_key(ec.SECP256R1())))

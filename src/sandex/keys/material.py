"""Key kinds and public-key material (Ed25519 and RSA keys the user keeps)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from sandex.keys.errors import InvalidPublicKey

__all__ = [
    "KeyKind",
    "LoadedPublicKey",
    "PublicKey",
    "MIN_RSA_BITS",
    "MAX_RSA_BITS",
    "RSA_PUBLIC_EXPONENT",
    "load_public_key",
    "load_private_key",
    "generate_ed25519_pair",
    "pem_pair",
    "PrivateKey",
]

MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 4096
RSA_PUBLIC_EXPONENT: Final = 65537
"""The only RSA public exponent accepted (as Binance, OKX and the rest require): an RSA
verification costs time in proportion to the exponent's size, so a key with a
3,000-bit exponent would cost a hundred times a normal one on every request."""
_MAX_PEM_BYTES: Final = 16_384

PublicKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey
PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class KeyKind(enum.Enum):
    """How requests made with a key are signed."""

    HMAC_SHA256 = "HMAC_SHA256"
    ED25519 = "ED25519"
    RSA = "RSA"

    @classmethod
    def parse(cls, text: str) -> KeyKind:
        aliases = {
            "hmac": cls.HMAC_SHA256,
            "hmac_sha256": cls.HMAC_SHA256,
            "ed25519": cls.ED25519,
            "rsa": cls.RSA,
        }
        kind = aliases.get(text.strip().lower())
        if kind is None:
            raise InvalidPublicKey(f"unknown key type {text!r} (known: hmac, ed25519, rsa)")
        return kind


@dataclass(frozen=True)
class LoadedPublicKey:
    kind: KeyKind
    key: PublicKey
    pem: str
    """Canonical SubjectPublicKeyInfo PEM, as stored."""


def load_public_key(pem: bytes | str) -> LoadedPublicKey:
    """Parse a public key PEM: Ed25519, or RSA of 2048 to 4096 bits with exponent 65537.

    The same rule holds for a key being uploaded and for one read back from storage, so
    a key stored before the rule existed is refused rather than verified slowly.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    if len(data) > _MAX_PEM_BYTES:
        raise InvalidPublicKey("public key file is too large to be a PEM public key")
    if b"PRIVATE KEY" in data:
        raise InvalidPublicKey(
            "this is a PRIVATE key; upload only the public key (keep the private key to yourself)"
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise InvalidPublicKey(
            "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)"
        ) from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        kind = KeyKind.ED25519
    elif isinstance(key, rsa.RSAPublicKey):
        _check_rsa(key)
        kind = KeyKind.RSA
    else:
        raise InvalidPublicKey(
            f"unsupported public key type: use Ed25519 or RSA ({MIN_RSA_BITS}-{MAX_RSA_BITS} bits)"
        )
    canonical = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return LoadedPublicKey(kind, key, canonical)


def _check_rsa(key: rsa.RSAPublicKey) -> None:
    """Refuse an RSA key whose size or exponent would make verification weak or slow."""
    bits = key.key_size
    if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
        raise InvalidPublicKey(
            f"RSA key is {bits} bits; at least {MIN_RSA_BITS} and at most {MAX_RSA_BITS}"
            " are accepted"
        )
    e = key.public_numbers().e
    if e != RSA_PUBLIC_EXPONENT:
        shown = str(e) if e.bit_length() <= 32 else f"a {e.bit_length()}-bit number"
        raise InvalidPublicKey(
            f"RSA public exponent must be {RSA_PUBLIC_EXPONENT}; this key's is {shown}"
        )


def load_private_key(pem: bytes | str) -> PrivateKey:
    """Load an unencrypted PKCS#8 PEM private key (Ed25519 or RSA) for signing."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidPublicKey("not an unencrypted PEM private key") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise InvalidPublicKey("unsupported private key type: use Ed25519 or RSA")
    return key


def generate_ed25519_pair() -> tuple[str, str]:
    """A new Ed25519 key pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    return pem_pair(ed25519.Ed25519PrivateKey.generate())


def pem_pair(private: PrivateKey) -> tuple[str, str]:
    """``private`` and its public key as (PKCS#8 PEM, SubjectPublicKeyInfo PEM)."""
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return private_pem, public_pem

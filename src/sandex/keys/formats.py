"""Sandex token formats: API keys (``sdxk…``) and HMAC secrets (``sdxs…``).

A token is 64 base62 characters, so every Binance client accepts it:
4-character prefix + 54 random characters + 6 characters of CRC32 over the first 58.
The prefix and the checksum let a scanner find leaked Sandex tokens offline with
near-zero false positives (:func:`find_tokens`), and let the server reject a
mistyped key before any lookup.
"""

from __future__ import annotations

import re
import secrets
import zlib
from typing import Final

__all__ = [
    "API_KEY_PREFIX",
    "SECRET_PREFIX",
    "TOKEN_LENGTH",
    "DISPLAY_PREFIX_LENGTH",
    "generate_api_key",
    "generate_secret",
    "is_api_key",
    "is_secret",
    "display_prefix",
    "find_tokens",
]

API_KEY_PREFIX: Final = "sdxk"
SECRET_PREFIX: Final = "sdxs"  # noqa: S105 - a prefix, not a secret
TOKEN_LENGTH: Final = 64
_RANDOM_LENGTH: Final = 54
_CHECKSUM_LENGTH: Final = 6
DISPLAY_PREFIX_LENGTH: Final = 12
"""How much of an API key is kept in the clear to name it (prefix + 8 random chars)."""

_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALPHABET_SET: Final = frozenset(_ALPHABET)
_TOKEN_RE: Final = re.compile(r"(?<![0-9A-Za-z])sdx[ks][0-9A-Za-z]{60}(?![0-9A-Za-z])")


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode("ascii"))
    chars = []
    for _ in range(_CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _generate(prefix: str) -> str:
    body = prefix + "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return body + _checksum(body)


def generate_api_key() -> str:
    """A fresh random API key (321 bits of randomness)."""
    return _generate(API_KEY_PREFIX)


def generate_secret() -> str:
    """A fresh random HMAC secret (321 bits of randomness)."""
    return _generate(SECRET_PREFIX)


def _well_formed(token: str, prefix: str) -> bool:
    if len(token) != TOKEN_LENGTH or not token.startswith(prefix):
        return False
    if not _ALPHABET_SET.issuperset(token):
        return False
    split = TOKEN_LENGTH - _CHECKSUM_LENGTH
    return _checksum(token[:split]) == token[split:]


def is_api_key(token: str) -> bool:
    """True when ``token`` is a well-formed API key (prefix, length, alphabet, checksum)."""
    return _well_formed(token, API_KEY_PREFIX)


def is_secret(token: str) -> bool:
    """True when ``token`` is a well-formed HMAC secret."""
    return _well_formed(token, SECRET_PREFIX)


def display_prefix(api_key: str) -> str:
    """The part of an API key that may be shown and stored in the clear to name it."""
    return api_key[:DISPLAY_PREFIX_LENGTH]


def find_tokens(text: str) -> list[str]:
    """Every Sandex API key or secret in ``text`` whose checksum is valid.

    A leak scanner: run it over logs, repositories or paste dumps.
    """
    return [m for m in _TOKEN_RE.findall(text) if is_api_key(m) or is_secret(m)]

"""Keyed hashes: how API keys (and other bearer tokens) are found without being stored,
and the keyed HMAC-SHA256 state that signature checks and the audit chain reuse."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

__all__ = ["keyed_hash", "keyed_sha256"]

_openssl_hmac_new: Callable[..., Any] | None
try:  # CPython's OpenSSL binding; its HMAC objects copy without re-keying
    from _hashlib import hmac_new as _openssl_hmac_new
except ImportError:  # pragma: no cover - other interpreters
    _openssl_hmac_new = None


def keyed_hash(pepper: bytes, token: str) -> bytes:
    """HMAC-SHA256 of ``token`` under the server ``pepper`` (32 bytes).

    Stored instead of the token; a database dump alone cannot confirm a guessed key.
    """
    return hmac.digest(pepper, token.encode("utf-8"), "sha256")


def keyed_sha256(key: bytes) -> Any:
    """An HMAC-SHA256 state keyed once, to be ``copy()``-ed per message.

    Keying costs as much as hashing a short message, and every message under one key
    starts from the same keyed state. OpenSSL's own HMAC object copies fastest; the
    standard library's ``hmac.HMAC`` (same result, slower copy) is the fallback.
    """
    if _openssl_hmac_new is not None:
        return _openssl_hmac_new(key, digestmod="sha256")
    return hmac.new(key, digestmod="sha256")

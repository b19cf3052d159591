"""Keyed hashes: how API keys (and other bearer tokens) are found without being stored."""

from __future__ import annotations

import hmac

__all__ = ["keyed_hash"]


def keyed_hash(pepper: bytes, token: str) -> bytes:
    """HMAC-SHA256 of ``token`` under the server ``pepper`` (32 bytes).

    Stored instead of the token; a database dump alone cannot confirm a guessed key.
    """
    return hmac.digest(pepper, token.encode("utf-8"), "sha256")

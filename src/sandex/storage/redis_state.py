"""State shared by every process that serves one database, kept in Redis."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["RedisReplayGuard"]


class RedisReplayGuard:
    """The replay cache in Redis: a signature is accepted once, by whichever worker sees
    it first (``SET NX`` with the signature's own expiry)."""

    def __init__(self, client: Any, *, namespace: str = "sandex") -> None:
        self._client = client
        self._prefix = f"{namespace}:replay:".encode()

    def first_use(self, token: bytes, expires_at: int, now: int, owner: bytes = b"") -> bool:
        ttl = max(1, expires_at - now)
        name = self._prefix + hashlib.sha256(token).digest()[:20]
        if not owner:
            return bool(self._client.set(name, b"1", nx=True, px=ttl))
        # SET NX GET (Redis 7): sets and answers None, or answers who set it first
        first = self._client.set(name, b"=" + owner, nx=True, px=ttl, get=True)
        return first is None or first == b"=" + owner

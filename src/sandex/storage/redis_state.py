"""State shared by every process that serves one database, kept in Redis."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["RedisReplayGuard"]


_CLAIM = """
local first = redis.call('HGET', KEYS[1], '@')
if not first then
  redis.call('HSET', KEYS[1], '@', ARGV[1], ARGV[2], '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
if first ~= ARGV[1] then return 0 end
if redis.call('HSETNX', KEYS[1], ARGV[2], '1') == 1 then return 1 end
return tonumber(ARGV[3])
"""
"""One round trip: the signature's hash holds its first client ('@') and its routes."""


class RedisReplayGuard:
    """The replay cache in Redis, shared by every worker: a signature's first client and
    the routes it was used on, in one hash with the signature's own expiry, checked and
    updated atomically by a script."""

    def __init__(self, client: Any, *, namespace: str = "sandex") -> None:
        self._client = client
        self._prefix = f"{namespace}:replay:".encode()
        self._claim = client.register_script(_CLAIM)

    def claim(
        self,
        token: bytes,
        method: str,
        path: str,
        client: str,
        repeatable: bool,
        expires_at: int,
        now: int,
    ) -> bool:
        ttl = max(1, expires_at - now)
        name = self._prefix + hashlib.sha256(token).digest()[:20]
        route = f"{method} {path}"  # never '@' (a method has no '@')
        return bool(self._claim(keys=[name], args=[client, route, int(repeatable), ttl]))

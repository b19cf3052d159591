"""State shared by every process that serves one database, kept in Redis."""

from __future__ import annotations

import hashlib
from typing import Any

from sandex.storage.redis_pipe import RedisPipe, RedisReplyError, encode

__all__ = ["RedisReplayGuard", "RedisRequestGate", "request_gate"]


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


_GATE = """
local function hit(key, amount, expiry)
  local used = redis.call('INCRBY', key, amount)
  if used == amount then redis.call('EXPIRE', key, expiry) end
  return used
end
local function ttl(key)
  return math.max(1, redis.call('TTL', key))
end
local function refuse(which, key)
  if hit(KEYS[9], 1, ARGV[20]) > tonumber(ARGV[19]) then
    local bans = hit(KEYS[10], 1, ARGV[21])
    local seconds = math.floor(math.min(tonumber(ARGV[22]) * 2 ^ (bans - 1), tonumber(ARGV[23])))
    hit(KEYS[1], 1, seconds)
    redis.call('DEL', KEYS[9])
    return {1, which, seconds}
  end
  return {2, which, ttl(key)}
end
local function answer(verdict, ip, key, o10, o1d)
  return {verdict[1], verdict[2], verdict[3], ip, key, o10, o1d}
end
local ok = {0, 0, 0}
if ARGV[1] == '1' then
  if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
    return answer({1, 0, ttl(KEYS[1])}, -1, -1, -1, -1)
  end
  if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then
    return answer(refuse(-1, KEYS[2]), -1, -1, -1, -1)
  end
  if ARGV[3] ~= '0' and tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[3]) then
    return answer(refuse(-2, KEYS[3]), -1, -1, -1, -1)
  end
end
local weight = tonumber(ARGV[8])
local spoilt = nil
if ARGV[4] ~= '' then
  if ARGV[4] ~= '0' then hit(KEYS[11], 1, ARGV[4]) end
  spoilt = ok
elseif ARGV[5] ~= '' then
  local first = redis.call('HGET', KEYS[4], '@')
  if not first then
    redis.call('HSET', KEYS[4], '@', ARGV[5], ARGV[6], '1')
    redis.call('PEXPIRE', KEYS[4], ARGV[7])
  elseif first ~= ARGV[5] then
    spoilt = {3, 0, 0}
  elseif redis.call('HSETNX', KEYS[4], ARGV[6], '1') == 0 and ARGV[13] ~= '1' then
    spoilt = {3, 0, 0}
  end
end
if weight == 0 then return answer(ok, -1, -1, -1, -1) end
local ip = hit(KEYS[5], weight, ARGV[9])
if spoilt then
  if ip > tonumber(ARGV[10]) then refuse(0, KEYS[5]) end
  return answer(spoilt, ip, -1, -1, -1)
end
if ip > tonumber(ARGV[10]) then return answer(refuse(1, KEYS[5]), ip, -1, -1, -1) end
if ARGV[11] == '0' then return answer(ok, ip, -1, -1, -1) end
local key = hit(KEYS[6], weight, ARGV[12])
if key > tonumber(ARGV[11]) then return answer(refuse(2, KEYS[6]), ip, key, -1, -1) end
local orders = tonumber(ARGV[14])
if orders == 0 then return answer(ok, ip, key, -1, -1) end
local o10 = hit(KEYS[7], orders, ARGV[16])
local o1d = hit(KEYS[8], orders, ARGV[18])
if o10 > tonumber(ARGV[15]) then return answer(refuse(3, KEYS[7]), ip, key, o10, o1d) end
if o1d > tonumber(ARGV[17]) then return answer(refuse(4, KEYS[8]), ip, key, o10, o1d) end
return answer(ok, ip, key, o10, o1d)
"""
"""Everything a request asks of the shared state, in one round trip: admission (ban,
failed-authentication budgets), the replay claim or a failure noted, then the weight and
order counters, refusing (and banning) as :class:`sandex.http.ratelimit.RateLimiter` does.
See :meth:`sandex.http.ratelimit.RateLimiter.settle` for the keys and arguments."""


def _replay_key(namespace: str, token: bytes) -> bytes:
    """The Redis hash holding a signature's first client and routes."""
    return f"{namespace}:replay:".encode() + hashlib.sha256(token).digest()[:20]


class RedisRequestGate:
    """The per-request script over a :class:`RedisPipe`: one round trip, awaited (the
    event loop serves other requests meanwhile, and their scripts share the socket)."""

    def __init__(self, url: str, *, namespace: str = "sandex") -> None:
        self.namespace = namespace
        self.limits_prefix = f"{namespace}:limits:"
        self._pipe = RedisPipe(url)
        self._sha = hashlib.sha1(_GATE.encode()).hexdigest()  # noqa: S324 - Redis's script id

    def replay_key(self, token: bytes) -> bytes:
        """Where :class:`RedisReplayGuard` keeps this signature's claims."""
        return _replay_key(self.namespace, token)

    async def run(self, keys: list[str | bytes], args: list[str | int]) -> list[int]:
        try:
            reply = await self._pipe.call(encode("EVALSHA", self._sha, len(keys), *keys, *args))
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            reply = await self._pipe.call(encode("EVAL", _GATE, len(keys), *keys, *args))
        assert isinstance(reply, list)
        return reply  # type: ignore[return-value]

    async def read(self, keys: list[str]) -> list[int]:
        """The counters at ``keys`` (0 for one absent or expired), in one ``MGET`` on the
        same connection as the requests' scripts."""
        reply = await self._pipe.call(encode("MGET", *keys))
        assert isinstance(reply, list)
        return [int(value) if isinstance(value, bytes) else 0 for value in reply]

    async def aclose(self) -> None:
        self._pipe.close()


def request_gate(url: str, *, namespace: str) -> RedisRequestGate | None:
    """The gate for ``url``, or None for a Redis the lean connection does not speak
    (``rediss://`` TLS, a unix socket): the gateway then settles a request in several
    blocking round trips through the ``limits`` storage, as with one worker."""
    if not url.startswith("redis://"):
        return None
    return RedisRequestGate(url, namespace=namespace)


class RedisReplayGuard:
    """The replay cache in Redis, shared by every worker: a signature's first client and
    the routes it was used on, in one hash with the signature's own expiry, checked and
    updated atomically by a script."""

    def __init__(self, client: Any, *, namespace: str = "sandex") -> None:
        self._client = client
        self._namespace = namespace
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
        name = _replay_key(self._namespace, token)
        route = f"{method} {path}"  # never '@' (a method has no '@')
        return bool(self._claim(keys=[name], args=[client, route, int(repeatable), ttl]))

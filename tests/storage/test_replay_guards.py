"""The replay caches, in process and in Redis: a signature is used once, except that a
read may be repeated by the address that sent it first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from sandex.service import MemoryReplayGuard
from sandex.service.ports import ReplayGuard
from sandex.storage.redis_state import RedisReplayGuard
from support import REDIS_URL

NOW = 1_800_000_000_000


@pytest.fixture(params=["memory", "redis"])
def guard(request: pytest.FixtureRequest) -> Iterator[ReplayGuard]:
    if request.param == "memory":
        yield MemoryReplayGuard()
        return
    namespace = request.getfixturevalue("redis_namespace")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield RedisReplayGuard(client, namespace=namespace)
    finally:
        client.close()


def test_a_token_is_used_once(guard: ReplayGuard) -> None:
    assert guard.first_use(b"sig-1", NOW + 5000, NOW) is True
    assert guard.first_use(b"sig-1", NOW + 5000, NOW + 1) is False
    assert guard.first_use(b"sig-2", NOW + 5000, NOW + 1) is True


def test_a_read_may_repeat_from_its_first_address_only(guard: ReplayGuard) -> None:
    assert guard.first_use(b"read", NOW + 5000, NOW, b"127.0.0.1") is True
    assert guard.first_use(b"read", NOW + 5000, NOW + 1, b"127.0.0.1") is True
    assert guard.first_use(b"read", NOW + 5000, NOW + 1, b"203.0.113.9") is False
    # the same signature presented as a trade request (no owner) is a replay
    assert guard.first_use(b"read", NOW + 5000, NOW + 2) is False


def test_a_token_first_seen_without_an_owner_is_never_repeated(guard: ReplayGuard) -> None:
    assert guard.first_use(b"trade", NOW + 5000, NOW) is True
    assert guard.first_use(b"trade", NOW + 5000, NOW + 1, b"127.0.0.1") is False

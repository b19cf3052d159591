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


GET = ("GET", "/api/v3/order")
DELETE = ("DELETE", "/api/v3/order")
HERE, THERE = "127.0.0.1", "203.0.113.9"


def test_a_trade_signature_is_used_once_per_route(guard: ReplayGuard) -> None:
    assert guard.claim(b"sig-1", *DELETE, HERE, False, NOW + 5000, NOW) is True
    assert guard.claim(b"sig-1", *DELETE, HERE, False, NOW + 5000, NOW + 1) is False
    assert guard.claim(b"sig-2", *DELETE, HERE, False, NOW + 5000, NOW + 1) is True


def test_a_read_may_repeat_from_its_first_address_only(guard: ReplayGuard) -> None:
    assert guard.claim(b"read", *GET, HERE, True, NOW + 5000, NOW) is True
    assert guard.claim(b"read", *GET, HERE, True, NOW + 5000, NOW + 1) is True
    assert guard.claim(b"read", *GET, THERE, True, NOW + 5000, NOW + 1) is False


def test_the_same_signature_on_another_method_is_not_a_replay(guard: ReplayGuard) -> None:
    """python-binance's AsyncClient get_order then cancel_order: identical parameters in
    one millisecond, on GET and DELETE of the same path."""
    assert guard.claim(b"same", *GET, HERE, True, NOW + 5000, NOW) is True
    assert guard.claim(b"same", *DELETE, HERE, False, NOW + 5000, NOW) is True
    assert guard.claim(b"same", *DELETE, HERE, False, NOW + 5000, NOW + 1) is False


def test_a_signature_copied_to_another_route_from_elsewhere_is_refused(
    guard: ReplayGuard,
) -> None:
    """A captured GET of an order cannot be turned into its cancellation by someone else."""
    assert guard.claim(b"seen", *GET, HERE, True, NOW + 5000, NOW) is True
    assert guard.claim(b"seen", *DELETE, THERE, False, NOW + 5000, NOW + 1) is False
    assert guard.claim(b"seen", *DELETE, HERE, False, NOW + 5000, NOW + 1) is True


def test_a_signature_is_forgotten_once_its_window_has_passed() -> None:
    guard = MemoryReplayGuard()
    assert guard.claim(b"old", *DELETE, HERE, False, NOW + 10, NOW) is True
    assert guard.claim(b"new", *DELETE, HERE, False, NOW + 5000, NOW + 11) is True
    assert len(guard) == 1

"""Rate limits and bans on the limits library's memory storage."""

from __future__ import annotations

import pytest
from limits.storage import MemoryStorage

from sandex.http.errors import Banned, RateLimited
from sandex.http.ratelimit import RateLimiter, RateLimits, Usage


def _limiter(**kw: int) -> RateLimiter:
    return RateLimiter(MemoryStorage(), RateLimits(**kw))


def test_bans_escalate_from_two_minutes() -> None:
    limiter = _limiter(ip_weight_1m=1, ignored_429_before_ban=2)
    limiter.charge_ip("1.1.1.1", 1, Usage())
    bans = []
    for _ in range(2):
        for _ in range(10):
            try:
                limiter.admit("1.1.1.1")
                limiter.charge_ip("1.1.1.1", 1, Usage())
            except RateLimited:
                continue
            except Banned as ban:
                bans.append(ban.retry_after)
                break
        # lift the ban by hand (as if it ran out) to see the next one
        limiter.storage.clear("SANDEX-BAN/1.1.1.1")
    assert bans == [120, 240]


def test_weight_limit_refuses_with_retry_after_and_usage_headers() -> None:
    limiter = _limiter(ip_weight_1m=10)
    usage = Usage()
    limiter.charge_ip("2.2.2.2", 10, usage)
    assert usage.headers() == [(b"x-mbx-used-weight-1m", b"10")]
    with pytest.raises(RateLimited) as caught:
        limiter.charge_ip("2.2.2.2", 1, usage)
    assert caught.value.status == 429 and caught.value.code == -1003
    assert 1 <= caught.value.retry_after <= 60
    assert usage.ip_weight == 11  # reported by the gateway, once (issue 10, finding 4)
    assert [name for name, _ in caught.value.headers] == [b"retry-after"]


def test_key_weight_is_separate_from_ip_weight() -> None:
    limiter = _limiter(key_weight_1m=3)
    for _ in range(3):
        limiter.charge_key("3.3.3.3", 7, 1, Usage())
    with pytest.raises(RateLimited):
        limiter.charge_key("3.3.3.4", 7, 1, Usage())
    limiter.charge_key("3.3.3.3", 8, 1, Usage())


def test_failed_authentications_have_a_small_budget_charged_to_who_failed() -> None:
    limiter = _limiter(failed_auth_ip_1m=3, failed_auth_key_1m=2)
    for _ in range(2):
        limiter.note_key_failure("4.4.4.4", "tag-of-key")
    with pytest.raises(RateLimited, match=r"sdxkABCDEFGH\.\.\. from IP 4\.4\.4\.4"):
        limiter.admit_key("4.4.4.4", "tag-of-key", "sdxkABCDEFGH")
    limiter.admit_key("4.4.4.5", "tag-of-key", "sdxkABCDEFGH")  # the key from elsewhere
    limiter.admit_key("4.4.4.4", "tag-of-other", "sdxkABCDEFGH")  # same prefix, other key
    limiter.admit("4.4.4.4")  # a real key's failures do not limit the IP's other traffic
    for _ in range(3):
        limiter.note_ip_failure("4.4.4.4")
    with pytest.raises(RateLimited, match=r"4\.4\.4\.4"):
        limiter.admit("4.4.4.4")
    limiter.admit("4.4.4.5")


def test_local_storage_counts_within_a_window_and_restarts_after_it() -> None:
    import time

    from sandex.http.ratelimit import LocalStorage

    storage = LocalStorage()
    assert storage.incr("k", 0.2, 3) == 3
    assert storage.incr("k", 0.2, 2) == 5
    assert storage.get("k") == 5
    assert storage.get_expiry("k") > time.time()
    time.sleep(0.25)
    assert storage.get("k") == 0
    assert storage.incr("k", 0.2, 1) == 1


def test_counters_and_bans_work_on_redis_shared_by_workers(redis_namespace: str) -> None:
    """Two limiters on one Redis (two workers) share the weight count and the ban."""
    from limits.storage import RedisStorage

    from support import REDIS_URL

    limits = RateLimits(ip_weight_1m=3, ignored_429_before_ban=1)
    prefix = f"{redis_namespace}:limits"
    a = RateLimiter(RedisStorage(REDIS_URL, key_prefix=prefix), limits)
    b = RateLimiter(RedisStorage(REDIS_URL, key_prefix=prefix), limits)
    a.charge_ip("5.5.5.5", 2, Usage())
    usage = Usage()
    b.charge_ip("5.5.5.5", 1, usage)
    assert usage.ip_weight == 3
    with pytest.raises(RateLimited):
        a.charge_ip("5.5.5.5", 1, Usage())
    with pytest.raises(Banned) as banned:
        b.charge_ip("5.5.5.5", 1, Usage())
    assert banned.value.retry_after == 120
    with pytest.raises(Banned):
        a.admit("5.5.5.5")


def test_order_limits_answer_binance_too_many_orders() -> None:
    """Issue 10, finding 4: -1015 (what bots and ccxt match on), not -1003."""
    limiter = _limiter(orders_10s=1, orders_1d=2)
    limiter.charge_order("5.5.5.5", 9, Usage())
    with pytest.raises(RateLimited) as ten:
        limiter.charge_order("5.5.5.5", 9, Usage())
    assert (ten.value.status, ten.value.code) == (429, -1015)
    assert ten.value.msg == "Too many new orders; current limit is 1 orders per 10 SECOND."
    limiter.storage.clear(limiter._orders_10s.key_for("9"))
    with pytest.raises(RateLimited) as day:
        limiter.charge_order("5.5.5.5", 9, Usage())
    assert (day.value.status, day.value.code) == (429, -1015)
    assert day.value.msg == "Too many new orders; current limit is 2 orders per DAY."


def test_order_counts_are_awaited_through_the_gate_when_workers_share_redis(
    redis_namespace: str,
) -> None:
    """With Redis, ``GET /api/v3/rateLimit/order`` reads the counters every worker charged
    through the gate's awaited connection: the blocking ``limits`` storage is not read on
    the event loop (here it points at no Redis at all, and any read through it fails)."""
    import asyncio

    import redis
    from limits.storage import RedisStorage

    from sandex.storage.redis_state import RedisRequestGate
    from support import REDIS_URL

    nowhere = RedisStorage("redis://127.0.0.1:1", key_prefix=f"{redis_namespace}:limits")
    one_gate = RedisRequestGate(REDIS_URL, namespace=redis_namespace)
    other_gate = RedisRequestGate(REDIS_URL, namespace=redis_namespace)
    one = RateLimiter(nowhere, gate=one_gate)
    other = RateLimiter(nowhere, gate=other_gate)

    async def scenario() -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        try:
            before = await other.order_counts(9)
            assert await one.settle("5.5.5.5", Usage(), 1, key_id=1, user_id=9, orders=2) is True
            assert await other.settle("6.6.6.6", Usage(), 1, key_id=1, user_id=9, orders=1) is True
            assert await one.settle("5.5.5.5", Usage(), 1, key_id=2, user_id=8, orders=4) is True
            return before, await other.order_counts(9), await one.order_counts(9)
        finally:
            await one_gate.aclose()
            await other_gate.aclose()

    assert asyncio.run(scenario()) == ((0, 0), (3, 3), (3, 3))
    with pytest.raises(redis.ConnectionError):  # what a read through the storage would have done
        nowhere.get("anything")

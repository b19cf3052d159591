"""The gateway's lean Redis connection: pipelined replies reach their own callers."""

from __future__ import annotations

import asyncio

import pytest

from sandex.storage.redis_pipe import RedisPipe, RedisReplyError, encode
from support import REDIS_URL


def test_concurrent_commands_share_one_socket_and_get_their_own_replies(
    redis_namespace: str,
) -> None:
    async def main() -> None:
        pipe = RedisPipe(REDIS_URL)
        try:
            key = f"{redis_namespace}:counter"
            replies = await asyncio.gather(
                *(pipe.call(encode("INCRBY", key, n)) for n in range(1, 101))
            )
            assert replies == [n * (n + 1) // 2 for n in range(1, 101)]  # in send order
            assert await pipe.call(encode("HSET", f"{redis_namespace}:h", "a", "1")) == 1
            assert await pipe.call(encode("HGETALL", f"{redis_namespace}:h")) == [b"a", b"1"]
            assert await pipe.call(encode("GET", f"{redis_namespace}:none")) is None
            with pytest.raises(RedisReplyError, match="WRONGTYPE"):
                await pipe.call(encode("INCR", f"{redis_namespace}:h"))
            pipe.close()  # lost: the next call connects again
            assert await pipe.call(encode("INCRBY", key, 0)) == 5050
        finally:
            pipe.close()

    asyncio.run(main())


def test_only_redis_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="redis://"):
        RedisPipe("rediss://example.test:6380/0")

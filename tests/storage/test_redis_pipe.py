"""The gateway's lean Redis connection: pipelined replies reach their own callers, a
blocking read holds only its own connection."""

from __future__ import annotations

import asyncio
import time

import pytest

from sandex.storage.redis_pipe import RedisAddress, RedisPipe, RedisReplyError, encode
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


def test_stream_replies_parse_and_a_blocking_read_does_not_delay_commands_on_another_pipe(
    redis_namespace: str,
) -> None:
    stream = f"{redis_namespace}:stream"

    async def main() -> None:
        reader, writer = RedisPipe(REDIS_URL), RedisPipe(REDIS_URL)
        try:
            reading = asyncio.create_task(
                reader.call(encode("XREAD", "BLOCK", 5000, "STREAMS", stream, "0-0"))
            )
            await asyncio.sleep(0.05)  # the read is blocking in Redis
            began = time.monotonic()
            entry_id = await writer.call(encode("XADD", stream, "*", "i", "a,b", "c", b"\x00\n"))
            assert time.monotonic() - began < 0.5
            got = await asyncio.wait_for(reading, 1)
            assert got == [[stream.encode(), [[entry_id, [b"i", b"a,b", b"c", b"\x00\n"]]]]]
            assert isinstance(entry_id, bytes)
            nothing = encode("XREAD", "BLOCK", 10, "STREAMS", stream, entry_id)
            assert await reader.call(nothing) is None  # nil after its block
            newest = await reader.call(encode("XREVRANGE", stream, "+", "-", "COUNT", 1))
            assert newest == [[entry_id, [b"i", b"a,b", b"c", b"\x00\n"]]]
        finally:
            reader.close()
            writer.close()

    asyncio.run(main())


def test_a_caller_that_gives_up_leaves_the_next_reply_to_the_next_caller(
    redis_namespace: str,
) -> None:
    async def main() -> None:
        pipe = RedisPipe(REDIS_URL)
        try:
            block = encode("XREAD", "BLOCK", 200, "STREAMS", f"{redis_namespace}:none", "0-0")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pipe.call(block), 0.05)
            assert await pipe.call(encode("PING")) == b"PONG"  # not the read's nil
        finally:
            pipe.close()

    asyncio.run(main())


def test_an_error_inside_an_array_is_an_item_and_later_replies_stay_in_step(
    redis_namespace: str,
) -> None:
    key = f"{redis_namespace}:text"

    async def main() -> None:
        pipe = RedisPipe(REDIS_URL)
        try:
            replies = await asyncio.gather(
                pipe.call(encode("MULTI")),
                pipe.call(encode("SET", key, "a")),
                pipe.call(encode("INCR", key)),  # fails when the transaction runs
                pipe.call(encode("EXEC")),
                pipe.call(encode("GET", key)),
            )
            assert replies[:3] == [b"OK", b"QUEUED", b"QUEUED"]
            done = replies[3]
            assert isinstance(done, list) and done[0] == b"OK"
            assert isinstance(done[1], RedisReplyError) and "integer" in str(done[1])
            assert replies[4] == b"a"
        finally:
            pipe.close()

    asyncio.run(main())


def test_a_closed_pipe_fails_what_waits_on_it_and_opens_again() -> None:
    async def main() -> None:
        pipe = RedisPipe(REDIS_URL)
        waiting = asyncio.create_task(pipe.call(encode("BLPOP", "sandex-test:never", 5)))
        await asyncio.sleep(0.05)
        pipe.close()
        with pytest.raises(ConnectionError, match="closed"):
            await waiting
        assert await pipe.call(encode("PING")) == b"PONG"
        pipe.close()

    asyncio.run(main())


def test_an_address_is_parsed_once_and_never_shows_its_password() -> None:
    address = RedisAddress.parse("redis://bot:s%40cret@redis.test:6390/3")
    assert address == RedisAddress("redis.test", 6390, 3, "bot", "s@cret")
    assert "s@cret" not in repr(address) and "s%40cret" not in repr(address)
    assert RedisPipe(address).address is address

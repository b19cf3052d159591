"""Gateways and the engine over real Redis Streams, in one process: a command's answer
comes after its commit; a command delivered again after a crash is answered from
storage, never applied twice; one taken but not committed is applied by the next
engine; with no engine the gateway gives up after its bounded wait (-1007)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
import redis

from exchange_support import NOW, SYMBOL, buy
from sandex.bootstrap import Sandex
from sandex.broker.codec import decode, encode
from sandex.broker.engine_server import CONSUMER, GROUP, EngineServer
from sandex.broker.redis_streams import (
    MarketFollower,
    RedisEngineLink,
    StreamNames,
    connect,
    connect_gateway,
)
from sandex.exchange import MarketData, OrderStatus, default_symbols
from sandex.exchange.symbols import symbols_by_name
from sandex.keys import RiskPolicy
from sandex.service.engine_commands import EngineUnavailable, Place, Reply
from sandex.service.exchange_core import ExchangeCore
from sandex.service.market_feed import MarketFeed, MarketReadModel
from sandex.service.ports import History
from sandex.storage.exchange_store import SqlExchangeStore
from support import REDIS_URL
from trading_support import new_exchange

ALICE = 1
UNIT = 10**8
GATEWAY = "gw-test"
SYMBOLS = symbols_by_name(default_symbols())


class FixedClock:
    def now(self) -> int:
        return NOW


async def _serving(
    sx: Sandex, namespace: str, body: Callable[[RedisEngineLink, ExchangeCore], Awaitable[Any]]
) -> Any:
    """Run ``body(link, core)`` while an engine (a fresh one over ``sx``'s database)
    serves ``namespace``; the engine stops afterwards as at shutdown."""
    core = new_exchange(sx).core
    core.start(NOW)
    client = connect(REDIS_URL)
    names = StreamNames(namespace)
    feed = MarketFeed(core.venue.engine, core.symbols, now=NOW)
    server = EngineServer(core, feed, client, names, FixedClock())
    link = RedisEngineLink(connect_gateway(REDIS_URL), names, timeout_s=5)
    link.start()
    serving = asyncio.get_running_loop().create_task(server.run())
    try:
        return await body(link, core)
    finally:
        serving.cancel()
        link.stop()
        await asyncio.sleep(0.01)
        core.close()
        await client.aclose()


def _fund(sx: Sandex) -> None:
    SqlExchangeStore(sx.db).add_credit(ALICE, "USDT", 100_000 * UNIT, "credit", NOW)


def _alices_orders(sx: Sandex) -> list[str]:
    orders = SqlExchangeStore(sx.db).orders(ALICE, SYMBOL, History(limit=100))
    return [o.client_order_id for o in orders]


def test_an_order_is_answered_after_its_commit_and_a_policy_refusal_comes_back(
    sandex: Sandex, redis_namespace: str
) -> None:
    _fund(sandex)

    async def body(link: RedisEngineLink, core: ExchangeCore) -> None:
        reply = await link.submit(Place(buy("0.01", "50000", account=ALICE, cid="a-1")), NOW)
        assert reply.rejected is None and reply.changed
        (order,) = reply.orders
        assert order.status is OrderStatus.NEW and order.client_order_id == "a-1"
        assert _alices_orders(sandex) == ["a-1"]  # committed before the answer
        policy = RiskPolicy(max_notional=Decimal(100))
        refused = await link.submit(Place(buy("0.01", "50000", account=ALICE), 5, policy), NOW)
        assert refused.refusal is not None and refused.refusal.limit == "max_notional"

    asyncio.run(_serving(sandex, redis_namespace, body))


async def _answers(namespace: str, count: int) -> list[Reply]:
    """Wait for ``count`` answers on the test gateway's stream."""
    client = connect(REDIS_URL)
    stream = StreamNames(namespace).replies(GATEWAY)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            entries = await client.xrange(stream)
            if len(entries) >= count:
                return [decode(fields[b"r"]) for _, fields in entries]
            await asyncio.sleep(0.02)
        raise AssertionError(f"fewer than {count} answers")
    finally:
        await client.aclose()


async def _taken_by_a_dead_engine(namespace: str, command_id: str, command: Place) -> None:
    """Send ``command`` as a gateway does, and take it as an engine that then died
    would have: delivered to the consumer group, never acknowledged."""
    client = connect(REDIS_URL)
    names = StreamNames(namespace)
    try:
        if not await client.exists(names.commands):
            await client.xgroup_create(names.commands, GROUP, id="0", mkstream=True)
        fields = {"i": command_id, "g": GATEWAY, "c": encode(command)}
        await client.xadd(names.commands, fields)  # type: ignore[arg-type]
        taken = await client.xreadgroup(GROUP, CONSUMER, {names.commands: ">"}, count=10)
        assert taken and taken[0][1]
    finally:
        await client.aclose()


def test_a_command_delivered_again_is_answered_from_storage_and_not_applied_twice(
    sandex: Sandex, redis_namespace: str
) -> None:
    _fund(sandex)
    command = Place(buy("0.01", "50000", account=ALICE, cid="once"))

    async def first() -> list[Reply]:
        await _taken_by_a_dead_engine(redis_namespace, "command-1", command)
        return await _serving(sandex, redis_namespace, lambda *_: _answers(redis_namespace, 1))

    (applied,) = asyncio.run(first())
    assert applied.rejected is None and _alices_orders(sandex) == ["once"]

    async def again() -> list[Reply]:  # committed, but the acknowledgement was lost
        await _taken_by_a_dead_engine(redis_namespace, "command-1", command)
        return await _serving(sandex, redis_namespace, lambda *_: _answers(redis_namespace, 2))

    replies = asyncio.run(again())
    assert encode(replies[1]) == encode(applied)  # the same answer, from storage
    assert _alices_orders(sandex) == ["once"]  # applied once


def test_a_command_taken_but_not_committed_is_applied_by_the_next_engine(
    sandex: Sandex, redis_namespace: str
) -> None:
    _fund(sandex)

    async def scenario() -> list[Reply]:
        command = Place(buy("0.01", "50000", account=ALICE, cid="left-over"))
        await _taken_by_a_dead_engine(redis_namespace, "command-2", command)
        return await _serving(sandex, redis_namespace, lambda *_: _answers(redis_namespace, 1))

    (reply,) = asyncio.run(scenario())
    assert reply.rejected is None and reply.orders[0].client_order_id == "left-over"
    assert _alices_orders(sandex) == ["left-over"]


def test_without_an_engine_a_gateway_gives_up_after_its_bounded_wait(
    redis_namespace: str,
) -> None:
    async def scenario() -> float:
        link = RedisEngineLink(
            connect_gateway(REDIS_URL), StreamNames(redis_namespace), timeout_s=0.3
        )
        link.start()
        began = time.monotonic()
        try:
            await link.submit(Place(buy("0.01", "50000", account=ALICE)), NOW)
        except EngineUnavailable:
            return time.monotonic() - began
        finally:
            link.stop()
        raise AssertionError("answered without an engine")

    waited = asyncio.run(scenario())
    assert 0.3 <= waited < 2


def test_with_redis_unreachable_a_gateway_answers_at_once_that_the_status_is_unknown() -> None:
    async def scenario() -> float:
        link = RedisEngineLink(
            connect_gateway("redis://127.0.0.1:1/0"), StreamNames("nowhere"), timeout_s=5
        )
        began = time.monotonic()
        try:
            await link.submit(Place(buy("0.01", "50000", account=ALICE)), NOW)
        except EngineUnavailable as exc:
            assert "unreachable" in str(exc)
            return time.monotonic() - began
        finally:
            link.stop()
        raise AssertionError("answered without Redis")

    assert asyncio.run(scenario()) < 3


def test_stopping_a_link_and_its_follower_while_they_read_is_quiet(
    redis_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        names = StreamNames(redis_namespace)
        gateway = connect_gateway(REDIS_URL)
        link = RedisEngineLink(gateway, names, timeout_s=0.2)
        model = MarketReadModel(SYMBOLS, MarketData(SYMBOLS.values()))
        follower = MarketFollower(gateway, names, link, model)
        link.start()
        follower.start()
        await asyncio.sleep(0.5)  # blocked in their reads (no engine: the follower retries)
        caplog.clear()
        link.stop()
        follower.stop()
        await asyncio.sleep(0.1)

    with caplog.at_level(logging.DEBUG, logger="sandex.broker"):
        asyncio.run(scenario())
    assert caplog.records == []


def test_commands_submitted_while_an_entry_is_on_its_way_go_out_together(
    redis_namespace: str,
) -> None:
    names = StreamNames(redis_namespace)

    async def scenario() -> list[str]:
        link = RedisEngineLink(connect_gateway(REDIS_URL), names, timeout_s=0.3)
        order = Place(buy("0.01", "50000", account=ALICE))
        try:  # no engine: every caller gives up after its wait
            first = asyncio.gather(*(link.submit(order, NOW) for _ in range(30)))
            await asyncio.sleep(0)  # the first entry goes out ...
            second = asyncio.gather(*(link.submit(order, NOW) for _ in range(20)))
            outcomes = await asyncio.gather(first, second, return_exceptions=True)
        finally:
            link.stop()
        return [type(o).__name__ for o in outcomes]

    assert asyncio.run(scenario()) == ["EngineUnavailable", "EngineUnavailable"]
    client = redis.Redis.from_url(REDIS_URL)
    try:
        entries = client.xrange(names.commands)
    finally:
        client.close()
    sizes = [len(fields[b"i"].split(b",")) for _, fields in entries]
    assert sum(sizes) == 50 and len(entries) < 50, sizes  # ... the rest with the next

"""The gateway's user data hub: each account's events to its subscriptions, made once,
and the watches that tell the engine which accounts to make events for."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from exchange_support import NOW
from sandex.exchange import default_symbols
from sandex.exchange.account_events import BalanceDelta
from sandex.exchange.symbols import symbols_by_name
from sandex.service import account_streams
from sandex.service.account_streams import WATCH_MS, AccountStreams
from sandex.service.engine_commands import EngineCommand, EngineUnavailable, Reply, Watch

UNIT = 10**8


class Clock:
    def now(self) -> int:
        return NOW


class Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def deliver(self, event: str) -> None:
        self.events.append(orjson.loads(event))


class Engine:
    """An engine link that records what it is sent; ``down`` makes it unreachable."""

    def __init__(self) -> None:
        self.commands: list[EngineCommand] = []
        self.down = False

    async def submit(self, command: EngineCommand, now: int) -> Reply:
        if self.down:
            raise EngineUnavailable("the engine did not answer in 1.0 s")
        self.commands.append(command)
        return Reply()


def _hub(engine: Engine | None = None) -> AccountStreams:
    return AccountStreams(symbols_by_name(default_symbols()), Clock(), engine)


def test_each_accounts_events_reach_its_subscriptions_only() -> None:
    hub = _hub()
    alice, alice_too, bob = Sink(), Sink(), Sink()
    hub.subscribe(1, alice)
    hub.subscribe(1, alice_too)
    hub.subscribe(2, bob)
    hub.publish([BalanceDelta(1, "USDT", 5 * UNIT, NOW - 1), BalanceDelta(3, "BTC", UNIT, NOW)])
    expected = {"e": "balanceUpdate", "E": NOW, "a": "USDT", "d": "5.00000000", "T": NOW - 1}
    assert alice.events == alice_too.events == [expected]
    assert bob.events == []
    hub.unsubscribe(1, alice)
    hub.publish([BalanceDelta(1, "USDT", UNIT, NOW)])
    assert len(alice.events) == 1 and len(alice_too.events) == 2
    assert hub.subscribers() == 2 and hub.subscribers(1) == 1


def test_a_subscription_is_watched_at_once_and_renewed_while_it_lasts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(account_streams, "WATCH_RENEW_S", 0.01)
    engine = Engine()
    hub = _hub(engine)

    async def main() -> None:
        hub.subscribe(1, Sink())
        await hub.watch(1)
        assert engine.commands == [Watch((1,), NOW + WATCH_MS)]
        hub.subscribe(2, Sink())
        hub.start()
        await asyncio.sleep(0.05)
        assert Watch((1, 2), NOW + WATCH_MS) in engine.commands
        engine.down = True  # renewals fail: one line, then quiet
        await asyncio.sleep(0.05)
        engine.down = False
        engine.commands.clear()
        await asyncio.sleep(0.05)
        hub.stop()
        assert engine.commands and all(c == Watch((1, 2), NOW + WATCH_MS) for c in engine.commands)

    with caplog.at_level(logging.WARNING, logger="sandex.service.account_streams"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "not renewed" in lines[0] and "EngineUnavailable" in lines[0]
    assert "renewed at the engine again" in lines[1]

"""The engine's side of the broker: applies the commands gateways put on the commands
stream, answers each gateway once the batch is committed, and publishes the committed
events (see :mod:`sandex.broker.redis_streams` for the streams)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from sandex.broker.codec import CodecError, decode, encode
from sandex.broker.redis_streams import BATCH, BLOCK_MS, StreamNames, joined, split
from sandex.exchange import Rejected
from sandex.service.account_feed import AccountFeed, capture_events
from sandex.service.engine_commands import (
    Cancel,
    CancelList,
    CancelOpen,
    Check,
    Place,
    PlaceList,
    Replace,
    Reply,
    Snapshot,
    Watch,
)
from sandex.service.exchange_core import ExchangeCore
from sandex.service.failures import Quietly, report_failure
from sandex.service.journal import AppliedCommand
from sandex.service.market_feed import MarketFeed
from sandex.service.ports import Clock

__all__ = ["EngineServer", "GROUP", "CONSUMER"]

_log = logging.getLogger(__name__)

GROUP: Final = "engine"
CONSUMER: Final = "engine"
REPLIES_KEPT: Final = 10_000
EVENTS_KEPT: Final = 100_000
REPLY_STREAM_TTL_S: Final = 600
PUBLISH_EVERY_S: Final = 0.05
ALIVE_MS: Final = 3000
_COMMANDS: Final = (Place, Check, Cancel, CancelOpen, Replace, PlaceList, CancelList, Watch)
_BAD_COMMAND: Final = Rejected(-1000, "An unknown error occurred while processing the request.")


class EngineServer:
    """The engine's side: applies commands in order, answers after the commit, publishes
    the committed events."""

    def __init__(
        self,
        core: ExchangeCore,
        feed: MarketFeed,
        client: aioredis.Redis,
        names: StreamNames,
        clock: Clock,
    ) -> None:
        self.core = core
        self.feed = feed
        self._redis = client
        self._names = names
        self._clock = clock
        self._lock = asyncio.Lock()
        self.accounts = AccountFeed(core.venue, now=clock.now())
        core.journal.capture = capture_events(feed, self.accounts)
        core.copy_records = False  # each answer is encoded as it is made
        self.applied = 0

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._names.commands, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        """Serve until canceled: first what was delivered before a crash and never
        acknowledged, then new commands; publish the market's events meanwhile."""
        await self._ensure_group()
        loop = asyncio.get_running_loop()
        publisher = loop.create_task(self._publish_ticks())
        heartbeat = loop.create_task(self._heartbeat())
        try:
            redelivered = True
            failures = Quietly(
                _log,
                "the broker is unreachable; retrying",
                level=logging.WARNING,
                recovered="the broker is reachable again",
            )
            while True:
                try:
                    got: Any = await self._redis.xreadgroup(
                        GROUP,
                        CONSUMER,
                        {self._names.commands: "0" if redelivered else ">"},
                        count=BATCH,
                        block=None if redelivered else BLOCK_MS,
                    )
                    entries = got[0][1] if got else []
                    if redelivered and not entries:
                        redelivered = False
                        continue
                    while entries:  # what came meanwhile comes with each batch's answers
                        entries = await self._process(entries, redelivered)
                except asyncio.CancelledError:
                    raise
                except (RedisError, OSError) as exc:
                    failures.failed(exc)
                    redelivered = True  # what was taken but not acknowledged comes again
                    await asyncio.sleep(0.5)
                    if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                        try:  # a broker that came back empty; it may drop again
                            await self._ensure_group()
                        except (RedisError, OSError):
                            pass  # the next read fails and comes here again
                    continue
                failures.succeeded()
        finally:
            publisher.cancel()
            heartbeat.cancel()

    async def _heartbeat(self) -> None:
        """Say this engine serves (``NS:engine:alive``), every second."""
        pid = str(os.getpid())
        while True:
            try:
                await self._redis.set(self._names.alive, pid, px=ALIVE_MS)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                pass  # the command loop reports the broker's absence
            await asyncio.sleep(ALIVE_MS / 3000)

    async def _process(self, entries: list[Any], redelivered: bool) -> list[Any]:
        """Apply ``entries``, answer them once committed and acknowledge them; return the
        commands that came meanwhile (read in the same round trip as the answers; none
        while redelivered ones are served, which are read again from the start)."""
        core = self.core
        journal = core.journal
        apply = core.apply
        now = self._clock.now
        commands: list[tuple[bytes, list[tuple[str, bytes]]]] = []
        for _entry_id, fields in entries:
            gateway = fields.get(b"g", b"")
            try:
                commands.append((gateway, split(fields, b"c")))
            except CodecError as exc:  # no command of it can be answered: its callers time out
                report_failure(_log, "an entry of commands did not decode; dropped", exc)
        known: dict[str, bytes] = {}
        if redelivered:
            taken = [command_id for _, batch in commands for command_id, _ in batch]
            loop = asyncio.get_running_loop()
            known = await loop.run_in_executor(None, core.store.command_replies, taken)
        replies: dict[bytes, tuple[list[bytes], list[bytes]]] = {}
        for gateway, batch in commands:
            ids, answers = replies.setdefault(gateway, ([], []))
            for command_id, payload in batch:
                ids.append(command_id.encode())
                if command_id in known:
                    answers.append(known[command_id])
                    continue
                try:
                    command = decode(payload)
                except CodecError as exc:
                    report_failure(_log, "a command did not decode; refused", exc)
                    answers.append(encode(Reply(events=[_BAD_COMMAND])))
                    continue
                if isinstance(command, Snapshot):
                    answers.append(encode(self.feed.snapshot()))
                    continue
                if not isinstance(command, _COMMANDS):  # a record, but not a command
                    _log.error("a %s is not a command; refused", type(command).__name__)
                    answers.append(encode(Reply(events=[_BAD_COMMAND])))
                    continue
                data = encode(apply(command, now()))
                journal.answered(AppliedCommand(command_id, data))
                answers.append(data)
                self.applied += 1
        await journal.durable()
        async with self._lock:
            pipe = self._redis.pipeline(transaction=False)
            self._queue_events(pipe)
            for gateway, (answered, answers) in replies.items():
                if not answered:
                    continue
                stream = self._names.replies(gateway.decode())
                entry: Any = joined(answered, answers, "r")
                pipe.xadd(stream, entry, maxlen=REPLIES_KEPT, approximate=True)
                pipe.expire(stream, REPLY_STREAM_TTL_S)
            entry_ids = [entry_id for entry_id, _ in entries]
            pipe.xack(self._names.commands, GROUP, *entry_ids)
            pipe.xtrim(self._names.commands, minid=entry_ids[-1], approximate=True)
            if not redelivered:
                pipe.xreadgroup(GROUP, CONSUMER, {self._names.commands: ">"}, count=BATCH)
            done = await pipe.execute()
        if redelivered:
            return []
        got = done[-1]
        return got[0][1] if got else []

    def _queue_events(self, pipe: Any) -> bool:
        events = self.core.journal.take_committed()
        if not events:
            return False
        pipe.xadd(self._names.events, {"e": encode(events)}, maxlen=EVENTS_KEPT, approximate=True)
        return True

    async def _publish_ticks(self) -> None:
        """Publish what the simulated market's steps did, once it is committed."""
        failures = Quietly(_log, "market events not published; retrying", level=logging.WARNING)
        while True:
            await asyncio.sleep(PUBLISH_EVERY_S)
            try:
                await self.core.journal.durable()
                async with self._lock:
                    pipe = self._redis.pipeline(transaction=False)
                    if self._queue_events(pipe):
                        await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures.failed(exc)
                continue
            failures.succeeded()

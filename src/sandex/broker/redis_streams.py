"""Gateways and one engine over Redis Streams.

Streams (``NS`` is ``SANDEX_REDIS_NAMESPACE``):

- ``NS:engine:commands`` — every gateway appends ``{g: gateway, i: command ids, c:
  commands}``: the commands its callers submitted while its previous entry was on the
  way (one entry, one round trip, for all of them), ids joined by ``,`` and codec bytes
  joined by a newline (which the codec never writes). The engine reads the stream as the
  consumer group ``engine``. What it took but did not acknowledge is delivered to it
  again when it restarts; it acknowledges a command only after the batch that applied it
  is committed, together with the command's id and answer, so a command delivered again
  is answered from storage, never applied twice.
- ``NS:engine:replies:<gateway>`` — the engine's answers to one gateway, one entry per
  engine batch: ``{i: command ids, r: answers}``, joined the same way.
- ``NS:engine:events`` — the engine's public events (trades, book changes), published
  after the batch that made them is committed, for every gateway's read model.

A gateway waits a bounded time for an answer (``SANDEX_ENGINE_TIMEOUT``, 5 s); when the
engine or the broker is away it raises :class:`EngineUnavailable` (Binance's -1007),
and goes on by itself once they are back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sandex.broker.codec import CodecError, decode, encode
from sandex.service.engine_commands import (
    EngineCommand,
    EngineUnavailable,
    Reply,
    Snapshot,
)
from sandex.service.failures import report_failure
from sandex.service.market_feed import MarketReadModel, MarketSnapshot
from sandex.service.ports import ExchangeStore

__all__ = [
    "StreamNames",
    "RedisEngineLink",
    "MarketFollower",
    "connect",
    "joined",
    "split",
    "BATCH",
    "BLOCK_MS",
]

_log = logging.getLogger(__name__)

BLOCK_MS: Final = 1000
BATCH: Final = 2048


def joined(ids: list[bytes], payloads: list[bytes], payload: str) -> dict[str, bytes]:
    """One stream entry's fields for several commands (``payload`` ``c``) or answers
    (``r``), see the module."""
    return {"i": b",".join(ids), payload: b"\n".join(payloads)}


def split(fields: dict[bytes, bytes], payload: bytes) -> list[tuple[str, bytes]]:
    """The (id, payload) pairs of an entry :func:`joined` wrote (``payload`` names the
    field: ``c`` commands, ``r`` answers). Raises :class:`CodecError` when its ids and
    payloads do not pair up."""
    ids = fields.get(b"i", b"").split(b",")
    payloads = fields.get(payload, b"").split(b"\n")
    if len(ids) != len(payloads):
        raise CodecError(f"{len(ids)} ids for {len(payloads)} payloads")
    return [(i.decode(), p) for i, p in zip(ids, payloads, strict=True)]


class StreamNames:
    def __init__(self, namespace: str) -> None:
        self.commands = f"{namespace}:engine:commands"
        self.alive = f"{namespace}:engine:alive"
        """The serving engine's process id, while it serves (expires 3 s after it stops)."""
        self.events = f"{namespace}:engine:events"
        self._replies = f"{namespace}:engine:replies:"

    def replies(self, gateway: str) -> str:
        return self._replies + gateway


def connect(url: str) -> aioredis.Redis:
    """An asyncio Redis client that fails fast (connect and reads bounded)."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=BLOCK_MS / 1000 + 4,
        health_check_interval=30,
    )


class RedisEngineLink:
    """The gateway's side: commands out, answers back (an
    :class:`~sandex.service.engine_commands.EngineLink`)."""

    def __init__(self, client: aioredis.Redis, names: StreamNames, *, timeout_s: float) -> None:
        self._redis = client
        self._names = names
        self.timeout_s = timeout_s
        self.gateway = uuid.uuid4().hex
        self._stream = names.replies(self.gateway)
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._outbox: list[tuple[bytes, bytes, asyncio.Future[Any]]] = []
        """Commands submitted while the previous entry was on its way (sent together)."""
        self._sender: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reading answers (on the running loop)."""
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None

    async def submit(self, command: EngineCommand, now: int) -> Reply:
        reply = await self._call(command)
        if not isinstance(reply, Reply):
            raise EngineUnavailable("the engine answered something else")
        return reply

    async def snapshot(self) -> MarketSnapshot:
        """The engine's books as last published (for a read model to start from)."""
        snapshot = await self._call(Snapshot())
        if not isinstance(snapshot, MarketSnapshot):
            raise EngineUnavailable("the engine answered something else")
        return snapshot

    async def _call(self, command: EngineCommand | Snapshot) -> object:
        command_id = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting[command_id] = future
        self._outbox.append((command_id.encode(), encode(command), future))
        if self._sender is None:
            self._sender = loop.create_task(self._send())
        try:
            async with asyncio.timeout(self.timeout_s):
                return await future
        except TimeoutError:
            raise EngineUnavailable("no answer from the engine in time") from None
        finally:
            self._waiting.pop(command_id, None)

    async def _send(self) -> None:
        """Append what is in the outbox to the commands stream, one entry at a time: what
        callers submit while an entry is on its way goes in the next one."""
        try:
            while self._outbox:
                sending, self._outbox = self._outbox, []
                fields: Any = joined([i for i, _, _ in sending], [c for _, c, _ in sending], "c")
                fields["g"] = self.gateway
                try:
                    await self._redis.xadd(self._names.commands, fields)
                except (RedisError, OSError) as exc:
                    failure = EngineUnavailable(f"the broker is unreachable: {exc}")
                    for _, _, future in sending:
                        if not future.done():
                            future.set_exception(failure)
        finally:
            self._sender = None

    async def _read(self) -> None:
        last = "0-0"
        failing = False
        while True:
            try:
                got: Any = await self._redis.xread(
                    {self._stream: last}, count=BATCH, block=BLOCK_MS
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    report_failure(
                        _log, "the broker is unreachable; answers wait", exc, level=logging.WARNING
                    )
                failing = True
                await asyncio.sleep(0.5)
                continue
            if failing:
                _log.warning("the broker is reachable again")
                failing = False
            for _stream, entries in got or ():
                for entry_id, fields in entries:
                    last = entry_id
                    try:
                        answers = split(fields, b"r")
                    except CodecError as exc:
                        report_failure(_log, "answers from the engine did not decode", exc)
                        continue
                    for command_id, data in answers:
                        future = self._waiting.get(command_id)
                        if future is None or future.done():
                            continue  # its caller gave up (-1007)
                        try:
                            future.set_result(decode(data))
                        except CodecError as exc:
                            report_failure(_log, "an answer from the engine did not decode", exc)


class _HistoryUnavailable(Exception):
    """The stored market history could not be read (the follower retries)."""


class MarketFollower:
    """The gateway's side of the events: keeps a :class:`MarketReadModel` current."""

    def __init__(
        self,
        client: aioredis.Redis,
        names: StreamNames,
        link: RedisEngineLink,
        model: MarketReadModel,
        *,
        history: ExchangeStore | None = None,
    ) -> None:
        self._redis = client
        self._names = names
        self._link = link
        self.model = model
        model.on_gap = self._gap
        self._history = history
        """Where the stored market history is read (first) and caught up from (after a
        gap), so the model's trades and candles have no hole."""
        self._loaded = False
        self._resync = True
        self._task: asyncio.Task[None] | None = None

    def _gap(self) -> None:
        self._resync = True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _catch_up(self, store: ExchangeStore) -> None:
        """The stored history, the first time; the stored trades the model has not seen,
        after a gap (off the loop: it reads the database)."""
        model = self.model
        keep = model.market_data.keep_trades
        try:
            if not self._loaded:
                model.load_history(await asyncio.to_thread(store.market_history, keep))
                self._loaded = True
                return
            for symbol in model.symbols:
                first = model.next_trade_id(symbol)
                model.catch_up(await asyncio.to_thread(store.public_trades, symbol, first, keep))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _HistoryUnavailable(str(exc)) from exc

    async def _last_id(self) -> str:
        newest: Any = await self._redis.xrevrange(self._names.events, count=1)
        return str(newest[0][0].decode()) if newest else "0-0"

    async def _run(self) -> None:
        last = "0-0"
        failing = False
        while True:
            try:
                if self._resync:
                    last = await self._last_id()  # then storage: it has all before that
                    if self._history is not None:
                        await self._catch_up(self._history)
                    self.model.load(await self._link.snapshot())
                    self._resync = False
                got: Any = await self._redis.xread(
                    {self._names.events: last}, count=BATCH, block=BLOCK_MS
                )
            except asyncio.CancelledError:
                raise
            except (EngineUnavailable, RedisError, OSError, _HistoryUnavailable) as exc:
                if not failing:
                    report_failure(
                        _log,
                        "the market read model cannot follow the engine; retrying",
                        exc,
                        level=logging.WARNING,
                    )
                failing = True
                await asyncio.sleep(0.5)
                continue
            if failing:
                _log.warning("the market read model follows the engine again")
                failing = False
            for _stream, entries in got or ():
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    try:
                        events = decode(fields[b"e"])
                    except CodecError as exc:
                        report_failure(_log, "market events did not decode; resyncing", exc)
                        self._resync = True
                        break
                    for event in events:
                        self.model.apply(event)
                    if self._resync:
                        break

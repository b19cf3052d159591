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
  after the batch that made them is committed, for every gateway's read model, with
  the users' account events of the same batches (order updates, balances) for the
  gateways' user data streams.

A gateway waits a bounded time for an answer (``SANDEX_ENGINE_TIMEOUT``, 5 s); when the
engine or the broker is away it raises :class:`EngineUnavailable` (Binance's -1007),
and goes on by itself once they are back. A gateway speaks to Redis over lean
connections (:class:`~sandex.storage.redis_pipe.RedisPipe`): one for its commands, one
for each blocking read (its answers; the events); the engine uses redis-py's client.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, Final

import redis.asyncio as aioredis

from sandex.broker.codec import CodecError, decode, encode
from sandex.exchange.account_events import AccountEvent
from sandex.service.account_feed import AccountHandOver
from sandex.service.engine_commands import (
    EngineCommand,
    EngineUnavailable,
    Reply,
    Snapshot,
)
from sandex.service.failures import Quietly, report_failure
from sandex.service.market_feed import MarketReadModel, MarketSnapshot
from sandex.service.ports import ExchangeStore
from sandex.storage.redis_pipe import RedisAddress, RedisPipe, RedisReplyError
from sandex.storage.redis_pipe import encode as encode_command

__all__ = [
    "StreamNames",
    "RedisEngineLink",
    "MarketFollower",
    "connect",
    "connect_gateway",
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
    """An asyncio Redis client that fails fast (connect and reads bounded): the engine's
    side (:mod:`sandex.broker.engine_server`)."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=BLOCK_MS / 1000 + 4,
        health_check_interval=30,
    )


def connect_gateway(url: str) -> RedisAddress:
    """Where a gateway's :class:`RedisEngineLink` and :class:`MarketFollower` reach the
    broker: each opens its own lean connections (:class:`RedisPipe`) there, on first use.
    Raises ValueError for a URL :class:`RedisAddress` does not read."""
    return RedisAddress.parse(url)


CONNECT_TIMEOUT_S: Final = 2.0
READ_TIMEOUT_S: Final = BLOCK_MS / 1000 + 4
"""How long a blocking read may go unanswered before its connection is taken for dead."""
RETRY_S: Final = 0.5


class _Background:
    """One task on the running loop: started when not running, cancelled at stop."""

    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()


def _fields(flat: Any) -> dict[bytes, bytes]:
    """A stream entry's fields from Redis's flat ``[name, value, ...]``."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def _read_stream(pipe: RedisPipe, stream: str, last: bytes) -> list[Any]:
    """The entries ``[id, [name, value, ...]]`` of ``stream`` after ``last``, waiting up
    to :data:`BLOCK_MS` for one. A connection that does not answer in
    :data:`READ_TIMEOUT_S` is closed (the next read opens another)."""
    command = encode_command("XREAD", "COUNT", BATCH, "BLOCK", BLOCK_MS, "STREAMS", stream, last)
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            got: Any = await pipe.call(command)
    except TimeoutError:
        pipe.close()
        raise ConnectionError(f"no answer from Redis in {READ_TIMEOUT_S:.0f} s") from None
    return got[0][1] if got else []


class RedisEngineLink:
    """The gateway's side: commands out, answers back (an
    :class:`~sandex.service.engine_commands.EngineLink`). Commands go out on a connection
    of their own, never behind the blocking read of the answers."""

    def __init__(self, broker: RedisAddress, names: StreamNames, *, timeout_s: float) -> None:
        self._names = names
        self.timeout_s = timeout_s
        self.gateway = uuid.uuid4().hex
        self._stream = names.replies(self.gateway)
        self._commands = RedisPipe(broker, connect_timeout_s=CONNECT_TIMEOUT_S)
        self._answers = RedisPipe(broker, connect_timeout_s=CONNECT_TIMEOUT_S)
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._outbox: list[tuple[bytes, bytes, asyncio.Future[Any]]] = []
        """Commands submitted while the previous entry was on its way (sent together)."""
        self._reader = _Background(self._read)
        self._sender = _Background(self._send)

    def start(self) -> None:
        """Start reading answers (on the running loop)."""
        self._reader.start()

    def stop(self) -> None:
        """Stop reading and sending, quietly, and close the connections (a later call
        opens them again)."""
        self._reader.stop()
        self._sender.stop()
        self._commands.close()
        self._answers.close()

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
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = future
        self._outbox.append((command_id.encode(), encode(command), future))
        self._sender.start()
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
        pipe = self._commands
        while self._outbox:
            sending, self._outbox = self._outbox, []
            fields = joined([i for i, _, _ in sending], [c for _, c, _ in sending], "c")
            xadd = encode_command(
                "XADD", self._names.commands, "*", "i", fields["i"], "c", fields["c"],
                "g", self.gateway,
            )  # fmt: skip
            try:
                async with asyncio.timeout(self.timeout_s):
                    await pipe.call(xadd)
            except (RedisReplyError, OSError, TimeoutError) as exc:
                if isinstance(exc, TimeoutError):
                    pipe.close()  # a connection that does not answer is taken for dead
                    exc = ConnectionError("no answer from Redis in time")
                failure = EngineUnavailable(f"the broker is unreachable: {exc}")
                for _, _, future in sending:
                    if not future.done():
                        future.set_exception(failure)

    async def _read(self) -> None:
        last = b"0-0"
        failures = Quietly(
            _log,
            "the broker is unreachable; answers wait",
            level=logging.WARNING,
            recovered="the broker is reachable again",
        )
        while True:
            try:
                entries = await _read_stream(self._answers, self._stream, last)
            except Exception as exc:
                failures.failed(exc)
                await asyncio.sleep(RETRY_S)
                continue
            failures.succeeded()
            for entry_id, flat in entries:
                last = entry_id
                try:
                    answers = split(_fields(flat), b"r")
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
    """The gateway's side of the events: keeps a :class:`MarketReadModel` current. It
    reads the events on a connection of its own (the read blocks)."""

    def __init__(
        self,
        broker: RedisAddress,
        names: StreamNames,
        link: RedisEngineLink,
        model: MarketReadModel,
        *,
        history: ExchangeStore | None = None,
        publish_accounts: Callable[[list[AccountEvent]], None] | None = None,
    ) -> None:
        self._events = RedisPipe(broker, connect_timeout_s=CONNECT_TIMEOUT_S)
        self.publish_accounts = publish_accounts
        """Given the account events of each entry of the events stream, in order (None:
        they are dropped). Those of entries skipped by a resync are lost."""
        self._hand_over = AccountHandOver(_log)
        self._names = names
        self._link = link
        self.model = model
        model.on_gap = self._gap
        self._history = history
        """Where the stored market history is read (first) and caught up from (after a
        gap), so the model's trades and candles have no hole."""
        self._loaded = False
        self._resync = True
        self._task = _Background(self._run)

    def _gap(self) -> None:
        self._resync = True

    def start(self) -> None:
        self._task.start()

    def stop(self) -> None:
        """Stop following, quietly, and close the connection."""
        self._task.stop()
        self._events.close()

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

    async def _last_id(self) -> bytes:
        command = encode_command("XREVRANGE", self._names.events, "+", "-", "COUNT", 1)
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                newest: Any = await self._events.call(command)
        except TimeoutError:
            self._events.close()
            raise ConnectionError(f"no answer from Redis in {READ_TIMEOUT_S:.0f} s") from None
        return bytes(newest[0][0]) if newest else b"0-0"

    async def _run(self) -> None:
        last = b"0-0"
        failures = Quietly(
            _log,
            "the market read model cannot follow the engine; retrying",
            level=logging.WARNING,
            recovered="the market read model follows the engine again",
        )
        while True:
            try:
                if self._resync:
                    last = await self._last_id()  # then storage: it has all before that
                    if self._history is not None:
                        await self._catch_up(self._history)
                    self.model.load(await self._link.snapshot())
                    self._resync = False
                entries = await _read_stream(self._events, self._names.events, last)
            except (EngineUnavailable, RedisReplyError, OSError, _HistoryUnavailable) as exc:
                failures.failed(exc)
                await asyncio.sleep(RETRY_S)
                continue
            failures.succeeded()
            for entry_id, flat in entries:
                last = entry_id
                try:
                    events = decode(_fields(flat)[b"e"])
                except (CodecError, KeyError) as exc:
                    report_failure(_log, "market events did not decode; resyncing", exc)
                    self._resync = True
                    break
                for event in self._hand_over.market_events(events, self.publish_accounts):
                    self.model.apply(event)
                if self._resync:
                    break

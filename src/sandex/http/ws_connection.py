"""What every WebSocket connection of the gateway shares: its bounded outgoing queue
(:class:`Outbox`), the per-IP connection-attempt limit (:class:`Attempts`), refusing a
handshake with Binance's JSON error (:func:`refuse`), and running a connection's reader
and writer for its life (:func:`hold`).

Used by the market streams (:mod:`sandex.http.websocket`) and the WebSocket API
(:mod:`sandex.http.ws_api`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import struct
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, MutableMapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Final

import orjson
from limits.storage import Storage

from sandex.http.errors import RateLimited, error_for
from sandex.service.failures import Quietly

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import (
        WebSocketsSansIOProtocol as _SansIO,
    )
    from websockets.protocol import State

    _OPEN: State | None = State.OPEN
except ImportError:  # pragma: no cover - uvicorn without websockets
    _SansIO = None  # type: ignore[assignment, misc]
    _OPEN = None

__all__ = [
    "ConnectionLimits",
    "Scope",
    "Message",
    "Receive",
    "Send",
    "Outbox",
    "text_frame",
    "Attempts",
    "refuse",
    "hold",
    "incoming",
    "scope_headers",
    "announce_shutdown",
    "announce_on_exit_signals",
    "CLOSE_SLOW_CONSUMER",
    "CLOSE_LIFETIME",
]

_log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLOSE_SLOW_CONSUMER: Final = 1008
CLOSE_LIFETIME: Final = 1001
"""Going away: the connection reached its 24 h life; clients reconnect."""


@dataclass(frozen=True)
class ConnectionLimits:
    """What every WebSocket connection is held to (Binance's rules), and Sandex's queue
    bound."""

    connections_per_ip: int = 300
    connection_window_ms: int = 300_000
    lifetime_s: float = 86_400.0
    pending_messages: int = 10_000
    """Messages a connection may have waiting to be written before it is dropped as a
    slow consumer (a depth-snapshot burst on 1024 streams fits)."""
    close_timeout_s: float = 1.0
    """How long a closing connection may take to accept its close frame."""


class Outbox:
    """A connection's outgoing messages: :meth:`put` runs on the event loop and never
    waits, the writer task (:meth:`write`) sends. A connection whose queue overflows is
    closed as a slow consumer, never holding up the others.

    Served by uvicorn's ``websockets-sansio`` protocol (``sandex serve``), the messages
    queued in one turn of the event loop go out as whole text frames in one write to
    the connection's transport (:attr:`framed`; :meth:`put_frame` takes a frame made
    once for many connections): no task wakes per message, and no ASGI message. The
    queue waits while the transport's buffer is full (uvicorn's backpressure), and
    nothing is written once the connection is closing or gone. The close frame, pings
    and pongs stay uvicorn's. Under any other server, each message is an ASGI
    ``websocket.send``."""

    __slots__ = (
        "_flushing",
        "_limit",
        "_peer",
        "_queue",
        "_wake",
        "closing",
        "framed",
        "gone",
        "immediate",
        "ip",
        "writer",
    )

    def __init__(self, ip: str, limit: int) -> None:
        self.ip = ip
        self.closing: tuple[int, str] | None = None
        self.gone = False
        """The client closed or vanished: nothing more can be sent."""
        self.writer: asyncio.Task[None] | None = None
        self._queue: deque[str | bytes] = deque()
        """Texts, and (once :attr:`framed`) whole frames."""
        self._wake = asyncio.Event()
        self._limit = limit
        self._peer: _Peer | None = None
        self._flushing = False
        self.immediate = False
        """Write each message as it is given (when the transport takes it) rather than
        with the others at the end of the loop's turn: a connection of few messages that
        must not wait behind a market stream's fan-out (the user data stream)."""
        self.framed = False
        """Messages go to the transport as frames made here (see the class)."""

    def attach(self, send: Send) -> None:
        """Write frames straight to ``send``'s transport if it is uvicorn's
        websockets-sansio protocol (called by :meth:`write`; once is enough)."""
        if self._peer is None:
            self._peer = _Peer.of(send)
            if self._peer is not None:
                self.framed = True
                if self._queue:
                    self._schedule()

    def reply(self, answer: object) -> None:
        if self.closing is None:
            self.put(orjson.dumps(answer).decode())

    def shutdown_notice(self, now: int) -> object:
        """What this connection is told when the server is about to stop (Binance's
        ``serverShutdown`` event, as its kind of connection shows it)."""
        return {"e": "serverShutdown", "E": now}

    def put(self, text: str) -> None:
        self._add(text)

    def put_frame(self, frame: bytes) -> None:
        """Queue a whole text frame (:func:`text_frame`); only when :attr:`framed`."""
        self._add(frame)

    def _add(self, item: str | bytes) -> None:
        queue = self._queue
        if len(queue) >= self._limit:
            _log.warning(
                "websocket client %s dropped: %d messages waiting (slow consumer)",
                self.ip,
                len(queue),
            )
            self.close(CLOSE_SLOW_CONSUMER, "Slow consumer")
            return
        queue.append(item)
        if self._peer is not None:
            if self.immediate:
                self._flush_safely()
            elif not self._flushing:
                self._schedule()
        elif not self._wake.is_set():
            self._wake.set()

    def _flush_safely(self) -> None:
        try:
            self._flush()
        except Exception as exc:  # one connection's failure is not the others'
            _log.warning("websocket client %s: write failed: %s", self.ip, exc)
            self.close(1011, "Internal error")

    def _schedule(self) -> None:
        assert self._peer is not None
        self._flushing = True
        self._peer.flusher.add(self)

    def _flush(self) -> None:
        """Write what is queued, as one write, unless the transport is full (then the
        writer waits for it to drain) or the connection is closing or gone."""
        self._flushing = False
        queue = self._queue
        peer = self._peer
        if not queue or self.closing is not None or peer is None:
            return
        state = peer.state()
        if state != _WRITABLE:
            if state == _GONE:
                queue.clear()  # the reader hears the disconnect
            else:
                self._wake.set()  # the writer waits for the transport to drain
            return
        if len(queue) == 1:
            peer.write(_as_frame(queue.pop()))
        else:
            data = b"".join(map(_as_frame, queue))
            queue.clear()
            peer.write(data)

    def close(self, code: int, reason: str) -> None:
        """Stop sending (the queue is dropped) and end the connection with ``code``."""
        if self.closing is None:
            self.closing = (code, reason)
            self._queue.clear()
            if self.writer is not None:
                self.writer.cancel()

    async def write(self, send: Send) -> None:
        self.attach(send)
        queue = self._queue
        wake = self._wake
        peer = self._peer
        if peer is not None:  # wakes only when the transport was full
            while True:
                await wake.wait()
                wake.clear()
                await peer.drained()
                self._flush()
        while True:
            await wake.wait()
            wake.clear()
            while queue:
                item = queue.popleft()
                if type(item) is bytes:  # pragma: no cover - frames are queued only when framed
                    raise TypeError("a frame queued on an unframed connection")
                await send({"type": "websocket.send", "text": item})


def text_frame(data: bytes) -> bytes:
    """``data`` (UTF-8) as one unmasked, final WebSocket text frame (RFC 6455 5.2), as a
    server sends it."""
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + data
    return struct.pack("!BBQ", 0x81, 127, n) + data


_PROTOCOL_STATE: Final = (
    "transport",
    "conn",
    "close_sent",
    "disconnected",
    "initial_response",
    "writable",
)
"""What :class:`_Peer` reads of uvicorn's protocol (not its public interface): a
protocol without them is written to through ASGI instead."""
_WRITABLE: Final = "writable"
_FULL: Final = "full"
_GONE: Final = "gone"


class _Flusher:
    """Flushes the outboxes of one event loop that were given messages in this turn of
    the loop, in one callback (not one per connection)."""

    __slots__ = ("_loop", "_pending", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[Outbox] = []
        self._scheduled = False

    def add(self, outbox: Outbox) -> None:
        self._pending.append(outbox)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        for outbox in pending:
            outbox._flush_safely()


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = (
    weakref.WeakKeyDictionary()
)


def _as_frame(item: str | bytes) -> bytes:
    return item if isinstance(item, bytes) else text_frame(item.encode())


class _Peer:
    """The uvicorn websockets-sansio protocol of one connection, written to directly.

    A text frame written here is what ``websocket.send`` would write: websockets'
    ``send_text`` changes no state of its own (uvicorn never fragments, and without
    extensions a frame is its bytes), so the protocol stays as uvicorn keeps it."""

    __slots__ = ("_protocol", "_transport", "_ws", "flusher")

    def __init__(self, protocol: Any, flusher: _Flusher) -> None:
        self._protocol = protocol
        self._transport: asyncio.WriteTransport = protocol.transport
        self._ws: Any = protocol.conn
        self.flusher = flusher

    @classmethod
    def of(cls, send: Send) -> _Peer | None:
        protocol = getattr(send, "__self__", None)
        if _SansIO is None or _OPEN is None or not isinstance(protocol, _SansIO):
            return None
        if any(not hasattr(protocol, name) for name in _PROTOCOL_STATE):
            return None  # another uvicorn than the one this was written for: ASGI sends
        if protocol.transport is None or protocol.conn.extensions:
            return None  # e.g. permessage-deflate: frames are not their bytes
        loop = asyncio.get_running_loop()
        flusher = _flushers.get(loop)
        if flusher is None:
            flusher = _flushers[loop] = _Flusher(loop)
        return cls(protocol, flusher)

    def state(self) -> str:
        """:data:`_WRITABLE`, :data:`_FULL` (uvicorn's backpressure: wait for
        :meth:`drained`) or :data:`_GONE` (closing or closed: write nothing more)."""
        p = self._protocol
        if (
            p.close_sent
            or p.disconnected
            or p.initial_response is not None
            or self._ws.state is not _OPEN
            or self._transport.is_closing()
        ):
            return _GONE
        return _WRITABLE if p.writable.is_set() else _FULL

    async def drained(self) -> None:
        await self._protocol.writable.wait()

    def write(self, data: bytes) -> None:
        self._transport.write(data)


class Attempts:
    """Connection attempts per IP in fixed windows: in this process, or (``shared``: the
    rate limiter's Redis storage, with ``--workers N``) in all of them together."""

    def __init__(self, limits: ConnectionLimits, shared: Storage | None = None) -> None:
        self._limit = limits.connections_per_ip
        self._window_ms = limits.connection_window_ms
        self._shared = shared
        self._counts: dict[str, tuple[int, int]] = {}
        """ip -> (window start, attempts in it), when counted here."""
        self._shared_failures = Quietly(
            _log, "websocket connection attempts counted per process", level=logging.WARNING
        )

    async def admit(self, ip: str, now: int) -> int:
        """0 if this attempt is allowed, else the seconds until the window ends. If the
        shared storage is out of reach, this process counts (one log line)."""
        window = now - now % self._window_ms
        count: int | None = None
        if self._shared is not None:
            key = f"ws-attempts/{window}/{ip}"
            expiry = self._window_ms // 1000 + 1
            try:
                count = await asyncio.to_thread(self._shared.incr, key, expiry)
            except Exception as exc:
                self._shared_failures.failed(exc)
            else:
                self._shared_failures.succeeded()
        if count is None:
            count = self._count_here(ip, window)
        if count <= self._limit:
            return 0
        return max(1, -(-(window + self._window_ms - now) // 1000))

    def _count_here(self, ip: str, window: int) -> int:
        start, count = self._counts.get(ip, (window, 0))
        if start != window:
            if len(self._counts) > 10_000:  # forget the IPs of windows gone by
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            count = 0
        count += 1
        self._counts[ip] = (window, count)
        return count

    async def refused(self, ip: str, now: int, scope: Scope, send: Send, close: int) -> bool:
        """Count an attempt of ``ip``; if it is over the limit, refuse its handshake
        (429, ``-1003``; ``close`` without the HTTP answer) and say so."""
        retry = await self.admit(ip, now)
        if not retry:
            return False
        minutes = self._window_ms // 60_000
        await refuse(
            scope,
            send,
            RateLimited(
                f"Too many connection attempts from {ip}: the limit is"
                f" {self._limit} per {minutes} minutes.",
                retry,
            ),
            close,
        )
        return True


def scope_headers(scope: Scope) -> dict[str, str]:
    """The handshake's headers, names lower-cased, repeated ones joined with commas."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = headers[name] + "," + value if name in headers else value
    return headers


async def incoming(outbox: Outbox, receive: Receive) -> AsyncIterator[str | bytes]:
    """Each message the client sends (a text frame's text, a binary frame's bytes),
    until it leaves (then the outbox is marked gone)."""
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.disconnect":
            outbox.gone = True
            return
        if kind == "websocket.receive":
            text = message.get("text")
            yield text if text is not None else message.get("bytes") or b""


async def hold(
    outbox: Outbox,
    reader: Coroutine[Any, Any, None],
    send: Send,
    *,
    lifetime_s: float,
    close_timeout_s: float,
    ended: Callable[[], None],
) -> None:
    """Run a connection's ``reader`` and its outbox's writer until either ends (the
    client left, or the connection was closed: its life ran out, it read too fast, it
    fell behind), call ``ended`` (it hears nothing more), then send the close frame the
    connection was closed with."""
    loop = asyncio.get_running_loop()
    outbox.attach(send)
    _live.add(outbox)
    writer = outbox.writer = loop.create_task(outbox.write(send))
    reading = loop.create_task(reader)
    life = loop.call_later(lifetime_s, outbox.close, CLOSE_LIFETIME, "Connection lifetime reached")
    if outbox.closing is not None:  # closed before it started (e.g. too many streams)
        writer.cancel()
    try:
        await asyncio.wait((reading, writer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        _live.discard(outbox)
        ended()
        life.cancel()
        reading.cancel()
        writer.cancel()
        for outcome in await asyncio.gather(reading, writer, return_exceptions=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, OSError):
                _log.error("websocket client %s: %s", outbox.ip, outcome)
        if outbox.closing is not None and not outbox.gone:
            code, reason = outbox.closing
            with suppress(TimeoutError, OSError):
                await asyncio.wait_for(
                    send({"type": "websocket.close", "code": code, "reason": reason}),
                    close_timeout_s,
                )


_live: set[Outbox] = set()
"""The connections this process is serving (see :func:`hold`)."""


def announce_shutdown(now: int) -> int:
    """Tell every connection the server is about to stop (``serverShutdown``): how many
    were told. Their clients reconnect, to another worker or once the server is back."""
    told = 0
    for outbox in list(_live):
        if outbox.closing is None and not outbox.gone:
            outbox.reply(outbox.shutdown_notice(now))
            told += 1
    return told


def announce_on_exit_signals(now: Callable[[], int]) -> None:
    """Announce the shutdown (:func:`announce_shutdown`) when this process is told to
    stop (SIGTERM, SIGINT), before the server's own handler hears of it: the handler it
    wraps (uvicorn's, in ``sandex serve``: it starts closing the connections, 1012) runs
    on the event loop right after the notices were written. Only from the main thread,
    where signal handlers live."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()

    def announce_then(previous: Callable[[int, Any], object], number: int, frame: Any) -> None:
        try:
            told = announce_shutdown(now())
            if told:
                _log.info("told %d websocket clients the server is stopping", told)
        finally:  # the notices' writes were queued first: they go out before it acts
            loop.call_soon(previous, number, frame)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous) or getattr(previous, "_sandex_announces", False):
            continue

        def handler(number: int, frame: Any, previous: Any = previous) -> None:
            try:
                loop.call_soon_threadsafe(announce_then, previous, number, frame)
            except RuntimeError:  # the loop is closed: nobody to tell, stop at once
                previous(number, frame)

        handler._sandex_announces = True  # type: ignore[attr-defined]
        signal.signal(signum, handler)


async def refuse(scope: Scope, send: Send, exc: Exception, close_code: int) -> None:
    """Refuse a handshake with an HTTP answer (Binance's JSON error) where the server
    supports it, else by closing before accepting."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        status, code, msg, headers = error_for(exc)
        body = orjson.dumps({"code": code, "msg": msg})
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json;charset=UTF-8"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": close_code})

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
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from contextlib import suppress
from typing import Any, Final

import orjson

from sandex.http.errors import error_for

__all__ = [
    "Outbox",
    "Attempts",
    "refuse",
    "hold",
    "scope_headers",
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


class Outbox:
    """A connection's outgoing messages: :meth:`put` runs on the event loop and never
    waits, the writer task (:meth:`write`) sends. A connection whose queue overflows is
    closed as a slow consumer, never holding up the others."""

    __slots__ = ("_limit", "_queue", "_wake", "closing", "gone", "ip", "writer")

    def __init__(self, ip: str, limit: int) -> None:
        self.ip = ip
        self.closing: tuple[int, str] | None = None
        self.gone = False
        """The client closed or vanished: nothing more can be sent."""
        self.writer: asyncio.Task[None] | None = None
        self._queue: deque[str] = deque()
        self._wake = asyncio.Event()
        self._limit = limit

    def reply(self, answer: object) -> None:
        if self.closing is None:
            self.put(orjson.dumps(answer).decode())

    def put(self, text: str) -> None:
        queue = self._queue
        if len(queue) >= self._limit:
            _log.warning(
                "websocket client %s dropped: %d messages waiting (slow consumer)",
                self.ip,
                len(queue),
            )
            self.close(CLOSE_SLOW_CONSUMER, "Slow consumer")
            return
        queue.append(text)
        if not self._wake.is_set():
            self._wake.set()

    def close(self, code: int, reason: str) -> None:
        """Stop sending (the queue is dropped) and end the connection with ``code``."""
        if self.closing is None:
            self.closing = (code, reason)
            self._queue.clear()
            if self.writer is not None:
                self.writer.cancel()

    async def write(self, send: Send) -> None:
        queue = self._queue
        wake = self._wake
        while True:
            await wake.wait()
            wake.clear()
            while queue:
                await send({"type": "websocket.send", "text": queue.popleft()})


class Attempts:
    """Connection attempts per IP in fixed windows (in this process)."""

    def __init__(self, limit: int, window_ms: int) -> None:
        self._limit = limit
        self._window_ms = window_ms
        self._counts: dict[str, tuple[int, int]] = {}
        """ip -> (window start, attempts in it)."""

    def admit(self, ip: str, now: int) -> int:
        """0 if this attempt is allowed, else the seconds until the window ends."""
        window = now - now % self._window_ms
        start, count = self._counts.get(ip, (window, 0))
        if start != window:
            if len(self._counts) > 10_000:  # forget the IPs of windows gone by
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            count = 0
        count += 1
        self._counts[ip] = (window, count)
        if count <= self._limit:
            return 0
        return max(1, -(-(window + self._window_ms - now) // 1000))


def scope_headers(scope: Scope) -> dict[str, str]:
    """The handshake's headers, names lower-cased, repeated ones joined with commas."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = headers[name] + "," + value if name in headers else value
    return headers


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
    writer = outbox.writer = loop.create_task(outbox.write(send))
    reading = loop.create_task(reader)
    life = loop.call_later(lifetime_s, outbox.close, CLOSE_LIFETIME, "Connection lifetime reached")
    if outbox.closing is not None:  # closed before it started (e.g. too many streams)
        writer.cancel()
    try:
        await asyncio.wait((reading, writer), return_when=asyncio.FIRST_COMPLETED)
    finally:
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

"""Binance's market streams over WebSocket, on raw ASGI messages.

Paths, as ``stream.binance.com`` serves them (spot):

- ``/ws`` and ``/ws/<n>`` (anything that is not a stream name, e.g. ccxt's ``/ws/0``):
  raw payloads of the streams chosen by ``SUBSCRIBE`` messages;
- ``/ws/<stream>[/<stream>...]``: raw payloads of those streams, no message needed;
- ``/stream?streams=<a>/<b>/<c>``: combined payloads ``{"stream": <name>, "data": ...}``;
- ``/stream/ws`` and ``/stream/ws/<n or streams>``: as ``/ws``. This is the URL to give
  ccxt.pro, which treats a connection as spot only if its URL holds ``/stream``;
  ``/stream/stream?streams=`` is ``/stream?streams=`` (python-binance's multiplex socket
  on a stream host moved under ``/stream``, as the README's ``sandex_urls`` moves it).

Every connection answers the control methods ``SUBSCRIBE``, ``UNSUBSCRIBE``,
``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY`` and ``GET_PROPERTY`` (``["combined", bool]``) with
Binance's replies and its error payloads (codes 0 to 3). Binance's connection rules hold:
at most 5 incoming messages a second (more closes the connection, 1008), 1024 streams,
a 24 h life, and 300 connection attempts per 5 minutes from one IP (more are refused
with 429 before the handshake). The server's pings (every 20 s, a client that has not
answered in 60 s is dropped) and the frame size cap are uvicorn's, configured by
``sandex serve``.

Each connection has a bounded outgoing queue: a stream's push never waits, and a
connection that falls too far behind is dropped (one log line), never holding up the
others, the engine or the event follower.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import parse_qsl

import orjson
from limits.storage import Storage

from sandex.http.errors import RouteNotFound
from sandex.http.ws_connection import (
    CLOSE_LIFETIME,
    CLOSE_SLOW_CONSUMER,
    Attempts,
    ConnectionLimits,
    Outbox,
    Receive,
    Scope,
    Send,
    hold,
    incoming,
    refuse,
    scope_headers,
    text_frame,
)
from sandex.service.market_streams import StreamSink

__all__ = [
    "StreamEndpoint",
    "StreamLimits",
    "StreamSource",
    "MAX_MESSAGE_BYTES",
    "CLOSE_TOO_MANY_REQUESTS",
    "CLOSE_SLOW_CONSUMER",
    "CLOSE_LIFETIME",
]

_log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES: Final = 64 * 1024
"""The largest incoming message (uvicorn closes the connection with 1009 above it): a
``SUBSCRIBE`` of 1024 streams fits with room to spare."""
CLOSE_TOO_MANY_REQUESTS: Final = 1008
"""Binance's close code for a connection over its incoming-message rate (policy
violation, reason "Too many requests")."""

_METHODS: Final = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_EXPECTED_METHODS: Final = ", ".join(f"`{m}`" for m in _METHODS)
_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9]{1,36}")
_INT64: Final = (-(2**63), 2**63 - 1)
_METHOD_VALUE: Final = re.compile(r'"method"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}\s]+)')


class StreamSource(Protocol):
    """What the endpoint needs of :class:`sandex.service.market_streams.MarketStreams`."""

    def parse(self, name: str) -> str | None: ...
    def subscribe(self, stream: str, sink: StreamSink) -> None: ...
    def unsubscribe(self, stream: str, sink: StreamSink) -> None: ...
    def unsubscribe_all(self, sink: StreamSink) -> None: ...


@dataclass(frozen=True)
class StreamLimits(ConnectionLimits):
    """Binance's limits for a market-stream connection (spot)."""

    max_streams: int = 1024
    messages_per_s: int = 5


class _Forms:
    """One stream message in the forms connections send, each made once, when a first
    connection needs it, for all of them (the hub hands the same payload to each)."""

    __slots__ = ("_combined", "_combined_frame", "_frame", "_prefix", "_text", "payload", "stream")

    def __init__(self, stream: str, payload: bytes, prefix: bytes) -> None:
        self.stream = stream
        self.payload = payload
        self._prefix = prefix
        self._text: str | None = None
        self._combined: str | None = None
        self._frame: bytes | None = None
        self._combined_frame: bytes | None = None

    def text(self, combined: bool) -> str:
        if combined:
            if self._combined is None:
                self._combined = self.combined_payload().decode()
            return self._combined
        if self._text is None:
            self._text = self.payload.decode()
        return self._text

    def frame(self, combined: bool) -> bytes:
        if combined:
            if self._combined_frame is None:
                self._combined_frame = text_frame(self.combined_payload())
            return self._combined_frame
        if self._frame is None:
            self._frame = text_frame(self.payload)
        return self._frame

    def combined_payload(self) -> bytes:
        return self._prefix + self.payload + b"}"


class _Messages:
    """The forms of the stream message being handed out (see :class:`_Forms`)."""

    __slots__ = ("_prefixes", "current")

    def __init__(self) -> None:
        self.current = _Forms("", b"", b"")
        self._prefixes: dict[str, bytes] = {}

    def forms(self, stream: str, payload: bytes) -> _Forms:
        current = self.current
        if current.payload is payload and current.stream == stream:
            return current
        prefix = self._prefixes.get(stream)
        if prefix is None:
            prefix = b'{"stream":' + orjson.dumps(stream) + b',"data":'
            self._prefixes[stream] = prefix
        self.current = current = _Forms(stream, payload, prefix)
        return current


class _Connection(Outbox):
    """One client: its streams, its combined property, and its bounded outgoing queue.

    :meth:`push` (a :class:`StreamSink`) runs on the event loop and never waits: it
    queues, and the writer task writes. A connection whose queue overflows is closed."""

    __slots__ = ("_messages", "combined", "streams")

    def __init__(self, ip: str, combined: bool, limit: int, messages: _Messages) -> None:
        super().__init__(ip, limit)
        self.combined = combined
        self.streams: dict[str, None] = {}
        """Subscribed stream names, in subscription order."""
        self._messages = messages

    def push(self, stream: str, payload: bytes) -> None:
        if self.closing is not None:
            return
        forms = self._messages.forms(stream, payload)
        if self.framed:
            self.put_frame(forms.frame(self.combined))
        else:
            self.put(forms.text(self.combined))


@dataclass(frozen=True, slots=True)
class _Path:
    combined: bool
    streams: tuple[str, ...]


def _route(path: str, query: bytes) -> _Path | None:
    """The connection a path asks for, or None for a path Binance does not serve."""
    if path.startswith(("/stream/ws", "/stream/stream")):  # the spot streams' host moved
        path = path[len("/stream") :]  # under /stream (the README's sandex_urls)
    if path == "/ws" or path.startswith("/ws/"):
        return _Path(False, tuple(n for n in path[4:].split("/") if n))
    if path in ("/stream", "/stream/"):
        names: list[str] = []
        for key, value in parse_qsl(query.decode("latin-1")):
            if key == "streams":
                names += (n for n in value.split("/") if n)
        return _Path(True, tuple(names))
    return None


def _error(code: int, msg: str, request_id: object) -> dict[str, object]:
    return {"error": {"code": code, "msg": msg}, "id": request_id}


def _valid_id(value: object) -> bool:
    """Binance accepts a 64-bit signed integer, an alphanumeric string of at most 36
    characters, or null."""
    if value is None:
        return True
    if type(value) is int:
        return _INT64[0] <= value <= _INT64[1]
    return isinstance(value, str) and _ID_PATTERN.fullmatch(value) is not None


def _end_position(text: str) -> tuple[int, int]:
    """Line and column (1-based) of the last character, as serde reports the end of a
    struct."""
    lines = text.rstrip().split("\n")
    return len(lines), len(lines[-1])


def _method_position(text: str) -> tuple[str, int, int]:
    """The ``method`` value as written, and where it ends (line, column)."""
    match = _METHOD_VALUE.search(text)
    if match is None:
        line, column = _end_position(text)
        return "", line, column
    before = text[: match.end(1)]
    lines = before.split("\n")
    return match.group(1).strip('"'), len(lines), len(lines[-1])


class StreamEndpoint:
    """The ASGI handler of ``websocket`` scopes: Binance's market streams."""

    def __init__(
        self,
        streams: StreamSource,
        resolve_ip: Callable[[str | None, Mapping[str, str]], str],
        now: Callable[[], int],
        limits: StreamLimits | None = None,
        *,
        attempts_shared: Storage | None = None,
    ) -> None:
        self._streams = streams
        self._resolve_ip = resolve_ip
        self._now = now
        self.limits = limits = limits or StreamLimits()
        self._attempts = Attempts(limits, attempts_shared)
        self._messages = _Messages()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        headers = scope_headers(scope)
        client = scope.get("client")
        ip = self._resolve_ip(client[0] if client else None, headers)
        path: str = scope["path"]
        if await self._attempts.refused(ip, self._now(), scope, send, CLOSE_TOO_MANY_REQUESTS):
            return
        route = _route(path, scope.get("query_string", b""))
        if route is None:
            await refuse(scope, send, RouteNotFound(path), 1008)
            return
        await send({"type": "websocket.accept"})
        await self._serve(ip, route, receive, send)

    async def _serve(self, ip: str, route: _Path, receive: Receive, send: Send) -> None:
        limits = self.limits
        conn = _Connection(ip, route.combined, limits.pending_messages, self._messages)
        streams = self._streams
        # names in the path that are not streams (ccxt's /ws/0) are ignored, as Binance does
        for name in route.streams:
            stream = streams.parse(name)
            if stream is not None and stream not in conn.streams:
                if len(conn.streams) >= limits.max_streams:
                    conn.close(1008, f"Too many streams: at most {limits.max_streams}")
                    break
                conn.streams[stream] = None
                streams.subscribe(stream, conn)
        await hold(
            conn,
            self._read(conn, receive),
            send,
            lifetime_s=limits.lifetime_s,
            close_timeout_s=limits.close_timeout_s,
            ended=lambda: streams.unsubscribe_all(conn),
        )

    async def _read(self, conn: _Connection, receive: Receive) -> None:
        rate = self.limits.messages_per_s
        recent: deque[int] = deque()
        now = self._now
        async for data in incoming(conn, receive):
            at = now()
            recent.append(at)
            if len(recent) > rate and at - recent.popleft() < 1000:
                _log.info("websocket client %s closed: over %d messages/s", conn.ip, rate)
                conn.close(CLOSE_TOO_MANY_REQUESTS, "Too many requests")
                return
            conn.reply(self._control(conn, data))

    def _control(self, conn: _Connection, data: str | bytes) -> dict[str, object]:
        try:
            request = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return _error(
                3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}", None
            )
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        if not isinstance(request, dict):
            line, column = _end_position(text)
            return _error(
                2,
                f"Invalid request: invalid type, expected struct Request at line {line}"
                f" column {column}",
                None,
            )
        request_id = request.get("id")
        if "id" not in request or not _valid_id(request_id):
            return _error(2, "Invalid request: request ID must be an unsigned integer", None)
        method = request.get("method")
        if method is None:
            line, column = _end_position(text)
            return _error(
                2, f"Invalid request: missing field `method` at line {line} column {column}", None
            )
        if method not in _METHODS:
            written, line, column = _method_position(text)
            return _error(
                2,
                f"Invalid request: unknown variant `{written}`, expected one of"
                f" {_EXPECTED_METHODS} at line {line} column {column}",
                None,
            )
        params = request.get("params")
        if params is None:
            params = []
        if not isinstance(params, list):
            return _error(2, "Invalid request: params must be an array", request_id)
        if method == "SUBSCRIBE" or method == "UNSUBSCRIBE":
            return self._subscription(conn, method, params, request_id)
        if method == "LIST_SUBSCRIPTIONS":
            if params:
                return _error(2, "Invalid request: too many parameters", request_id)
            return {"result": list(conn.streams), "id": request_id}
        return _property(conn, method, params, request_id)

    def _subscription(
        self, conn: _Connection, method: str, params: list[object], request_id: object
    ) -> dict[str, object]:
        parse = self._streams.parse
        names: list[str] = []
        for param in params:
            stream = parse(param) if isinstance(param, str) else None
            if stream is None:
                return _error(2, "Invalid request: invalid stream", request_id)
            names.append(stream)
        if method == "SUBSCRIBE":
            new = [n for n in dict.fromkeys(names) if n not in conn.streams]
            limit = self.limits.max_streams
            if len(conn.streams) + len(new) > limit:
                return _error(
                    2,
                    f"Invalid request: too many streams (a connection listens to at most {limit})",
                    request_id,
                )
            for stream in new:
                conn.streams[stream] = None
                self._streams.subscribe(stream, conn)
        else:
            for stream in names:
                if stream in conn.streams:
                    del conn.streams[stream]
                    self._streams.unsubscribe(stream, conn)
        return {"result": None, "id": request_id}


def _property(
    conn: _Connection, method: str, params: list[object], request_id: object
) -> dict[str, object]:
    allowed = 2 if method == "SET_PROPERTY" else 1
    if len(params) > allowed:
        return _error(2, "Invalid request: too many parameters", request_id)
    if not params or not isinstance(params[0], str):
        return _error(2, "Invalid request: property name must be a string", request_id)
    if params[0] != "combined":
        return {"error": {"code": 0, "msg": "Unknown property"}, "id": request_id}
    if method == "GET_PROPERTY":
        return {"result": conn.combined, "id": request_id}
    value = params[1] if len(params) == 2 else None
    if not isinstance(value, bool):
        return _error(1, "Invalid value type: expected Boolean", request_id)
    conn.combined = value
    return {"result": None, "id": request_id}

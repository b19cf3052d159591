"""WebSocket test helpers: a client speaking ASGI messages to an endpoint (:class:`Peer`),
and a client that never answers, to test the server's ping rule by hand."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

__all__ = ["Peer", "mute_client", "server_frames"]

Message = dict[str, Any]


def mute_client(
    port: int, path: str = "/ws/btcusdt@trade", timeout: float = 15
) -> tuple[bytes, float]:
    """Open a WebSocket on 127.0.0.1:``port`` by hand and never answer anything: what the
    server sent until it hung up (the handshake's answer, then its frames), and how long
    that took."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        key = base64.b64encode(os.urandom(16))
        sock.sendall(
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received, time.monotonic() - started


def server_frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked server frame in ``data``."""
    while len(data) >= 2:
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        offset = 2
        if length == 126:
            (length,) = struct.unpack("!H", data[2:4])
            offset = 4
        elif length == 127:
            (length,) = struct.unpack("!Q", data[2:10])
            offset = 10
        yield opcode, data[offset : offset + length]
        data = data[offset + length :]


class Peer:
    """A client speaking ASGI messages to the endpoint (what uvicorn would relay)."""

    def __init__(
        self,
        endpoint: Callable[..., Any],
        path: str,
        *,
        query: bytes = b"",
        client: str = "127.0.0.1",
        headers: list[tuple[bytes, bytes]] | None = None,
        http_response: bool = True,
        send: Callable[[Message], Any] | None = None,
    ) -> None:
        self.to_app: asyncio.Queue[Message] = asyncio.Queue()
        self.from_app: asyncio.Queue[Message] = asyncio.Queue()
        scope = {
            "type": "websocket",
            "path": path,
            "query_string": query,
            "headers": headers or [],
            "client": (client, 50_000),
            "extensions": {"websocket.http.response": {}} if http_response else {},
        }
        self.task = asyncio.get_running_loop().create_task(
            endpoint(scope, self.to_app.get, send or self._send)
        )
        self.to_app.put_nowait({"type": "websocket.connect"})

    async def _send(self, message: Message) -> None:
        await self.from_app.put(message)

    async def next(self, timeout: float = 2.0) -> Message:
        return await asyncio.wait_for(self.from_app.get(), timeout)

    async def accepted(self) -> Peer:
        assert (await self.next())["type"] == "websocket.accept"
        return self

    async def data(self) -> object:
        message = await self.next()
        assert message["type"] == "websocket.send", message
        return orjson.loads(message["text"])

    async def ask(self, request: object | str | bytes) -> object:
        if isinstance(request, bytes):
            self.to_app.put_nowait({"type": "websocket.receive", "bytes": request})
        else:
            text = request if isinstance(request, str) else orjson.dumps(request).decode()
            self.to_app.put_nowait({"type": "websocket.receive", "text": text})
        return await self.data()

    async def closed(self) -> tuple[int, str]:
        message = await self.next()
        assert message["type"] == "websocket.close", message
        await asyncio.wait_for(self.task, 2)
        return message["code"], message.get("reason", "")

    async def leave(self) -> None:
        self.to_app.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 2)

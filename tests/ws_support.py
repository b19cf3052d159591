"""A WebSocket client that never answers, to test the server's ping rule by hand."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from collections.abc import Iterator

__all__ = ["mute_client", "server_frames"]


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

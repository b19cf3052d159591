"""A request too malformed to reach the app (issue 9, finding 9) is still answered in
Binance's JSON by the real server: the HTTP parser's 400, not uvicorn's plain text."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from e2e.conftest import HOST, Server


def _exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` on a fresh connection; everything the server sends until it closes."""
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /api/v3/ping\xff HTTP/1.1\r\nHost: sandex\r\n\r\n",
        b"GET /api/v3/depth?symbol=BTCUSDT\xc3\xa9 HTTP/1.1\r\nHost: sandex\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
)
def test_an_unparseable_request_gets_a_json_400_and_the_server_carries_on(
    sqlite_server: Server, raw: bytes
) -> None:
    response = _exchange(sqlite_server.port, raw)
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("ascii").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    assert status_line == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == {
        "code": -1100,
        "msg": "Illegal characters found in the request: it is not valid HTTP/1.1"
        " (URL-encode the path and query as UTF-8).",
    }
    ping = httpx.get(sqlite_server.base + "/api/v3/ping", trust_env=False)
    assert (ping.status_code, ping.json()) == (200, {})
    assert "Traceback" not in sqlite_server.log_tail(200)

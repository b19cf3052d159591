"""The HTTP/1.1 wire protocol Sandex is served with: uvicorn's httptools protocol, with
Binance's JSON error body for a request too malformed to reach the app.

A request whose request line or headers are not valid HTTP/1.1 (say, a raw non-ASCII
byte in the path) fails in the parser, before any ASGI scope exists, so the app cannot
answer it. uvicorn answers it from ``send_400_response``; this subclass writes the same
400 with a ``{"code","msg"}`` body instead of plain text, then closes the connection as
uvicorn does (the rest of the stream cannot be trusted to be framed right).
"""

from __future__ import annotations

import json
from typing import Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["JsonErrorsHttpToolsProtocol", "MALFORMED_REQUEST_BODY"]

MALFORMED_REQUEST_BODY: Final = json.dumps(
    {
        "code": -1100,
        "msg": "Illegal characters found in the request: it is not valid HTTP/1.1"
        " (URL-encode the path and query as UTF-8).",
    },
    separators=(",", ":"),
).encode("ascii")


class JsonErrorsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose parse-error 400 is Binance JSON."""

    def send_400_response(self, msg: str) -> None:
        content = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(MALFORMED_REQUEST_BODY),
                b"connection: close\r\n",
                b"\r\n",
                MALFORMED_REQUEST_BODY,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()

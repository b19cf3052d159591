"""A reverse proxy configured the usual way, for tests of Sandex behind one.

It behaves as nginx does with ``proxy_set_header X-Forwarded-For
$proxy_add_x_forwarded_for`` (or, in ``forwarded`` mode, as a proxy that appends
``Forwarded: for=…``): it appends the address it saw to its one header and passes
every other header through unchanged, including a client's own ``Forwarded`` or
``X-Forwarded-For``. Its upstream connections leave from ``bind`` (another loopback
address), so the server can trust that address alone.

One request per connection (``Connection: close`` both ways), which is all the tests
need and keeps the relay simple.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["AppendingProxy", "appending_proxy"]

_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"upgrade"}


@dataclass
class AppendingProxy:
    host: str
    port: int

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


def _append(headers: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> None:
    """``name: <old>, value`` (or a new header): the proxy's own hop, at the right."""
    for i, (n, v) in enumerate(headers):
        if n.lower() == name:
            headers[i] = (n, v + b", " + value)
            return
    headers.append((name, value))


async def _relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    upstream: tuple[str, int],
    bind: str,
    mode: str,
    live: set[asyncio.Task[None]],
) -> None:
    # a strong reference for as long as the relay runs (the loop keeps only weak ones,
    # and a relay collected while pending would leave its streams unclosed)
    task = asyncio.current_task()
    assert task is not None
    live.add(task)
    up_writer: asyncio.StreamWriter | None = None
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head[:-4].split(b"\r\n")
        headers = []
        for line in lines:
            name, _, value = line.partition(b":")
            if name.strip().lower() not in _HOP_BY_HOP:
                headers.append((name.strip(), value.strip()))
        length = next((int(v) for n, v in headers if n.lower() == b"content-length"), 0)
        body = await reader.readexactly(length) if length else b""
        client_ip = writer.get_extra_info("peername")[0].encode()
        if mode == "forwarded":
            _append(headers, b"forwarded", b"for=" + client_ip)
        else:
            _append(headers, b"x-forwarded-for", client_ip)
        headers.append((b"connection", b"close"))
        up_reader, up_writer = await asyncio.open_connection(*upstream, local_addr=(bind, 0))
        up_writer.write(
            request_line + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers)
        )
        up_writer.write(b"\r\n" + body)
        await up_writer.drain()
        while chunk := await up_reader.read(65536):
            writer.write(chunk)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:  # every stream closed here, on any path: none is left for the collector
        if up_writer is not None:
            up_writer.close()
        writer.close()
        live.discard(task)


@contextmanager
def appending_proxy(
    upstream_port: int,
    *,
    host: str = "127.0.0.1",
    bind: str = "127.0.0.3",
    mode: str = "x-forwarded-for",
) -> Iterator[AppendingProxy]:
    """A proxy on ``host`` (a free port) in front of ``127.0.0.1:upstream_port``."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, asyncio.Server] = {}
    live: set[asyncio.Task[None]] = set()

    async def start() -> None:
        holder["server"] = await asyncio.start_server(
            lambda r, w: _relay(r, w, ("127.0.0.1", upstream_port), bind, mode, live), host, 0
        )
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(5), "the proxy did not start"
    server = holder["server"]
    try:
        yield AppendingProxy(host, server.sockets[0].getsockname()[1])
    finally:

        async def stop() -> None:
            server.close()
            await server.wait_closed()
            # relays still running (a client that went away mid-request) end now, and
            # close their streams, before the loop closes
            relays = list(live)
            for relay in relays:
                relay.cancel()
            await asyncio.gather(*relays, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()

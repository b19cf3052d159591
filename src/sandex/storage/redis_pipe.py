"""A lean asyncio Redis connection for the gateway's hot paths.

redis-py's asyncio client costs about 180 us of CPU per command here (measured: pure
Python connection pool, command packing and reply parsing), more than the whole signed
request costs in process. This connection does the one thing the hot paths need: send
commands (RESP arrays of bulk strings) on one socket without waiting, and hand each
reply, in order, to the caller that sent its command; hiredis packs the commands and
parses the replies in C. Every caller of one pipe shares its socket, so concurrent
commands are pipelined for free: the gateway's per-request script, and the broker
link's XADDs (:mod:`sandex.broker.redis_streams`). A blocking command (``XREAD BLOCK``)
holds its connection until it returns, so it gets a pipe of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

__all__ = ["RedisAddress", "RedisPipe", "RedisReplyError", "Reply", "encode"]

Reply = int | bytes | None | list["Reply"]
"""A RESP2 reply: simple and bulk strings as bytes, nil as None. An error inside an
array (a transaction's) stays an item of it, a :class:`RedisReplyError`."""


class RedisReplyError(Exception):
    """Redis answered a command with an error."""


def encode(*args: bytes | str | int) -> bytes:
    """One command as a RESP array of bulk strings (text as UTF-8)."""
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]  # stub: a 1-tuple
    return packed


@dataclass(frozen=True)
class RedisAddress:
    """Where a Redis is and how to log in, parsed once from a URL as redis-py reads it:
    ``redis://[user:password@]host[:port][/db]``, ``rediss://`` for TLS (query
    ``ssl_ca_certs=<file>``, ``ssl_cert_reqs=none``), ``unix://[user:password@]/path?db=``.
    """

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    user: str | None = None
    password: str | None = None
    socket: str | None = None
    """A unix socket's path (``unix://``), instead of host and port."""
    tls: bool = False
    ca_file: str | None = None
    """The certificates to verify the server's with (else the system's)."""
    verify: bool = True
    """False (``ssl_cert_reqs=none``): TLS without checking the server's certificate."""

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """Raises ValueError for another scheme or a malformed URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix", ""):
            raise ValueError(
                f"unsupported Redis URL scheme {parts.scheme!r} (redis://, rediss://, unix://)"
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unix = parts.scheme == "unix"
        db = query.get("db") if unix else parts.path.lstrip("/") or query.get("db")
        if unix and not parts.path:
            raise ValueError("a unix:// Redis URL needs the socket's path")
        reqs = query.get("ssl_cert_reqs", "required").lower()
        if reqs not in ("none", "required"):
            raise ValueError(f"unsupported ssl_cert_reqs {reqs!r} (none or required)")
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or 6379,
            int(db or 0),
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else query.get("password"),
            socket=unquote(parts.path) if unix else None,
            tls=parts.scheme == "rediss",
            ca_file=query.get("ssl_ca_certs"),
            verify=reqs == "required",
        )

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def __repr__(self) -> str:  # never the password
        where = f"unix://{self.socket}" if self.socket else f"{self.host}:{self.port}"
        return f"RedisAddress({'rediss' if self.tls else 'redis'} {where} db {self.db})"


_NOT_YET: Final = False
"""What the reader gives while a reply is incomplete (no RESP2 reply is False)."""


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Reply | RedisReplyError]] = deque()
        self.reader = hiredis.Reader(replyError=RedisReplyError, notEnoughData=_NOT_YET)
        self.lost: Exception | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        waiting = self.waiting
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:  # not Redis speaking: drop the connection
                self.lost = ConnectionError(f"Redis protocol error: {exc}")
                assert self.transport is not None
                self.transport.abort()
                return
            if reply is _NOT_YET:
                return
            if waiting:
                future = waiting.popleft()
                if not future.done():  # else its caller gave up (cancelled)
                    future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or exc or ConnectionError("Redis closed the connection")
        if not self.closed.done():
            self.closed.set_result(None)
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError(f"Redis connection lost: {self.lost}"))


class RedisPipe:
    """One connection per event loop to the Redis at ``url`` (a :class:`RedisAddress` or
    its URL), opened on first use and again after it is lost or closed."""

    def __init__(self, url: str | RedisAddress, *, connect_timeout_s: float = 5.0) -> None:
        self.address = url if isinstance(url, RedisAddress) else RedisAddress.parse(url)
        self._timeout = connect_timeout_s
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Future[_Protocol] | None = None

    async def call(self, command: bytes) -> Reply:
        """Send one encoded command (:func:`encode`) and wait for its reply."""
        protocol = self._protocol
        loop = asyncio.get_running_loop()
        if protocol is None or protocol.lost is not None or self._loop is not loop:
            protocol = await self._connect(loop)
        future: asyncio.Future[Reply | RedisReplyError] = loop.create_future()
        protocol.waiting.append(future)
        assert protocol.transport is not None
        protocol.transport.write(command)
        reply = await future
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        if self._opening is not None and self._loop is loop:
            return await asyncio.shield(self._opening)
        self.close()
        self._loop = loop
        opening = self._opening = loop.create_future()
        address = self.address
        try:
            if address.socket is not None:
                connecting = loop.create_unix_connection(_Protocol, address.socket)
            else:
                connecting = loop.create_connection(
                    _Protocol, address.host, address.port, ssl=address.tls_context()
                )
            _, protocol = await asyncio.wait_for(connecting, self._timeout)
            self._protocol = protocol
            setup = []
            if address.password is not None:
                auth = (address.user, address.password) if address.user else (address.password,)
                setup.append(encode("AUTH", *auth))
            if address.db:
                setup.append(encode("SELECT", address.db))
            for command in setup:
                future: asyncio.Future[Reply | RedisReplyError] = loop.create_future()
                protocol.waiting.append(future)
                assert protocol.transport is not None
                protocol.transport.write(command)
                reply = await future
                if isinstance(reply, RedisReplyError):
                    raise reply
        except BaseException as exc:
            self.close()
            if isinstance(exc, asyncio.CancelledError):  # its caller's, not the others'
                exc = ConnectionError("connecting to Redis was cancelled")
            opening.set_exception(exc)
            opening.exception()  # retrieved: the callers waiting on it get it raised
            raise
        finally:
            self._opening = None
        opening.set_result(protocol)
        return protocol

    async def aclose(self, *, timeout_s: float = 5.0) -> None:
        """:meth:`close`, and wait (up to ``timeout_s``) until the connection is closed: a
        TLS connection says goodbye first, which takes turns of the loop."""
        protocol, loop = self._protocol, self._loop
        self.close()
        if protocol is not None and loop is asyncio.get_running_loop():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.closed), timeout_s)

    def close(self) -> None:
        """Close the connection (what waits on it fails); the next call opens another."""
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None and self._loop is not None:
            protocol.lost = protocol.lost or ConnectionError("the connection was closed")
            if not self._loop.is_closed():
                protocol.transport.close()

"""The gateway's lean Redis connection: pipelined replies reach their own callers, a
blocking read holds only its own connection."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sandex.storage.redis_pipe import RedisAddress, RedisPipe, RedisReplyError, Reply, encode
from support import REDIS_URL


def test_concurrent_commands_share_one_socket_and_get_their_own_replies(
    redis_namespace: str,
) -> None:
    async def main() -> None:
        pipe = RedisPipe(REDIS_URL)
        try:
            key = f"{redis_namespace}:counter"
            replies = await asyncio.gather(
                *(pipe.call(encode("INCRBY", key, n)) for n in range(1, 101))
            )
            assert replies == [n * (n + 1) // 2 for n in range(1, 101)]  # in send order
            assert await pipe.call(encode("HSET", f"{redis_namespace}:h", "a", "1")) == 1
            assert await pipe.call(encode("HGETALL", f"{redis_namespace}:h")) == [b"a", b"1"]
            assert await pipe.call(encode("GET", f"{redis_namespace}:none")) is None
            with pytest.raises(RedisReplyError, match="WRONGTYPE"):
                await pipe.call(encode("INCR", f"{redis_namespace}:h"))
            pipe.close()  # lost: the next call connects again
            assert await pipe.call(encode("INCRBY", key, 0)) == 5050
        finally:
            pipe.close()

    asyncio.run(main())


def test_only_redis_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="redis://"):
        RedisPipe("http://example.test:6380/0")
    with pytest.raises(ValueError, match="ssl_cert_reqs"):
        RedisAddress.parse("rediss://example.test:6380/0?ssl_cert_reqs=optional")


def test_stream_replies_parse_and_a_blocking_read_does_not_delay_commands_on_another_pipe(
    redis_namespace: str,
) -> None:
    stream = f"{redis_namespace}:stream"

    async def main() -> None:
        reader, writer = RedisPipe(REDIS_URL), RedisPipe(REDIS_URL)
        try:
            reading = asyncio.create_task(
                reader.call(encode("XREAD", "BLOCK", 5000, "STREAMS", stream, "0-0"))
            )
            await asyncio.sleep(0.05)  # the read is blocking in Redis
            began = time.monotonic()
            entry_id = await writer.call(encode("XADD", stream, "*", "i", "a,b", "c", b"\x00\n"))
            assert time.monotonic() - began < 0.5
            got = await asyncio.wait_for(reading, 1)
            assert got == [[stream.encode(), [[entry_id, [b"i", b"a,b", b"c", b"\x00\n"]]]]]
            assert isinstance(entry_id, bytes)
            nothing = encode("XREAD", "BLOCK", 10, "STREAMS", stream, entry_id)
            assert await reader.call(nothing) is None  # nil after its block
            newest = await reader.call(encode("XREVRANGE", stream, "+", "-", "COUNT", 1))
            assert newest == [[entry_id, [b"i", b"a,b", b"c", b"\x00\n"]]]
        finally:
            reader.close()
            writer.close()

    asyncio.run(main())


def test_a_caller_that_gives_up_leaves_the_next_reply_to_the_next_caller(
    redis_namespace: str,
) -> None:
    async def main() -> None:
        pipe = RedisPipe(REDIS_URL)
        try:
            block = encode("XREAD", "BLOCK", 200, "STREAMS", f"{redis_namespace}:none", "0-0")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pipe.call(block), 0.05)
            assert await pipe.call(encode("PING")) == b"PONG"  # not the read's nil
        finally:
            pipe.close()

    asyncio.run(main())


def test_an_error_inside_an_array_is_an_item_and_later_replies_stay_in_step(
    redis_namespace: str,
) -> None:
    key = f"{redis_namespace}:text"

    async def main() -> None:
        pipe = RedisPipe(REDIS_URL)
        try:
            replies = await asyncio.gather(
                pipe.call(encode("MULTI")),
                pipe.call(encode("SET", key, "a")),
                pipe.call(encode("INCR", key)),  # fails when the transaction runs
                pipe.call(encode("EXEC")),
                pipe.call(encode("GET", key)),
            )
            assert replies[:3] == [b"OK", b"QUEUED", b"QUEUED"]
            done = replies[3]
            assert isinstance(done, list) and done[0] == b"OK"
            assert isinstance(done[1], RedisReplyError) and "integer" in str(done[1])
            assert replies[4] == b"a"
        finally:
            pipe.close()

    asyncio.run(main())


def test_a_closed_pipe_fails_what_waits_on_it_and_opens_again() -> None:
    async def main() -> None:
        pipe = RedisPipe(REDIS_URL)
        waiting = asyncio.create_task(pipe.call(encode("BLPOP", "sandex-test:never", 5)))
        await asyncio.sleep(0.05)
        pipe.close()
        with pytest.raises(ConnectionError, match="closed"):
            await waiting
        assert await pipe.call(encode("PING")) == b"PONG"
        protocol = pipe._protocol
        await pipe.aclose()
        assert protocol is not None and protocol.closed.done()  # closed, not only asked to

    asyncio.run(main())


def test_an_address_is_parsed_once_and_never_shows_its_password() -> None:
    address = RedisAddress.parse("redis://bot:s%40cret@redis.test:6390/3")
    assert address == RedisAddress("redis.test", 6390, 3, "bot", "s@cret")
    assert "s@cret" not in repr(address) and "s%40cret" not in repr(address)
    assert RedisPipe(address).address is address
    tls = RedisAddress.parse("rediss://redis.test/1?ssl_ca_certs=/ca.pem&ssl_cert_reqs=none")
    assert (tls.tls, tls.ca_file, tls.verify, tls.port, tls.db) == (True, "/ca.pem", False, 6379, 1)
    unix = RedisAddress.parse("unix:///run/redis/redis.sock?db=2&password=pw")
    assert (unix.socket, unix.db, unix.password) == ("/run/redis/redis.sock", 2, "pw")
    assert "pw" not in repr(unix)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _redis_server(workdir: Path, *options: str) -> Iterator[None]:
    """A ``redis-server`` of the test's own (nothing on disk), stopped afterwards."""
    command = ["redis-server", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen(
        [*command, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(10)


async def _ping(url: str) -> Reply:
    """PING through a new pipe to ``url``, trying for up to 5 s while the server starts."""
    deadline = time.monotonic() + 5
    pipe = RedisPipe(url)
    try:
        while True:
            try:
                return await pipe.call(encode("PING"))
            except (ConnectionRefusedError, FileNotFoundError):  # not listening yet
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
    finally:
        await pipe.aclose()  # a TLS connection's goodbye takes turns of the loop


async def _refused(url: str) -> None:
    try:
        await _ping(url)
    finally:  # asyncio closes the socket of a failed handshake on a later turn of the loop
        await asyncio.sleep(0.1)


def _self_signed(workdir: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandex test redis")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = workdir / "redis.crt", workdir / "redis.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_a_pipe_reaches_redis_over_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    with _redis_server(tmp_path, "--port", "0", "--unixsocket", str(path)):
        assert asyncio.run(_ping(f"unix://{path}?db=1")) == b"PONG"


def test_a_pipe_reaches_redis_over_tls_and_checks_its_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = _free_port()
    tls = ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
    tls += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    with _redis_server(tmp_path, *tls, "--tls-ca-cert-file", str(cert)):
        url = f"rediss://127.0.0.1:{port}/0"
        assert asyncio.run(_ping(f"{url}?ssl_ca_certs={cert}")) == b"PONG"
        assert asyncio.run(_ping(f"{url}?ssl_cert_reqs=none")) == b"PONG"
        with pytest.raises(ssl.SSLCertVerificationError):
            asyncio.run(_refused(url))  # not signed by a CA the system trusts

"""The market-stream WebSocket endpoint: Binance's paths, control methods, errors and
connection rules, driven through raw ASGI messages against a fake stream source, and
over a real uvicorn server (with ``sandex serve``'s WebSocket options) for what the
server does itself: pings, the pong deadline, the frame size cap."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from limits.storage import RedisStorage
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sandex.bootstrap import Sandex
from sandex.cli.serve import websocket_options
from sandex.config import Settings
from sandex.http import Gateway
from sandex.http.client_ip import ClientIpResolver, parse_networks
from sandex.http.websocket import MAX_MESSAGE_BYTES, StreamEndpoint, StreamLimits
from sandex.service.market_streams import StreamSink
from support import REDIS_URL
from ws_support import Peer, mute_client, server_frames

Message = dict[str, Any]

_STREAM = re.compile(r"(btcusdt|ethusdt)@(trade|aggTrade|depth|depth@100ms|kline_1m|miniTicker)")


class FakeStreams:
    """A stream source with two listed symbols; ``publish`` pushes to every subscriber."""

    def __init__(self) -> None:
        self.sinks: dict[str, list[StreamSink]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop of the last subscription (a server's, to publish on)."""

    def parse(self, name: str) -> str | None:
        return name if name == "!miniTicker@arr" or _STREAM.fullmatch(name) else None

    def subscribe(self, stream: str, sink: StreamSink) -> None:
        self.sinks.setdefault(stream, []).append(sink)
        self.loop = asyncio.get_running_loop()

    def unsubscribe(self, stream: str, sink: StreamSink) -> None:
        self.sinks[stream].remove(sink)

    def unsubscribe_all(self, sink: StreamSink) -> None:
        for sinks in self.sinks.values():
            while sink in sinks:
                sinks.remove(sink)

    def subscribers(self) -> int:
        return sum(len(s) for s in self.sinks.values())

    def publish(self, stream: str, payload: dict[str, object]) -> None:
        data = orjson.dumps(payload)
        for sink in list(self.sinks.get(stream, [])):
            sink.push(stream, data)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def now(self) -> int:
        return self.ms


def _endpoint(
    streams: FakeStreams,
    clock: Clock | None = None,
    resolver: ClientIpResolver | None = None,
    **limits: Any,
) -> StreamEndpoint:
    resolver = resolver or ClientIpResolver()
    return StreamEndpoint(streams, resolver.resolve, (clock or Clock()).now, StreamLimits(**limits))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- paths ---------------------------------------------------------------------------


def test_a_stream_in_the_path_sends_its_raw_payloads_without_any_message() -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = await Peer(_endpoint(streams), "/ws/btcusdt@trade").accepted()
        streams.publish("btcusdt@trade", {"e": "trade", "s": "BTCUSDT", "t": 1})
        streams.publish("ethusdt@trade", {"e": "trade", "s": "ETHUSDT", "t": 2})
        assert await peer.data() == {"e": "trade", "s": "BTCUSDT", "t": 1}
        assert await peer.ask({"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {
            "result": ["btcusdt@trade"],
            "id": 1,
        }
        await peer.leave()
        assert streams.subscribers() == 0

    run(main())


def test_several_streams_in_the_path_as_binance_takes_them() -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = await Peer(_endpoint(streams), "/ws/btcusdt@trade/ethusdt@depth@100ms").accepted()
        assert await peer.ask({"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {
            "result": ["btcusdt@trade", "ethusdt@depth@100ms"],
            "id": 1,
        }
        streams.publish("ethusdt@depth@100ms", {"e": "depthUpdate", "U": 1, "u": 2})
        assert await peer.data() == {"e": "depthUpdate", "U": 1, "u": 2}
        await peer.leave()

    run(main())


@pytest.mark.parametrize("path", ["/ws", "/ws/", "/ws/0", "/ws/7", "/stream/ws", "/stream/ws/0"])
def test_a_path_without_streams_waits_for_subscribe_and_sends_raw_payloads(path: str) -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = await Peer(_endpoint(streams), path).accepted()
        assert await peer.ask({"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {"result": [], "id": 1}
        assert await peer.ask({"method": "GET_PROPERTY", "params": ["combined"], "id": 2}) == {
            "result": False,
            "id": 2,
        }
        subscribe = {"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 3}
        assert await peer.ask(subscribe) == {"result": None, "id": 3}
        streams.publish("btcusdt@depth@100ms", {"e": "depthUpdate", "u": 5})
        assert await peer.data() == {"e": "depthUpdate", "u": 5}
        await peer.leave()

    run(main())


@pytest.mark.parametrize("path", ["/stream", "/stream/stream"])  # the latter: sandex_urls'
def test_combined_streams_wrap_each_payload_with_its_stream_name(path: str) -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = Peer(_endpoint(streams), path, query=b"streams=btcusdt@trade/ethusdt@kline_1m")
        await peer.accepted()
        streams.publish("ethusdt@kline_1m", {"e": "kline", "k": {"i": "1m"}})
        assert await peer.data() == {
            "stream": "ethusdt@kline_1m",
            "data": {"e": "kline", "k": {"i": "1m"}},
        }
        assert await peer.ask({"method": "GET_PROPERTY", "params": ["combined"], "id": 1}) == {
            "result": True,
            "id": 1,
        }
        await peer.leave()

    run(main())


def test_set_property_combined_switches_the_payload_form() -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = await Peer(_endpoint(streams), "/ws/btcusdt@trade").accepted()
        ask = {"method": "SET_PROPERTY", "params": ["combined", True], "id": 4}
        assert await peer.ask(ask) == {"result": None, "id": 4}
        streams.publish("btcusdt@trade", {"t": 1})
        assert await peer.data() == {"stream": "btcusdt@trade", "data": {"t": 1}}
        ask = {"method": "SET_PROPERTY", "params": ["combined", False], "id": 5}
        assert await peer.ask(ask) == {"result": None, "id": 5}
        streams.publish("btcusdt@trade", {"t": 2})
        assert await peer.data() == {"t": 2}
        await peer.leave()

    run(main())


@pytest.mark.parametrize("path", ["/", "/api/v3/ping", "/wsx", "/streams", "/ws-api/v3"])
def test_an_unknown_path_is_refused_with_a_404_before_the_handshake(path: str) -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = Peer(_endpoint(streams), path)
        start = await peer.next()
        assert start["type"] == "websocket.http.response.start"
        assert start["status"] == 404
        body = await peer.next()
        reply = orjson.loads(body["body"])
        assert set(reply) == {"code", "msg"} and reply["code"] < 0 and path in reply["msg"]
        await asyncio.wait_for(peer.task, 2)

    run(main())


def test_without_the_http_response_extension_an_unknown_path_is_closed_unaccepted() -> None:
    async def main() -> None:
        peer = Peer(_endpoint(FakeStreams()), "/nowhere", http_response=False)
        message = await peer.next()
        assert message == {"type": "websocket.close", "code": 1008}

    run(main())


# -- control methods -----------------------------------------------------------------


def test_subscribe_unsubscribe_and_list_answer_as_binance_and_echo_the_id_type() -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = await Peer(_endpoint(streams), "/ws").accepted()
        ask = {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@aggTrade"], "id": 1}
        assert await peer.ask(ask) == {"result": None, "id": 1}
        ask = {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": "abc123"}
        assert await peer.ask(ask) == {"result": None, "id": "abc123"}  # twice: still one
        ask = {"method": "LIST_SUBSCRIPTIONS", "id": None}
        assert await peer.ask(ask) == {"result": ["btcusdt@trade", "btcusdt@aggTrade"], "id": None}
        ask = {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@trade"], "id": 7}
        assert await peer.ask(ask) == {"result": None, "id": 7}
        assert await peer.ask({"method": "LIST_SUBSCRIPTIONS", "id": 8}) == {
            "result": ["btcusdt@aggTrade"],
            "id": 8,
        }
        streams.publish("btcusdt@trade", {"t": 1})
        streams.publish("btcusdt@aggTrade", {"a": 2})
        assert await peer.data() == {"a": 2}  # the unsubscribed stream sent nothing
        assert streams.subscribers() == 1
        await peer.leave()

    run(main())


def test_the_reply_comes_as_a_text_frame_with_result_before_id() -> None:
    async def main() -> None:
        peer = await Peer(_endpoint(FakeStreams()), "/ws").accepted()
        peer.to_app.put_nowait(
            {"type": "websocket.receive", "text": '{"method":"SUBSCRIBE","params":[],"id":1}'}
        )
        message = await peer.next()
        assert message == {"type": "websocket.send", "text": '{"result":null,"id":1}'}
        await peer.leave()

    run(main())


_UNKNOWN = (
    "Invalid request: unknown variant `{}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`,"
    " `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column {}"
)


@pytest.mark.parametrize(
    ("request_text", "error", "request_id"),
    [
        ('{"method":"SUBSCRIBE","params":["btcusdt@nope"],"id":1}', (2, "Invalid request: invalid stream"), 1),
        ('{"method":"SUBSCRIBE","params":["BTCUSDT@trade"],"id":1}', (2, "Invalid request: invalid stream"), 1),
        ('{"method":"SUBSCRIBE","params":["xrpusdt@trade"],"id":1}', (2, "Invalid request: invalid stream"), 1),
        ('{"method":"SUBSCRIBE","params":[5],"id":1}', (2, "Invalid request: invalid stream"), 1),
        ('{"method":"UNSUBSCRIBE","params":["garbage"],"id":"x1"}', (2, "Invalid request: invalid stream"), "x1"),
        ('{"method":"SUBSCRIBES","params":[],"id":1}', (2, _UNKNOWN.format("SUBSCRIBES", 22)), None),
        ('{"method":"subscribe","params":[],"id":1}', (2, _UNKNOWN.format("subscribe", 21)), None),
        ('{"params":["btcusdt@trade"],"id":1}', (2, "Invalid request: missing field `method` at line 1 column 35"), None),
        ('{"method":"SUBSCRIBE","params":[]}', (2, "Invalid request: request ID must be an unsigned integer"), None),
        ('{"method":"SUBSCRIBE","params":[],"id":1.5}', (2, "Invalid request: request ID must be an unsigned integer"), None),
        ('{"method":"SUBSCRIBE","params":[],"id":"a-b"}', (2, "Invalid request: request ID must be an unsigned integer"), None),
        ('{"method":"SUBSCRIBE","params":[],"id":true}', (2, "Invalid request: request ID must be an unsigned integer"), None),
        ('{"method":"SUBSCRIBE","params":[],"id":"' + "a" * 37 + '"}', (2, "Invalid request: request ID must be an unsigned integer"), None),
        ('{"method":"SUBSCRIBE","params":[],"id":9223372036854775808}', (2, "Invalid request: request ID must be an unsigned integer"), None),
        ('{"method":"LIST_SUBSCRIPTIONS","params":["x"],"id":3}', (2, "Invalid request: too many parameters"), 3),
        ('{"method":"GET_PROPERTY","params":["combined","x"],"id":3}', (2, "Invalid request: too many parameters"), 3),
        ('{"method":"SET_PROPERTY","params":["combined",true,1],"id":3}', (2, "Invalid request: too many parameters"), 3),
        ('{"method":"GET_PROPERTY","params":[],"id":3}', (2, "Invalid request: property name must be a string"), 3),
        ('{"method":"SET_PROPERTY","params":[1,true],"id":3}', (2, "Invalid request: property name must be a string"), 3),
        ('{"method":"GET_PROPERTY","params":["speed"],"id":3}', (0, "Unknown property"), 3),
        ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":3}', (1, "Invalid value type: expected Boolean"), 3),
        ('{"method":"SET_PROPERTY","params":["combined"],"id":3}', (1, "Invalid value type: expected Boolean"), 3),
        ('{"method":"SUBSCRIBE","params":"btcusdt@trade","id":3}', (2, "Invalid request: params must be an array"), 3),
        ('[1,2]', (2, "Invalid request: invalid type, expected struct Request at line 1 column 5"), None),
        ('{"method":"SUBSCRIBE",', (3, "Invalid JSON: expected value at line 1 column 23"), None),
        ("not json", (3, "Invalid JSON: expected value at line 1 column 1"), None),
    ],
)  # fmt: skip
def test_each_bad_request_gets_binances_error_payload_and_the_connection_stays(
    request_text: str, error: tuple[int, str], request_id: object
) -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = await Peer(_endpoint(streams), "/ws").accepted()
        code, msg = error
        assert await peer.ask(request_text) == {
            "error": {"code": code, "msg": msg},
            "id": request_id,
        }
        ask = {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 2}
        assert await peer.ask(ask) == {"result": None, "id": 2}  # still serving
        await peer.leave()

    run(main())


def test_a_subscribe_with_one_invalid_name_subscribes_none() -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = await Peer(_endpoint(streams), "/ws").accepted()
        ask = {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@bad"], "id": 1}
        assert (await peer.ask(ask))["error"]["code"] == 2  # type: ignore[index]
        assert await peer.ask({"method": "LIST_SUBSCRIPTIONS", "id": 2}) == {"result": [], "id": 2}
        await peer.leave()

    run(main())


def test_a_binary_frame_is_read_as_json_too() -> None:
    async def main() -> None:
        peer = await Peer(_endpoint(FakeStreams()), "/ws").accepted()
        assert await peer.ask(b'{"method":"LIST_SUBSCRIPTIONS","id":1}') == {"result": [], "id": 1}
        await peer.leave()

    run(main())


# -- connection rules ----------------------------------------------------------------


def test_more_than_1024_streams_are_refused_and_the_connection_keeps_its_own() -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = await Peer(_endpoint(streams, max_streams=3), "/ws/btcusdt@trade").accepted()
        ask = {"method": "SUBSCRIBE", "params": ["btcusdt@depth", "ethusdt@trade"], "id": 1}
        assert await peer.ask(ask) == {"result": None, "id": 1}
        ask = {"method": "SUBSCRIBE", "params": ["ethusdt@depth"], "id": 2}
        reply = await peer.ask(ask)
        assert reply == {
            "error": {
                "code": 2,
                "msg": "Invalid request: too many streams (a connection listens to at most 3)",
            },
            "id": 2,
        }
        ask = {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 3}  # already held
        assert await peer.ask(ask) == {"result": None, "id": 3}
        assert streams.subscribers() == 3
        await peer.leave()

    run(main())


def test_the_default_stream_limit_is_binances_1024() -> None:
    assert StreamLimits().max_streams == 1024
    assert StreamLimits().messages_per_s == 5
    assert StreamLimits().connections_per_ip == 300
    assert StreamLimits().connection_window_ms == 300_000
    assert StreamLimits().lifetime_s == 24 * 3600


def test_too_many_streams_in_the_path_close_the_connection() -> None:
    async def main() -> None:
        streams = FakeStreams()
        path = "/ws/btcusdt@trade/btcusdt@depth/ethusdt@trade"
        peer = await Peer(_endpoint(streams, max_streams=2), path).accepted()
        assert await peer.closed() == (1008, "Too many streams: at most 2")
        assert streams.subscribers() == 0

    run(main())


def test_more_than_5_messages_a_second_close_the_connection_with_1008() -> None:
    async def main() -> None:
        streams = FakeStreams()
        clock = Clock()
        peer = await Peer(_endpoint(streams, clock), "/ws/btcusdt@trade").accepted()
        for i in range(5):  # 5 in one second: fine
            assert await peer.ask({"method": "LIST_SUBSCRIPTIONS", "id": i}) == {
                "result": ["btcusdt@trade"],
                "id": i,
            }
        clock.ms += 1000
        for i in range(5):  # 5 more, a second later: fine
            clock.ms += 10
            await peer.ask({"method": "LIST_SUBSCRIPTIONS", "id": i})
        peer.to_app.put_nowait({"type": "websocket.receive", "text": "{}"})  # the 6th
        assert await peer.closed() == (1008, "Too many requests")
        assert streams.subscribers() == 0

    run(main())


def test_a_connection_is_closed_when_its_life_ends() -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = await Peer(_endpoint(streams, lifetime_s=0.05), "/ws/btcusdt@trade").accepted()
        assert await peer.closed() == (1001, "Connection lifetime reached")
        assert streams.subscribers() == 0

    run(main())


def test_connection_attempts_per_ip_are_limited_and_refused_with_429() -> None:
    async def main() -> None:
        streams = FakeStreams()
        clock = Clock()
        endpoint = _endpoint(streams, clock, connections_per_ip=3)
        peers = [await Peer(endpoint, "/ws", client="192.0.2.1").accepted() for _ in range(2)]
        refused_path = Peer(endpoint, "/nowhere", client="192.0.2.1")  # an attempt too
        assert (await refused_path.next())["status"] == 404
        over = Peer(endpoint, "/ws", client="192.0.2.1")
        start = await over.next()
        assert start["type"] == "websocket.http.response.start"
        assert start["status"] == 429
        assert int(dict(start["headers"])[b"retry-after"]) > 0
        body = orjson.loads((await over.next())["body"])
        assert body["code"] == -1003
        assert "192.0.2.1" in body["msg"] and "3 per 5 minutes" in body["msg"]
        other = await Peer(endpoint, "/ws", client="192.0.2.2").accepted()  # its own budget
        closed = Peer(endpoint, "/ws", client="192.0.2.1", http_response=False)
        assert await closed.next() == {"type": "websocket.close", "code": 1008}
        clock.ms += 300_000  # the next window
        again = await Peer(endpoint, "/ws", client="192.0.2.1").accepted()
        for peer in [*peers, other, again]:
            await peer.leave()

    run(main())


def test_with_several_workers_connection_attempts_are_counted_together(
    redis_namespace: str,
) -> None:
    """Two workers (two endpoints) sharing the rate limiter's Redis storage: an IP's
    attempts add up across them, as Binance counts them per IP."""
    shared = RedisStorage(REDIS_URL, key_prefix=f"{redis_namespace}:limits")

    async def main() -> None:
        streams = FakeStreams()
        clock = Clock()
        resolver = ClientIpResolver()
        one, two = (
            StreamEndpoint(
                streams,
                resolver.resolve,
                clock.now,
                StreamLimits(connections_per_ip=3),
                attempts_shared=shared,
            )
            for _ in range(2)
        )
        peers = [
            await Peer(endpoint, "/ws", client="192.0.2.9").accepted()
            for endpoint in (one, two, one)
        ]
        over = Peer(two, "/ws", client="192.0.2.9")
        assert (await over.next())["status"] == 429
        await over.next()
        for peer in peers:
            await peer.leave()

    run(main())


def test_without_the_shared_storage_attempts_are_counted_per_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = RedisStorage("redis://127.0.0.1:1")  # nothing listens there

    async def main() -> None:
        streams = FakeStreams()
        endpoint = StreamEndpoint(
            streams,
            ClientIpResolver().resolve,
            Clock().now,
            StreamLimits(connections_per_ip=1),
            attempts_shared=gone,
        )
        first = await Peer(endpoint, "/ws", client="192.0.2.10").accepted()
        refused = Peer(endpoint, "/ws", client="192.0.2.10")
        assert (await refused.next())["status"] == 429
        await refused.next()
        await first.leave()

    with caplog.at_level(logging.WARNING, logger="sandex.http.ws_connection"):
        run(main())
    lines = [r for r in caplog.records if r.name == "sandex.http.ws_connection"]
    assert len(lines) == 1 and "counted per process" in lines[0].getMessage()
    assert lines[0].exc_info is None


def test_a_trusted_proxys_forwarded_address_is_the_one_counted() -> None:
    async def main() -> None:
        streams = FakeStreams()
        resolver = ClientIpResolver(parse_networks("127.0.0.1"))
        endpoint = _endpoint(streams, resolver=resolver, connections_per_ip=1)

        def via_proxy(client_ip: str) -> Peer:
            headers = [(b"x-forwarded-for", client_ip.encode())]
            return Peer(endpoint, "/ws", client="127.0.0.1", headers=headers)

        first = await via_proxy("198.51.100.7").accepted()
        second = await via_proxy("198.51.100.8").accepted()  # another client, same proxy
        refused = via_proxy("198.51.100.7")
        assert (await refused.next())["status"] == 429
        body = orjson.loads((await refused.next())["body"])
        assert "198.51.100.7" in body["msg"]
        await first.leave()
        await second.leave()

    run(main())


def test_a_slow_consumer_is_dropped_and_the_others_get_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        streams = FakeStreams()
        endpoint = _endpoint(streams, pending_messages=10, close_timeout_s=0.05)
        stuck = asyncio.Event()
        sent: list[Message] = []

        async def never_writes(message: Message) -> None:  # a client that stopped reading
            sent.append(message)
            if message["type"] == "websocket.send":
                await stuck.wait()

        slow = Peer(endpoint, "/ws/btcusdt@trade", send=never_writes)
        fast = await Peer(endpoint, "/ws/btcusdt@trade").accepted()
        await asyncio.sleep(0)
        for i in range(12):
            streams.publish("btcusdt@trade", {"t": i})
            await asyncio.sleep(0)  # the event loop turns between the engine's batches
        await asyncio.wait_for(slow.task, 2)  # dropped, without waiting for the client
        assert [await fast.data() for _ in range(12)] == [{"t": i} for i in range(12)]
        assert streams.subscribers() == 1
        streams.publish("btcusdt@trade", {"t": 12})
        assert await fast.data() == {"t": 12}
        await fast.leave()
        assert sent[0]["type"] == "websocket.accept"

    with caplog.at_level(logging.INFO, logger="sandex.http.ws_connection"):
        run(main())
    records = [r for r in caplog.records if r.name == "sandex.http.ws_connection"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert "slow consumer" in records[0].getMessage()
    assert records[0].exc_info is None


def test_a_client_that_leaves_is_unsubscribed_and_pushes_after_it_are_harmless() -> None:
    async def main() -> None:
        streams = FakeStreams()
        peer = await Peer(_endpoint(streams), "/ws/btcusdt@trade/ethusdt@trade").accepted()
        sink = streams.sinks["btcusdt@trade"][0]
        await peer.leave()
        assert streams.subscribers() == 0
        sink.push("btcusdt@trade", b'{"t":1}')  # a push racing the departure

    run(main())


# -- through the gateway ---------------------------------------------------------------


def test_the_gateway_hands_websocket_scopes_to_its_market_streams(
    make_gateway: Callable[..., tuple[Sandex, Gateway]],
) -> None:
    _, gateway = make_gateway()
    streams = gateway.services.streams
    assert streams is not None

    async def main() -> None:
        peer = await Peer(gateway, "/stream/ws/0").accepted()
        ask = {"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 1}
        assert await peer.ask(ask) == {"result": None, "id": 1}
        assert streams.subscribers("btcusdt@depth@100ms") == 1
        ask = {"method": "SUBSCRIBE", "params": ["nosuchcoin@trade"], "id": 2}
        assert await peer.ask(ask) == {
            "error": {"code": 2, "msg": "Invalid request: invalid stream"},
            "id": 2,
        }
        await peer.leave()
        assert streams.subscribers("btcusdt@depth@100ms") == 0
        refused = Peer(gateway, "/nowhere")
        assert (await refused.next())["status"] == 404

    run(main())


def test_a_gateway_without_the_exchange_closes_websockets(
    make_gateway: Callable[..., tuple[Sandex, Gateway]],
) -> None:
    _, gateway = make_gateway(exchange=False)
    assert gateway.services.streams is None

    async def main() -> None:
        peer = Peer(gateway, "/ws/btcusdt@trade")
        assert await peer.next() == {"type": "websocket.close", "code": 1003}

    run(main())


# -- over a real server: uvicorn with `sandex serve`'s WebSocket options ---------------


@contextlib.contextmanager
def _server(endpoint: StreamEndpoint, settings: Settings) -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        endpoint,
        lifespan="off",
        log_level="warning",
        loop="asyncio",
        **websocket_options(settings),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def fast_pings(tmp_path: Path) -> Settings:
    env = {**os.environ, "SANDEX_WS_PING_INTERVAL": "1", "SANDEX_WS_PONG_TIMEOUT": "1"}
    return Settings.from_env(env, data_dir=tmp_path)


def test_the_default_websocket_options_are_binances_ping_rules(tmp_path: Path) -> None:
    options = websocket_options(Settings.from_env({}, data_dir=tmp_path))
    assert options["ws_ping_interval"] == 20
    assert options["ws_ping_timeout"] == 60
    assert options["ws_max_size"] == MAX_MESSAGE_BYTES


def test_a_client_that_never_answers_pings_is_dropped_and_one_that_does_stays(
    fast_pings: Settings,
) -> None:
    streams = FakeStreams()
    with _server(_endpoint(streams), fast_pings) as port:

        async def main() -> None:
            async with connect(f"ws://127.0.0.1:{port}/ws/btcusdt@trade") as healthy:
                # read (never answering) until the server hangs up
                received, waited = await asyncio.to_thread(mute_client, port, timeout=10)
                head, _, rest = received.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 101")
                frames = list(server_frames(rest))
                assert frames[0][0] == 0x9  # the server's ping
                assert frames[-1][0] == 0x8  # then its close: keepalive ping timeout
                assert struct.unpack("!H", frames[-1][1][:2])[0] == 1011
                assert 1.5 <= waited < 6
                assert healthy.state.name == "OPEN"  # answered its pings all along
                streams.publish("btcusdt@trade", {"t": 1})
                assert orjson.loads(await asyncio.wait_for(healthy.recv(), 2)) == {"t": 1}

        run(main())
    assert streams.subscribers() == 0


def test_an_oversized_frame_closes_the_connection_with_1009(fast_pings: Settings) -> None:
    streams = FakeStreams()
    with _server(_endpoint(streams), fast_pings) as port:

        async def main() -> None:
            async with connect(f"ws://127.0.0.1:{port}/stream/ws/0") as ws:
                await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
                assert orjson.loads(await ws.recv()) == {"result": [], "id": 1}
                await ws.send('{"method":"SUBSCRIBE","params":["' + "x" * MAX_MESSAGE_BYTES + '"]}')
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

        run(main())


def test_a_peer_that_stops_reading_is_dropped_while_the_others_keep_up(
    fast_pings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    streams = FakeStreams()
    endpoint = _endpoint(streams, pending_messages=50, close_timeout_s=0.2)
    payload = {"e": "trade", "pad": "x" * 8000}
    count = 1000  # 8 MB: far more than the kernel and the transport buffer between them

    with caplog.at_level(logging.INFO), _server(endpoint, fast_pings) as port:

        async def main() -> None:
            async with connect(f"ws://127.0.0.1:{port}/ws/btcusdt@trade") as reader:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as stuck:
                    key = base64.b64encode(os.urandom(16))
                    stuck.sendall(
                        b"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
                        b"Sec-WebSocket-Version: 13\r\n\r\n"
                    )  # and never reads again
                    deadline = time.monotonic() + 5
                    while streams.subscribers() < 2:
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.01)
                    loop = streams.loop
                    assert loop is not None

                    def publish(i: int) -> None:
                        streams.publish("btcusdt@trade", {**payload, "t": i})

                    received = 0
                    for i in range(count):
                        loop.call_soon_threadsafe(publish, i)
                        if i % 20 == 19:  # the engine's batches, with the reader reading
                            while received <= i - 20:
                                message = orjson.loads(await asyncio.wait_for(reader.recv(), 5))
                                assert message["t"] == received
                                received += 1
                    while received < count:
                        message = orjson.loads(await asyncio.wait_for(reader.recv(), 5))
                        assert message["t"] == received
                        received += 1
                    assert streams.subscribers() == 1  # the stuck one is gone

        run(main())
    dropped = [r for r in caplog.records if "slow consumer" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info is not None]


def test_a_404_path_over_a_real_server_is_an_http_refusal(fast_pings: Settings) -> None:
    with _server(_endpoint(FakeStreams()), fast_pings) as port:

        async def main() -> None:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"ws://127.0.0.1:{port}/nowhere"):
                    pass
            assert refused.value.response.status_code == 404
            assert orjson.loads(refused.value.response.body or b"")["code"] < 0

        run(main())


def test_a_text_frame_is_what_websockets_would_write_at_every_length_encoding() -> None:
    from websockets.frames import Frame, Opcode

    from sandex.http.ws_connection import text_frame

    for size in (0, 1, 125, 126, 65_535, 65_536, 70_000):
        data = b"x" * size
        assert text_frame(data) == Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])


def test_over_uvicorn_the_messages_of_one_turn_arrive_as_separate_text_frames_in_order(
    fast_pings: Settings,
) -> None:
    streams = FakeStreams()
    sizes = (10, 300, 70_000)  # every frame length encoding, in UTF-8 bytes ("é" is 2)
    with _server(_endpoint(streams), fast_pings) as port:

        async def main() -> None:
            base = f"ws://127.0.0.1:{port}"
            async with (
                connect(f"{base}/ws/btcusdt@trade", max_size=2**20) as raw,
                connect(f"{base}/stream?streams=btcusdt@trade", max_size=2**20) as combined,
            ):
                await raw.send('{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":7}')
                assert orjson.loads(await asyncio.wait_for(raw.recv(), 5)) == {
                    "result": None,
                    "id": 7,
                }
                loop = streams.loop
                assert loop is not None and streams.subscribers() == 3

                def burst() -> None:  # one turn of the server's loop
                    for i, size in enumerate(sizes):
                        streams.publish("btcusdt@trade", {"t": i, "pad": "é" * (size // 2)})
                    streams.publish("ethusdt@trade", {"t": 99})

                loop.call_soon_threadsafe(burst)
                for i, size in enumerate(sizes):
                    data = {"t": i, "pad": "é" * (size // 2)}
                    message = await asyncio.wait_for(raw.recv(), 5)
                    assert isinstance(message, str) and orjson.loads(message) == data
                    message = await asyncio.wait_for(combined.recv(), 5)
                    assert isinstance(message, str)
                    assert orjson.loads(message) == {"stream": "btcusdt@trade", "data": data}
                assert orjson.loads(await asyncio.wait_for(raw.recv(), 5)) == {"t": 99}
                await raw.send('{"method":"LIST_SUBSCRIPTIONS","id":8}')
                assert orjson.loads(await asyncio.wait_for(raw.recv(), 5)) == {
                    "result": ["btcusdt@trade", "ethusdt@trade"],
                    "id": 8,
                }

        run(main())


def test_over_uvicorn_a_reader_that_pauses_within_the_bound_gets_everything_in_order(
    fast_pings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    streams = FakeStreams()
    count = 1000  # 8 MB: more than the kernel buffers, the transport fills, the queue waits
    with caplog.at_level(logging.INFO), _server(_endpoint(streams), fast_pings) as port:

        async def main() -> None:
            async with connect(
                f"ws://127.0.0.1:{port}/ws/btcusdt@trade", max_size=2**20, max_queue=4
            ) as ws:
                while streams.subscribers() < 1:
                    await asyncio.sleep(0.01)
                loop = streams.loop
                assert loop is not None

                def batch(first: int) -> None:
                    for i in range(first, first + 20):
                        streams.publish("btcusdt@trade", {"t": i, "pad": "x" * 8000})

                async def publish() -> None:
                    for first in range(0, count, 20):  # in turns of the server's loop
                        batch(first)
                        await asyncio.sleep(0.001)

                # not reading meanwhile
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(publish(), loop))
                for i in range(count):
                    assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["t"] == i
                assert streams.subscribers() == 1

        run(main())
    assert not [r for r in caplog.records if "slow consumer" in r.getMessage()]

"""The WebSocket API endpoint in process (ASGI messages, no server): what a message that
is not a request costs, and answers that need no exchange. Trading, signing and the user
data stream are proved over a served instance in tests/e2e/test_ws_api.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from sandex.bootstrap import Sandex
from sandex.http import Gateway
from ws_support import Peer


def test_messages_that_are_not_requests_cost_weight_and_a_flood_is_refused(
    make_gateway: Callable[..., tuple[Sandex, Gateway]],
) -> None:
    _, gateway = make_gateway(exchange=False, ip_weight_1m=10)

    async def main() -> list[Any]:
        peer = await Peer(gateway, "/ws-api/v3", client="192.0.2.30").accepted()
        answers = [await peer.ask("{not json") for _ in range(12)]
        other = await Peer(gateway, "/ws-api/v3", client="192.0.2.31").accepted()
        answers.append(await other.ask({"id": 1, "method": "ping"}))
        await peer.leave()
        await other.leave()
        return answers

    answers = asyncio.run(main())
    codes = [(a["status"], a["error"]["code"]) for a in answers[:12]]
    assert codes[:10] == [(400, -1135)] * 10
    assert codes[10:] == [(429, -1003)] * 2  # over the IP's weight, as over REST
    assert all(a["id"] is None for a in answers[:12])
    assert answers[12]["status"] == 200 and answers[12]["result"] == {}  # another IP


def test_answers_echo_the_id_and_unknown_methods_are_refused(
    make_gateway: Callable[..., tuple[Sandex, Gateway]],
) -> None:
    _, gateway = make_gateway(exchange=False)

    async def main() -> list[Any]:
        peer = await Peer(gateway, "/ws-api/v3", query=b"returnRateLimits=false").accepted()
        answers = [
            await peer.ask({"id": "abc", "method": "time"}),
            await peer.ask({"id": 7, "method": "v3/ping", "params": {}}),
            await peer.ask({"id": 8, "method": "order.teleport"}),
            await peer.ask({"id": 9, "method": "session.status"}),
            await peer.ask({"id": 10, "method": "ping", "params": {"returnRateLimits": True}}),
            await peer.ask(orjson.dumps({"id": 11, "method": "time"})),  # a binary frame
        ]
        await peer.leave()
        return answers

    time_, ping, unknown, status, limited, binary = asyncio.run(main())
    assert time_["id"] == "abc" and "serverTime" in time_["result"] and "rateLimits" not in time_
    assert ping == {"id": 7, "status": 200, "result": {}}
    assert unknown["status"] == 400 and unknown["error"]["code"] == -1020
    assert status["result"]["apiKey"] is None and status["result"]["returnRateLimits"] is False
    assert limited["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    assert binary["id"] == 11 and binary["status"] == 200

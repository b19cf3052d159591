"""Binance's WebSocket API (``/ws-api/v3``) on a real ``sandex serve``: requests signed
the two ways clients sign them (ccxt's raw ``k=v`` and python-binance's percent-encoded
form) with HMAC, Ed25519 and RSA keys, REST's semantics and error codes in
``{id, status, result|error}`` form, and the user data stream
(``userDataStream.subscribe.signature``): execution reports and balances while orders
trade, unsubscribing, and a key revoked or frozen under a live subscription cut off
within a second with ``eventStreamTerminated``.

One server (SQLite) serves the module. The server's log must hold no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from e2e.clients import Credentials, new_key, now_ms, spot_ccxt_client, wait_for_balance
from e2e.conftest import Launch, Server, assert_no_traceback, server_env
from sandex.bootstrap import Sandex
from sandex.keys import KeyKind, Permission
from sandex.keys.material import load_private_key
from sandex.keys.reference import KeyById
from sandex.keys.signing import sign_hmac, sign_with_private_key
from support import OPERATOR, REDIS_URL

TRADE = Permission.READ | Permission.SPOT_TRADE
WAIT_S = 10.0
_ids = itertools.count(1)
_emails = itertools.count(1)

pytestmark = pytest.mark.usefixtures("server_alive")


@pytest.fixture(scope="module", autouse=True)
def _no_traceback_in_the_log(sqlite_server: Server) -> Iterator[None]:
    yield
    assert_no_traceback(sqlite_server.log)


def _url(base: str, query: str = "") -> str:
    return base.replace("http://", "ws://", 1) + "/ws-api/v3" + query


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signed(creds: Credentials, params: dict[str, Any], *, quoted: bool = False) -> dict[str, Any]:
    """``params`` with apiKey, timestamp and signature, signed as ccxt signs (raw) or as
    python-binance does (``quoted``)."""
    params = {"apiKey": creds.api_key, "timestamp": now_ms(), **params}
    items = sorted((k, _text(v)) for k, v in params.items())
    payload = urlencode(items) if quoted else "&".join(f"{k}={v}" for k, v in items)
    if creds.kind is KeyKind.HMAC_SHA256:
        assert creds.secret is not None
        signature = sign_hmac(creds.secret, payload.encode())
    else:
        assert creds.private_key_pem is not None
        signature = sign_with_private_key(load_private_key(creds.private_key_pem), payload.encode())
    return {**params, "signature": signature}


class Api:
    """One WebSocket API connection: requests answered by id, events kept aside."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = f"r{next(_ids)}"
        request: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        await self.ws.send(orjson.dumps(request).decode())
        return await self.answer(request_id)

    async def raw(self, text: str) -> dict[str, Any]:
        await self.ws.send(text)
        return await self._next(lambda m: "status" in m)

    async def answer(self, request_id: object) -> dict[str, Any]:
        return await self._next(lambda m: "status" in m and m.get("id") == request_id)

    async def event(self, wanted: Any, timeout: float = WAIT_S) -> dict[str, Any]:
        """The first user data event (``{"subscriptionId", "event"}``) ``wanted`` takes."""
        for i, message in enumerate(self.events):
            if wanted(message):
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            message = await self._receive(max(0.05, deadline - time.monotonic()))
            if "event" in message and wanted(message):
                return message
            if "event" in message:
                self.events.append(message)

    async def _next(self, wanted: Any) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while True:
            message = await self._receive(max(0.05, deadline - time.monotonic()))
            if wanted(message):
                return message
            if "event" in message:
                self.events.append(message)

    async def _receive(self, timeout: float) -> dict[str, Any]:
        message: dict[str, Any] = orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return message


def _key(operator: Sandex, name: str, **kw: Any) -> Credentials:
    return new_key(operator, f"e2e-wsapi-{name}-{next(_emails)}@example.com", label=name, **kw)


def _funded(operator: Sandex, base: str, name: str, **kw: Any) -> Credentials:
    """A trading key whose user has received the starting balance."""
    creds = _key(operator, name, permissions=TRADE, **kw)
    ex = spot_ccxt_client(base, creds)
    wait_for_balance(ex, "USDT", Decimal(10_000))
    return creds


def _bid(**extra: Any) -> dict[str, Any]:
    """A resting bid far below the market (60000): 0.01 BTC at 30000."""
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "30000.00",
        **extra,
    }


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("quoted", [False, True], ids=["raw", "percent-encoded"])
def test_orders_placed_queried_and_canceled_as_over_rest(
    operator: Sandex, base: str, quoted: bool
) -> None:
    creds = _funded(operator, base, "orders")

    async def main() -> None:
        async with connect(_url(base)) as ws:
            api = Api(ws)
            cid = f"ws-{next(_ids)}"
            placed = await api.call(
                "order.place", signed(creds, _bid(newClientOrderId=cid), quoted=quoted)
            )
            assert placed["status"] == 200, placed
            order = placed["result"]
            assert order["clientOrderId"] == cid and order["status"] == "NEW"
            assert order["price"] == "30000.00000000" and order["origQty"] == "0.01000000"
            kinds = {(r["rateLimitType"], r["interval"]) for r in placed["rateLimits"]}
            assert kinds == {("REQUEST_WEIGHT", "MINUTE"), ("ORDERS", "SECOND"), ("ORDERS", "DAY")}
            status = await api.call(
                "order.status",
                signed(creds, {"symbol": "BTCUSDT", "orderId": order["orderId"]}, quoted=quoted),
            )
            assert status["result"]["clientOrderId"] == cid
            assert status["result"]["status"] == "NEW"
            listed = await api.call("openOrders.status", signed(creds, {"symbol": "BTCUSDT"}))
            assert [o["orderId"] for o in listed["result"]] == [order["orderId"]]
            canceled = await api.call(
                "order.cancel",
                signed(
                    creds,
                    {"symbol": "BTCUSDT", "origClientOrderId": cid, "returnRateLimits": False},
                    quoted=quoted,
                ),
            )
            assert canceled["status"] == 200 and canceled["result"]["status"] == "CANCELED"
            assert "rateLimits" not in canceled
            again = await api.call(
                "order.cancel", signed(creds, {"symbol": "BTCUSDT", "origClientOrderId": cid})
            )
            assert again["status"] == 400
            assert again["error"] == {"code": -2011, "msg": "Unknown order sent."}

    run(main())


@pytest.mark.parametrize("kind", [KeyKind.ED25519, KeyKind.RSA], ids=["ed25519", "rsa"])
def test_asymmetric_keys_sign_requests_both_ways(
    operator: Sandex, base: str, kind: KeyKind
) -> None:
    creds = _key(operator, f"asym-{kind.value}", kind=kind)

    async def main() -> None:
        async with connect(_url(base, "?returnRateLimits=false")) as ws:
            api = Api(ws)
            for quoted in (False, True):
                account = await api.call("account.status", signed(creds, {}, quoted=quoted))
                assert account["status"] == 200, account
                assert "rateLimits" not in account
                assert account["result"]["accountType"] == "SPOT"

    run(main())


def test_public_methods_need_no_key_and_session_status_answers(base: str) -> None:
    async def main() -> None:
        async with connect(_url(base)) as ws:
            api = Api(ws)
            server_time = await api.call("time")
            assert server_time["status"] == 200
            assert abs(server_time["result"]["serverTime"] - now_ms()) < 5_000
            book = await api.call("depth", {"symbol": "BTCUSDT", "limit": 5})
            bids, asks = book["result"]["bids"], book["result"]["asks"]
            assert Decimal(bids[0][0]) < Decimal(asks[0][0])
            prices = await api.call("ticker.price", {"symbols": ["BTCUSDT", "ETHUSDT"]})
            assert [p["symbol"] for p in prices["result"]] == ["BTCUSDT", "ETHUSDT"]
            versioned = await api.call("v3/ping")
            assert versioned["status"] == 200 and versioned["result"] == {}
            status = await api.call("session.status")
            assert status["result"]["apiKey"] is None
            assert status["result"]["userDataStream"] is False

    run(main())


def test_every_mistake_is_a_400_answer_and_the_connection_stays(
    operator: Sandex, base: str
) -> None:
    creds = _key(operator, "mistakes", permissions=Permission.READ)

    async def main() -> None:
        async with connect(_url(base)) as ws:
            api = Api(ws)
            bad_json = await api.raw("{not json")
            assert bad_json["id"] is None and bad_json["status"] == 400
            assert bad_json["error"]["code"] == -1135
            no_id = await api.raw('{"method": "time"}')
            assert no_id["status"] == 400 and no_id["error"]["code"] == -1102
            unknown = await api.call("order.teleport")
            assert unknown["status"] == 400 and unknown["error"]["code"] == -1020
            params = await api.raw('{"id": 7, "method": "time", "params": [1]}')
            assert params["id"] == 7 and params["error"]["code"] == -1102
            no_symbol = await api.call("depth", {})
            assert no_symbol["status"] == 400 and no_symbol["error"]["code"] == -1102
            forged = signed(creds, {})
            forged["signature"] = "0" * 64
            refused = await api.call("account.status", forged)
            assert refused["status"] == 400 and refused["error"]["code"] == -1022
            stale = signed(creds, {"timestamp": now_ms() - 120_000})
            old = await api.call("account.status", stale)
            assert old["error"]["code"] == -1021
            no_permission = await api.call("order.place", signed(creds, _bid()))
            assert no_permission["status"] == 401
            assert no_permission["error"]["code"] == -2015
            once = signed(creds, {"symbol": "BTCUSDT"})
            assert (await api.call("openOrders.status", once))["status"] == 200
            still = await api.call("time")
            assert still["status"] == 200  # every mistake was answered; the connection lives

    run(main())


def test_a_trading_request_sent_twice_is_refused_as_a_replay(operator: Sandex, base: str) -> None:
    creds = _funded(operator, base, "replay")

    async def main() -> None:
        request = signed(creds, _bid())
        async with connect(_url(base)) as ws:
            api = Api(ws)
            first = await api.call("order.place", request)
            assert first["status"] == 200, first
            replayed = await api.call("order.place", request)
            assert replayed["status"] == 400 and replayed["error"]["code"] == -1021, replayed
            assert "replay" in replayed["error"]["msg"]
            listed = await api.call("openOrders.status", signed(creds, {"symbol": "BTCUSDT"}))
            assert len(listed["result"]) == 1  # placed once

    run(main())


def test_a_key_with_an_allowlist_refuses_other_addresses(operator: Sandex, base: str) -> None:
    creds = _key(operator, "allowlist", permissions=Permission.READ, ips=("127.0.0.2",))

    async def main() -> None:
        async with connect(_url(base)) as ws:  # from 127.0.0.1
            refused = await Api(ws).call("account.status", signed(creds, {}))
            assert refused["error"]["code"] == -2015, refused
        async with connect(_url(base), local_addr=("127.0.0.2", 0)) as ws:
            allowed = await Api(ws).call("account.status", signed(creds, {}))
            assert allowed["status"] == 200, allowed

    run(main())


# -- the user data stream -------------------------------------------------------------------


def _of(kind: str, **fields: Any) -> Any:
    def wanted(message: dict[str, Any]) -> bool:
        event = message["event"]
        return event.get("e") == kind and all(event.get(k) == v for k, v in fields.items())

    return wanted


def test_orders_and_balances_stream_to_the_subscription(operator: Sandex, base: str) -> None:
    creds = _funded(operator, base, "stream")

    async def main() -> None:
        async with connect(_url(base)) as listener, connect(_url(base)) as trader:
            stream, api = Api(listener), Api(trader)
            subscribed = await stream.call("userDataStream.subscribe.signature", signed(creds, {}))
            assert subscribed["status"] == 200, subscribed
            sub = subscribed["result"]["subscriptionId"]
            assert sub == 0
            twice = await stream.call("userDataStream.subscribe.signature", signed(creds, {}))
            assert twice["error"]["code"] == -2035
            listed = await stream.call("session.subscriptions")
            assert listed["result"] == [{"subscriptionId": 0}]

            cid = f"ud-{next(_ids)}"
            placed = await api.call("order.place", signed(creds, _bid(newClientOrderId=cid)))
            assert placed["status"] == 200, placed
            new = await stream.event(_of("executionReport", c=cid, x="NEW"))
            assert new["subscriptionId"] == sub
            report = new["event"]
            assert report["s"] == "BTCUSDT" and report["S"] == "BUY" and report["X"] == "NEW"
            assert report["i"] == placed["result"]["orderId"]
            assert report["q"] == "0.01000000" and report["p"] == "30000.00000000"
            position = await stream.event(_of("outboundAccountPosition"))
            usdt = {b["a"]: b for b in position["event"]["B"]}["USDT"]
            assert Decimal(usdt["l"]) >= Decimal("300")  # 0.01 * 30000 held by the bid

            await api.call(
                "order.cancel", signed(creds, {"symbol": "BTCUSDT", "origClientOrderId": cid})
            )
            canceled = await stream.event(_of("executionReport", x="CANCELED"))
            assert canceled["event"]["X"] == "CANCELED"
            assert cid in (canceled["event"]["c"], canceled["event"]["C"])

            bought = await api.call(
                "order.place",
                signed(
                    creds,
                    {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"},
                ),
            )
            assert bought["result"]["status"] == "FILLED", bought
            trade = await stream.event(_of("executionReport", x="TRADE"))
            fill = trade["event"]
            assert fill["i"] == bought["result"]["orderId"] and fill["X"] == "FILLED"
            assert fill["z"] == "0.00100000" and fill["t"] >= 0 and fill["m"] is False
            assert Decimal(fill["n"]) > 0 and fill["N"] == "BTC"

            done = await stream.call("userDataStream.unsubscribe", {"subscriptionId": sub})
            assert done["status"] == 200 and done["result"] == {}
            await stream.event(_of("eventStreamTerminated"))
            status = await stream.call("session.status")
            assert status["result"]["userDataStream"] is False
            gone = await stream.call("userDataStream.unsubscribe", {"subscriptionId": sub})
            assert gone["status"] == 200 and gone["result"] == {}  # nothing left to close

    run(main())


@pytest.mark.parametrize("change", ["revoke", "freeze"])
def test_a_key_revoked_or_frozen_under_a_subscription_is_cut_off_within_a_second(
    operator: Sandex, base: str, change: str
) -> None:
    creds = _key(operator, f"cut-{change}", permissions=Permission.READ)

    async def main() -> None:
        async with connect(_url(base)) as ws:
            stream = Api(ws)
            subscribed = await stream.call("userDataStream.subscribe.signature", signed(creds, {}))
            assert subscribed["status"] == 200, subscribed
            started = time.monotonic()
            action = operator.keys.revoke if change == "revoke" else operator.keys.freeze
            await asyncio.to_thread(action, KeyById(creds.key_id), now=now_ms(), actor=OPERATOR)
            ended = await stream.event(_of("eventStreamTerminated"), timeout=5)
            elapsed = time.monotonic() - started
            assert ended["subscriptionId"] == subscribed["result"]["subscriptionId"]
            assert elapsed < 1.0, f"cut off after {elapsed:.2f} s"
            status = await stream.call("session.status")
            assert status["result"]["userDataStream"] is False
            again = await stream.call("userDataStream.subscribe.signature", signed(creds, {}))
            assert again["status"] >= 400

    run(main())


# -- several workers -------------------------------------------------------------------------


def test_every_worker_delivers_the_same_account_events(
    start_server: Launch, redis_namespace: str
) -> None:
    """With ``--workers 2`` each connection lands on either worker (the kernel decides):
    every subscription of the account gets the same events in the same order, whichever
    worker placed the orders."""
    env = server_env(SANDEX_REDIS_URL=REDIS_URL, SANDEX_REDIS_NAMESPACE=redis_namespace)
    server = start_server(env=env, workers=2)
    with server.open() as sx:
        creds = _funded(sx, server.base, "workers")

    async def main() -> list[list[tuple[str, int, str]]]:
        async with contextlib.AsyncExitStack() as stack:
            listeners = [
                Api(await stack.enter_async_context(connect(_url(server.base)))) for _ in range(6)
            ]
            for api in listeners:
                subscribed = await api.call("userDataStream.subscribe.signature", signed(creds, {}))
                assert subscribed["status"] == 200, subscribed
            placed = []
            for _ in range(3):  # each on a new connection, so both workers place some
                async with connect(_url(server.base)) as ws:
                    answer = await Api(ws).call("order.place", signed(creds, _bid()))
                    assert answer["status"] == 200, answer
                    placed.append(answer["result"]["orderId"])
            seen = []
            for api in listeners:
                reports = []
                for order_id in placed:
                    got = await api.event(_of("executionReport", i=order_id, x="NEW"))
                    reports.append(got["event"])
                seen.append([(r["x"], r["i"], r["I"]) for r in reports])
            return seen

    seen = asyncio.run(main())
    assert all(s == seen[0] for s in seen), seen
    assert_no_traceback(server.log)


# -- a session logged on with its key ----------------------------------------------------------


def test_a_session_logged_on_with_an_ed25519_key_needs_no_signatures(
    operator: Sandex, base: str
) -> None:
    creds = _funded(operator, base, "logon", kind=KeyKind.ED25519)
    hmac = _key(operator, "logon-hmac", permissions=TRADE)

    async def main() -> None:
        async with connect(_url(base, "?returnRateLimits=false")) as ws:
            api = Api(ws)
            refused = await api.call("session.logon", signed(hmac, {}))
            assert refused["status"] == 401 and refused["error"]["code"] == -1002, refused
            before = await api.call("order.place", {**_bid(), "timestamp": now_ms()})
            assert before["error"]["code"] == -2014  # no key, no session: refused

            logon = await api.call("session.logon", signed(creds, {}))
            assert logon["status"] == 200, logon
            assert logon["result"]["apiKey"] == creds.api_key
            assert logon["result"]["authorizedSince"] >= logon["result"]["connectedSince"]
            status = await api.call("session.status")
            assert status["result"]["apiKey"] == creds.api_key

            placed = await api.call("order.place", {**_bid(), "timestamp": now_ms()})
            assert placed["status"] == 200, placed
            untimed = await api.call("order.place", _bid())
            assert untimed["error"]["code"] == -1102  # timestamp is still mandatory
            stale = await api.call("order.place", {**_bid(), "timestamp": now_ms() - 60_000})
            assert stale["error"]["code"] == -1021

            subscribed = await api.call("userDataStream.subscribe")
            assert subscribed["status"] == 200, subscribed
            sub = subscribed["result"]["subscriptionId"]
            canceled = await api.call(
                "openOrders.cancelAll", {"symbol": "BTCUSDT", "timestamp": now_ms()}
            )
            assert canceled["status"] == 200, canceled
            report = await api.event(_of("executionReport", x="CANCELED"))
            assert report["subscriptionId"] == sub
            assert report["event"]["i"] == placed["result"]["orderId"]

            out = await api.call("session.logout")
            assert out["result"]["apiKey"] is None
            await api.event(_of("eventStreamTerminated"))
            after = await api.call("openOrders.status", {"timestamp": now_ms()})
            assert after["error"]["code"] == -2014

    run(main())


def test_a_logged_on_key_keeps_its_permissions_and_can_be_revoked(
    operator: Sandex, base: str
) -> None:
    creds = _key(operator, "logon-read", kind=KeyKind.ED25519, permissions=Permission.READ)

    async def main() -> None:
        async with connect(_url(base)) as ws:
            api = Api(ws)
            assert (await api.call("session.logon", signed(creds, {})))["status"] == 200
            trading = await api.call("order.place", {**_bid(), "timestamp": now_ms()})
            assert trading["status"] == 401 and trading["error"]["code"] == -2015
            reading = await api.call("account.status", {"timestamp": now_ms()})
            assert reading["status"] == 200
            await asyncio.to_thread(
                operator.keys.revoke, KeyById(creds.key_id), now=now_ms(), actor=OPERATOR
            )
            deadline = time.monotonic() + 2
            while True:  # the server hears of it within its key-watch interval
                answer = await api.call("account.status", {"timestamp": now_ms()})
                if answer["status"] != 200:
                    break
                assert time.monotonic() < deadline, "a revoked key's session still reads"
                await asyncio.sleep(0.05)
            assert answer["error"]["code"] == -2015

    run(main())


# -- the server stopping ----------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopping_server_tells_its_websocket_clients_before_it_closes(
    start_server: Launch, redis_namespace: str, workers: int
) -> None:
    """SIGTERM: every market-stream and WebSocket API connection gets Binance's
    ``serverShutdown`` event, then the close (1012, service restart)."""
    env = server_env(SANDEX_REDIS_URL=REDIS_URL, SANDEX_REDIS_NAMESPACE=redis_namespace)
    server = start_server(env=env, workers=workers)

    async def main() -> list[tuple[Any, int | None]]:
        async with contextlib.AsyncExitStack() as stack:
            stream = await stack.enter_async_context(
                connect(server.base.replace("http://", "ws://") + "/ws/btcusdt@depth@100ms")
            )
            api = await stack.enter_async_context(connect(_url(server.base)))
            answer = await Api(api).call("ping")
            assert answer["status"] == 200
            await asyncio.sleep(0.3)
            os.killpg(server.proc.pid, signal.SIGTERM)
            told = []
            for ws in (stream, api):
                notice = None
                while True:  # depth diffs may come first; then the notice, then the close
                    try:
                        message = orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
                    except ConnectionClosed as exc:
                        code = exc.rcvd.code if exc.rcvd is not None else None
                        told.append((notice, code))
                        break
                    if "serverShutdown" in str(message):
                        notice = message
            return told

    (stream_notice, stream_code), (api_notice, api_code) = asyncio.run(main())
    assert stream_notice is not None and stream_notice["e"] == "serverShutdown"
    assert abs(stream_notice["E"] - now_ms()) < 10_000
    assert api_notice is not None and api_notice["event"]["e"] == "serverShutdown"
    assert stream_code == api_code == 1012
    assert server.proc.wait(timeout=15) in (0, -signal.SIGTERM)
    assert_no_traceback(server.log)

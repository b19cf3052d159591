"""Market streams over WebSocket on a real ``sandex serve``: every path form with live
data, Binance's connection rules as the served instance applies them, and unmodified
clients (python-binance's ``BinanceSocketManager``, ccxt.pro's ``watch_*``) reading the
streams while orders trade over REST.

One server (SQLite) serves the module; the simulated market makers quote BTCUSDT around
60000 and requote every 500 ms. Trades come from a trader of the module's own, buying
and selling small market orders. The server's log must hold no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from e2e.clients import new_key, spot_ccxt_client, wait_for_balance
from e2e.conftest import Launch, Server, assert_no_traceback, server_env
from sandex.bootstrap import Sandex
from sandex.cli.recipes import DEFAULT_ADDRESS, SANDEX_URLS
from sandex.http.websocket import MAX_MESSAGE_BYTES
from sandex.keys import Permission
from support import REDIS_URL
from ws_support import mute_client, server_frames

with warnings.catch_warnings():
    # python-binance 1.0.37 imports a name websockets deprecated (see e2e.clients)
    warnings.filterwarnings(
        "ignore", message=r"websockets\..* is deprecated", category=DeprecationWarning
    )
    from binance import AsyncClient, BinanceSocketManager

TRADE = Permission.READ | Permission.SPOT_TRADE
WAIT_S = 10.0

pytestmark = pytest.mark.usefixtures("server_alive")


@pytest.fixture(scope="module", autouse=True)
def _no_traceback_in_the_log(sqlite_server: Server) -> Iterator[None]:
    yield
    assert_no_traceback(sqlite_server.log)


def _ws(base: str) -> str:
    return base.replace("http://", "ws://", 1)


async def _json(ws: ClientConnection, timeout: float = WAIT_S) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _until(ws: ClientConnection, wanted: Any, timeout: float = WAIT_S) -> Any:
    """The first message for which ``wanted(message)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        message = await _json(ws, max(0.1, deadline - time.monotonic()))
        if wanted(message):
            return message


@contextlib.contextmanager
def _trading(operator: Sandex, base: str, name: str) -> Iterator[list[str]]:
    """A trader buying and selling 0.001 BTC at market, every 0.3 s, until the block
    ends (in a thread); yields the ids of its trades' orders as they fill."""
    creds = new_key(operator, f"e2e-ws-{name}@example.com", label=name, permissions=TRADE)
    ex = spot_ccxt_client(base, creds)
    ex.load_markets()
    wait_for_balance(ex, "USDT", Decimal(10_000))
    stop = threading.Event()
    filled: list[str] = []
    failures: list[BaseException] = []

    def trade() -> None:
        side = "buy"
        while not stop.is_set():
            try:
                amount = 0.001 if side == "buy" else 0.0009  # the fee came out of the buy
                order = ex.create_order("BTC/USDT", "market", side, amount)
                filled.append(str(order["id"]))
            except BaseException as exc:
                failures.append(exc)
                return
            side = "sell" if side == "buy" else "buy"
            stop.wait(0.3)

    thread = threading.Thread(target=trade, name=f"trader-{name}", daemon=True)
    thread.start()
    try:
        yield filled
    finally:
        stop.set()
        thread.join(10)
    assert not failures, failures
    assert filled


# -- path forms -------------------------------------------------------------------------


def test_a_stream_in_the_path_sends_raw_book_tickers(base: str) -> None:
    async def main() -> None:
        async with connect(_ws(base) + "/ws/btcusdt@bookTicker") as ws:
            ticker = await _json(ws)
            assert set(ticker) == {"u", "s", "b", "B", "a", "A"}
            assert ticker["s"] == "BTCUSDT" and Decimal(ticker["b"]) < Decimal(ticker["a"])

    asyncio.run(main())


def test_combined_streams_wrap_each_payload(base: str) -> None:
    async def main() -> None:
        url = _ws(base) + "/stream?streams=btcusdt@depth@100ms/btcusdt@kline_1m"
        async with connect(url) as ws:
            seen: dict[str, Any] = {}
            while len(seen) < 2:
                message = await _json(ws)
                assert set(message) == {"stream", "data"}
                seen[message["stream"]] = message["data"]
            assert set(seen) == {"btcusdt@depth@100ms", "btcusdt@kline_1m"}
            assert seen["btcusdt@depth@100ms"]["e"] == "depthUpdate"
            assert seen["btcusdt@kline_1m"]["k"]["i"] == "1m"

    asyncio.run(main())


@pytest.mark.parametrize("path", ["/ws", "/ws/0", "/stream/ws", "/stream/ws/3"])
def test_subscribe_on_a_bare_path_then_raw_payloads(base: str, path: str) -> None:
    async def main() -> None:
        async with connect(_ws(base) + path) as ws:
            await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@miniTicker"],"id":1}')
            assert await _until(ws, lambda m: "id" in m) == {"result": None, "id": 1}
            ticker = await _until(ws, lambda m: m.get("e") == "24hrMiniTicker")
            assert ticker["s"] == "BTCUSDT"
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":"two"}')
            reply = await _until(ws, lambda m: "id" in m)
            assert reply == {"result": ["btcusdt@miniTicker"], "id": "two"}
            await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@nothing"],"id":3}')
            assert await _until(ws, lambda m: "id" in m) == {
                "error": {"code": 2, "msg": "Invalid request: invalid stream"},
                "id": 3,
            }
            await ws.send("{oops")
            reply = await _until(ws, lambda m: "error" in m)
            assert reply["error"]["code"] == 3 and reply["id"] is None

    asyncio.run(main())


def test_an_unknown_path_is_refused_with_404(base: str) -> None:
    async def main() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(_ws(base) + "/nowhere"):
                pass
        assert refused.value.response.status_code == 404

    asyncio.run(main())


# -- connection rules on a served instance ---------------------------------------------


def test_binances_connection_rules_on_a_served_instance(start_server: Launch) -> None:
    env = server_env(
        SANDEX_WS_PING_INTERVAL="1",
        SANDEX_WS_PONG_TIMEOUT="1",
        SANDEX_TRUSTED_PROXIES="127.0.0.1",
        SANDEX_SIMULATE="0",
    )
    server = start_server(env=env)
    ws_base = _ws(server.base)

    received, waited = mute_client(server.port)  # never answers the pings: dropped
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    frames = list(server_frames(rest))
    assert frames[0][0] == 0x9 and frames[-1][0] == 0x8
    assert struct.unpack("!H", frames[-1][1][:2])[0] == 1011
    assert 1.5 <= waited < 10

    async def main() -> None:
        async with connect(ws_base + "/ws") as answering:  # answers pings: stays
            await asyncio.sleep(3)
            await answering.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            assert await _json(answering) == {"result": [], "id": 1}

        async with connect(ws_base + "/ws") as chatty:  # 6 messages in a second: closed
            for i in range(6):
                await chatty.send(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await _json(chatty)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "Too many requests")

        async with connect(ws_base + "/stream/ws/0") as big:  # a frame over the cap
            await big.send('{"method":"SUBSCRIBE","params":["' + "x" * MAX_MESSAGE_BYTES + '"]}')
            with pytest.raises(ConnectionClosed) as closed:
                await _json(big)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

        # through the trusted proxy (127.0.0.1), each client has its own 300 attempts
        proxy = {"x-forwarded-for": "203.0.113.9"}
        for _ in range(300):
            async with connect(ws_base + "/ws", additional_headers=proxy):
                pass
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_base + "/ws", additional_headers=proxy):
                pass
        assert refused.value.response.status_code == 429
        body = orjson.loads(refused.value.response.body or b"")
        assert body["code"] == -1003 and "203.0.113.9" in body["msg"]
        other = {"x-forwarded-for": "203.0.113.10"}
        async with connect(ws_base + "/ws", additional_headers=other) as fine:
            await fine.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            assert await _json(fine) == {"result": [], "id": 1}

    asyncio.run(main())
    assert server.proc.poll() is None
    assert_no_traceback(server.log)


# -- unmodified clients ------------------------------------------------------------------


def test_python_binance_socket_manager_trade_kline_depth_and_multiplex(
    base: str, operator: Sandex
) -> None:
    async def main() -> None:
        client = AsyncClient(None, None)
        sandex_urls = _sandex_urls(base)  # the README's recipe: every *_URL moved to Sandex
        sockets = type(
            "SandexSockets",
            (BinanceSocketManager,),
            {
                name: sandex_urls(getattr(BinanceSocketManager, name))
                for name in dir(BinanceSocketManager)
                if name.endswith("_URL")
            },
        )
        assert sockets.STREAM_URL == _ws(base) + "/stream/"
        manager = sockets(client)
        try:
            trade = manager.trade_socket("BTCUSDT")
            kline = manager.kline_socket("BTCUSDT", AsyncClient.KLINE_INTERVAL_1MINUTE)
            depth = manager.depth_socket("BTCUSDT")  # diffs, every 1000 ms
            partial = manager.depth_socket("BTCUSDT", BinanceSocketManager.WEBSOCKET_DEPTH_5)
            multiplex = manager.multiplex_socket(["btcusdt@trade", "btcusdt@bookTicker"])
            async with trade as t, kline as k, depth as d, partial as p, multiplex as m:

                async def first(socket: Any, wanted: Any) -> dict[str, Any]:
                    deadline = time.monotonic() + 2 * WAIT_S
                    while True:
                        message = await asyncio.wait_for(
                            socket.recv(), max(0.1, deadline - time.monotonic())
                        )
                        assert message.get("e") != "error", message
                        if wanted(message):
                            return message  # type: ignore[no-any-return]

                with _trading(operator, base, "python-binance"):
                    got_trade = await first(t, lambda m: m.get("e") == "trade")
                    got_kline = await first(k, lambda m: m.get("e") == "kline")
                    got_depth = await first(d, lambda m: m.get("e") == "depthUpdate")
                    got_partial = await first(p, lambda m: "lastUpdateId" in m)
                    got_multi = {
                        (await first(m, lambda _: True))["stream"],
                        (await first(m, lambda x: x["stream"] == "btcusdt@trade"))["stream"],
                    }
            assert got_trade["s"] == "BTCUSDT" and Decimal(got_trade["q"]) > 0
            assert got_kline["k"]["i"] == "1m" and got_kline["s"] == "BTCUSDT"
            assert got_depth["U"] <= got_depth["u"]
            assert 0 < len(got_partial["bids"]) <= 5 and 0 < len(got_partial["asks"]) <= 5
            assert "btcusdt@trade" in got_multi
        finally:
            await client.close_connection()

    asyncio.run(main())


def _sandex_urls(base: str) -> Any:
    """The README's ``sandex_urls`` for the server at ``base``."""
    namespace: dict[str, Any] = {}
    exec(SANDEX_URLS.replace(DEFAULT_ADDRESS, base.removeprefix("http://")), namespace)  # noqa: S102
    return namespace["sandex_urls"]


def _ccxt_pro(base: str) -> Any:
    """ccxt.pro.binance as the README configures it: every URL moved to Sandex, the spot
    WebSocket's to ``/stream/ws`` (ccxt treats a connection as spot only if its URL holds
    ``/stream``; Binance's own spot URL has it in its host name)."""
    urls = _sandex_urls(base)(ccxt.pro.binance().urls)
    assert urls["api"]["ws"]["spot"] == urls["api"]["ws"]["margin"] == _ws(base) + "/stream/ws"
    return ccxt.pro.binance({"urls": urls})


def test_ccxt_pro_watches_book_trades_candles_and_ticker_while_orders_trade(
    base: str, operator: Sandex
) -> None:
    run_s = 12.0

    async def main() -> dict[str, Any]:
        ex = _ccxt_pro(base)
        seen: dict[str, Any] = {"books": 0, "nonces": [], "trades": 0, "candles": 0}
        try:
            await ex.load_markets()

            async def books() -> None:
                end = time.monotonic() + run_s
                while time.monotonic() < end:  # ChecksumError or a gap would raise here
                    book = await ex.watch_order_book("BTC/USDT")
                    assert book["bids"] and book["asks"]
                    assert book["bids"][0][0] < book["asks"][0][0]
                    seen["books"] += 1
                    seen["nonces"].append(book["nonce"])

            async def trades() -> None:
                end = time.monotonic() + run_s
                while time.monotonic() < end:
                    got = await ex.watch_trades("BTC/USDT")
                    seen["trades"] += len(got)
                    assert all(t["price"] > 0 and t["amount"] > 0 for t in got)

            async def candles() -> None:
                end = time.monotonic() + run_s
                while time.monotonic() < end:
                    got = await ex.watch_ohlcv("BTC/USDT", "1m")
                    seen["candles"] += len(got)
                    assert all(c[4] > 0 for c in got)

            async def ticker() -> None:
                got = await ex.watch_ticker("BTC/USDT")
                assert got["symbol"] == "BTC/USDT" and got["last"] > 0
                seen["ticker"] = got

            with _trading(operator, base, "ccxt-pro"):
                await asyncio.wait_for(
                    asyncio.gather(books(), trades(), candles(), ticker()), run_s + 30
                )
        finally:
            await ex.close()
        return seen

    seen = asyncio.run(main())
    assert seen["books"] > 10 and seen["trades"] > 0 and seen["candles"] > 0
    nonces = seen["nonces"]
    assert nonces == sorted(nonces)


# -- several workers ---------------------------------------------------------------------


def test_every_worker_serves_the_same_sequence(
    start_server: Launch, redis_namespace: str, tmp_path: Path
) -> None:
    """With ``--workers 2`` each connection lands on either worker (the kernel decides);
    every one sees the same trades in the same order and unbroken depth diffs."""
    env = server_env(SANDEX_REDIS_URL=REDIS_URL, SANDEX_REDIS_NAMESPACE=redis_namespace)
    server = start_server(env=env, workers=2)
    url = _ws(server.base) + "/stream?streams=btcusdt@trade/btcusdt@depth@100ms"

    async def watch(ws: ClientConnection, until: float) -> tuple[list[int], list[tuple[int, int]]]:
        trades: list[int] = []
        diffs: list[tuple[int, int]] = []
        while time.monotonic() < until:
            try:
                message = await _json(ws, max(0.05, until - time.monotonic()))
            except TimeoutError:
                break
            data = message["data"]
            if message["stream"] == "btcusdt@trade":
                trades.append(data["t"])
            else:
                diffs.append((data["U"], data["u"]))
        return trades, diffs

    async def main() -> list[tuple[list[int], list[tuple[int, int]]]]:
        async with contextlib.AsyncExitStack() as stack:
            sockets = [await stack.enter_async_context(connect(url)) for _ in range(6)]
            with server.open() as operator, _trading(operator, server.base, "workers"):
                until = time.monotonic() + 8
                return list(await asyncio.gather(*(watch(ws, until) for ws in sockets)))

    seen = asyncio.run(main())
    for trades, diffs in seen:
        assert trades and diffs
        assert trades == sorted(set(trades))
        for (_, last), (first, _) in itertools.pairwise(diffs):
            assert first == last + 1, diffs
    common = set.intersection(*(set(t) for t, _ in seen))
    assert common
    orders = [[t for t in trades if t in common] for trades, _ in seen]
    assert all(order == orders[0] for order in orders)
    assert_no_traceback(server.log)

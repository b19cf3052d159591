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
import logging
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
import httpx
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
    from binance import (
        AsyncClient,
        BinanceSocketManager,
        DepthCacheManager,
        ThreadedWebsocketManager,
    )

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
    """Two minutes of a moving market (issue #12): ccxt.pro's order-book gap check never
    fires, its trades, candles and ticker keep coming."""
    run_s = 120.0

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
    assert seen["books"] > 240 and seen["trades"] > 100 and seen["candles"] > 0
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


# -- more client calls: tickers, best bid/ask, the threaded manager, the depth cache ----
#
# The market moves all the time (the simulated makers requote every 500 ms and their
# takers trade), so a value from a stream is compared with REST read right after it
# arrived: it must equal it exactly in one of a few tries (a try counts only when no newer
# message came in during the REST read; a stream sending wrong or stale values never
# agrees).

TRIES = 10
ALL_SYMBOLS = {"BTC/USDT", "ETH/USDT", "SOL/USDT", "ETH/BTC"}


def _mini(ticker: dict[str, Any]) -> tuple[float, ...]:
    """A ccxt ticker's 24 h figures, as parsed by ccxt from a miniTicker."""
    keys = ("last", "open", "high", "low", "baseVolume", "quoteVolume")
    return tuple(float(ticker[k]) for k in keys)


def _rest_mini(ticker: dict[str, Any]) -> tuple[float, ...]:
    """The same figures of one ``GET /api/v3/ticker/24hr`` entry."""
    keys = ("lastPrice", "openPrice", "highPrice", "lowPrice", "volume", "quoteVolume")
    return tuple(float(ticker[k]) for k in keys)


def _bid_ask(ticker: dict[str, Any]) -> tuple[float, ...]:
    return tuple(float(ticker[k]) for k in ("bid", "bidVolume", "ask", "askVolume"))


def _rest_bid_ask(ticker: dict[str, Any]) -> tuple[float, ...]:
    return tuple(float(ticker[k]) for k in ("bidPrice", "bidQty", "askPrice", "askQty"))


async def _agrees_with_rest(
    next_message: Any, latest: Any, rest: Any, what: str, tries: int = TRIES
) -> Any:
    """Wait for a message (``next_message()``), then read REST (``rest()``); done when
    ``latest()`` (the client's view) did not change during the read and equals it. The
    agreed value; fails after ``tries`` tries, with the last disagreement (stream, REST)."""
    seen = []
    for _ in range(tries):
        await asyncio.wait_for(next_message(), WAIT_S)
        before = latest()
        from_rest = await rest()
        if latest() != before:
            continue  # a newer message came in meanwhile: it may be REST's
        if before == from_rest:
            return before
        seen.append((before, from_rest))
    last = repr(seen[-1])[:2000] if seen else "(the stream's view changed during every read)"
    pytest.fail(f"{what}: the stream never agreed with REST in {tries} tries; last: {last}")


def test_ccxt_pro_watch_tickers_all_and_some_agree_with_rest(base: str, operator: Sandex) -> None:
    """``watch_tickers()`` (``!miniTicker@arr``) and ``watch_tickers([a, b])`` (one
    ``@miniTicker`` each): ccxt parses every listed symbol, and the figures are REST's."""

    async def main() -> None:
        ex = _ccxt_pro(base)
        http = httpx.AsyncClient(base_url=base, trust_env=False, timeout=WAIT_S)
        try:
            await ex.load_markets()

            async def rest_tickers() -> dict[str, tuple[float, ...]]:
                got = (await http.get("/api/v3/ticker/24hr")).raise_for_status().json()
                return {ex.safe_symbol(t["symbol"]): _rest_mini(t) for t in got}

            # all symbols: each message holds those that changed in its second (the
            # first, on a stream nobody listened to, every one); the makers' takers
            # trade every symbol within a few seconds
            deadline = time.monotonic() + WAIT_S
            while set(ex.tickers) != ALL_SYMBOLS:
                assert time.monotonic() < deadline, sorted(ex.tickers)
                got = await asyncio.wait_for(ex.watch_tickers(), WAIT_S)
                assert got and set(got) <= ALL_SYMBOLS
            for symbol, ticker in ex.tickers.items():
                assert ticker["symbol"] == symbol and ticker["info"]["e"] == "24hrMiniTicker"
                assert ticker["last"] > 0 and ticker["baseVolume"] > 0
                assert ticker["low"] <= ticker["last"] <= ticker["high"]

            def every_ticker() -> dict[str, tuple[float, ...]]:
                return {s: _mini(ex.tickers[s]) for s in ALL_SYMBOLS}

            with _trading(operator, base, "ccxt-pro-tickers"):
                await _agrees_with_rest(
                    ex.watch_tickers, every_ticker, rest_tickers, "!miniTicker@arr"
                )

                # two symbols, one @miniTicker stream each. ccxt resolves a call with
                # the first of them to arrive (the other, a moment later, only updates
                # ex.tickers), so what arrives is told by each ticker's event time.
                pair = ["BTC/USDT", "ETH/BTC"]
                subscribed = int(time.time() * 1000)
                got = await asyncio.wait_for(ex.watch_tickers(pair), WAIT_S)
                assert got and set(got) <= set(pair)

                def event_time(symbol: str) -> int:
                    return int(ex.tickers[symbol]["info"]["E"])

                async def fresh(symbol: str, after: int) -> None:
                    """Until a miniTicker of ``symbol`` sent after ``after`` is in."""
                    while event_time(symbol) <= after:
                        await asyncio.sleep(0.01)

                for symbol in pair:
                    await asyncio.wait_for(fresh(symbol, subscribed - 1000), WAIT_S)
                    ticker = ex.tickers[symbol]
                    assert ticker["info"]["e"] == "24hrMiniTicker"
                    assert ticker["info"]["s"] == ex.market_id(symbol)

                    async def next_one(symbol: str = symbol) -> None:
                        await fresh(symbol, event_time(symbol))

                    async def one(symbol: str = symbol) -> tuple[float, ...]:
                        params = {"symbol": ex.market_id(symbol)}
                        got = await http.get("/api/v3/ticker/24hr", params=params)
                        return _rest_mini(got.raise_for_status().json())

                    def latest(symbol: str = symbol) -> tuple[float, ...]:
                        return _mini(ex.tickers[symbol])

                    await _agrees_with_rest(next_one, latest, one, symbol)
                # the trader's orders move BTC: its figures change on the stream
                before = _mini(ex.tickers["BTC/USDT"])
                for _ in range(20):
                    await asyncio.wait_for(fresh("BTC/USDT", event_time("BTC/USDT")), WAIT_S)
                    if _mini(ex.tickers["BTC/USDT"]) != before:
                        break
                assert _mini(ex.tickers["BTC/USDT"]) != before
        finally:
            await ex.close()
            await http.aclose()

    asyncio.run(main())


def test_ccxt_pro_watch_bids_asks_is_the_book_ticker_of_rest(base: str, operator: Sandex) -> None:
    """``watch_bids_asks([symbol])`` (``@bookTicker``): bid below ask, both (and their
    quantities) those of ``GET /api/v3/ticker/bookTicker`` and of the book's best levels."""

    async def main() -> None:
        ex = _ccxt_pro(base)
        http = httpx.AsyncClient(base_url=base, trust_env=False, timeout=WAIT_S)
        try:
            await ex.load_markets()
            symbol = "BTC/USDT"

            async def watch() -> None:
                got = await ex.watch_bids_asks([symbol])
                assert set(got) == {symbol}
                ticker = got[symbol]
                assert ticker["symbol"] == symbol and set(ticker["info"]) == {
                    "u", "s", "b", "B", "a", "A"
                }  # fmt: skip
                assert 0 < ticker["bid"] < ticker["ask"]
                assert ticker["bidVolume"] > 0 and ticker["askVolume"] > 0

            def latest() -> tuple[float, ...]:
                return _bid_ask(ex.bidsasks[symbol])

            async def book_ticker() -> tuple[float, ...]:
                got = await http.get("/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"})
                return _rest_bid_ask(got.raise_for_status().json())

            async def best_levels() -> tuple[float, ...]:
                got = await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 1})
                book = got.raise_for_status().json()
                (bid,), (ask,) = book["bids"], book["asks"]
                return tuple(float(x) for x in (*bid, *ask))

            with _trading(operator, base, "ccxt-pro-bids-asks"):
                first = await _agrees_with_rest(watch, latest, book_ticker, "bookTicker")
                second = await _agrees_with_rest(watch, latest, best_levels, "best levels")
                # the update ids grow with the book
                u = ex.bidsasks[symbol]["info"]["u"]
                await asyncio.wait_for(watch(), WAIT_S)
                assert ex.bidsasks[symbol]["info"]["u"] > u
            assert first[0] < first[2] and second[0] < second[2]
        finally:
            await ex.close()
            await http.aclose()

    asyncio.run(main())


def test_python_binance_threaded_manager_trade_and_kline_sockets(
    base: str,
    operator: Sandex,
    sqlite_server: Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``ThreadedWebsocketManager`` makes its own ``AsyncClient`` and socket manager, so
    their classes' URLs are moved (as the reference says); its callbacks get the trades
    REST lists and the current candle, and ``stop()`` ends its thread cleanly."""
    sandex_urls = _sandex_urls(base)
    for cls in (AsyncClient, BinanceSocketManager):
        for name in dir(cls):
            if name.endswith("_URL"):
                monkeypatch.setattr(cls, name, sandex_urls(getattr(cls, name)))
    caplog.set_level(logging.INFO, logger="binance")
    messages: list[dict[str, Any]] = []
    arrived = threading.Condition()

    def callback(message: dict[str, Any]) -> None:
        with arrived:
            messages.append(message)
            arrived.notify_all()

    def first(wanted: Any) -> dict[str, Any]:
        with arrived:
            assert arrived.wait_for(lambda: any(wanted(m) for m in messages), 2 * WAIT_S), messages[
                -5:
            ]
            return next(m for m in messages if wanted(m))

    twm = ThreadedWebsocketManager()
    twm.start()
    try:
        with _trading(operator, base, "threaded") as filled:
            trade_socket = twm.start_trade_socket(callback=callback, symbol="BTCUSDT")
            kline_socket = twm.start_kline_socket(
                callback=callback, symbol="BTCUSDT", interval=AsyncClient.KLINE_INTERVAL_1MINUTE
            )
            assert (trade_socket, kline_socket) == ("btcusdt@trade", "btcusdt@kline_1m")
            trade = first(lambda m: m.get("e") == "trade")
            kline = first(lambda m: m.get("e") == "kline")
            with arrived:  # a few more trades, to see their ids grow
                assert arrived.wait_for(
                    lambda: sum(m.get("e") == "trade" for m in messages) >= 3, 2 * WAIT_S
                )
            assert filled
        twm.stop()
        twm.join(10)
        assert not twm.is_alive()
    finally:
        twm.stop()
    assert not any(m.get("e") == "error" for m in messages), [
        m for m in messages if m.get("e") == "error"
    ]
    trade_ids = [m["t"] for m in messages if m.get("e") == "trade"]
    assert trade_ids == sorted(set(trade_ids))
    # the trade is one of REST's, the candle REST's candle of its minute
    recent = httpx.get(
        base + "/api/v3/trades", params={"symbol": "BTCUSDT", "limit": 1000}, trust_env=False
    ).json()
    listed = {t["id"]: t for t in recent}
    assert trade["t"] in listed
    assert (trade["p"], trade["q"], trade["T"]) == (
        listed[trade["t"]]["price"],
        listed[trade["t"]]["qty"],
        listed[trade["t"]]["time"],
    )
    k = kline["k"]
    assert (kline["s"], k["s"], k["i"]) == ("BTCUSDT", "BTCUSDT", "1m")
    assert k["T"] == k["t"] + 60_000 - 1
    candles = httpx.get(
        base + "/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "startTime": k["t"], "limit": 1},
        trust_env=False,
    ).json()
    assert candles[0][0] == k["t"] and candles[0][1] == k["o"]  # its open never changes
    assert Decimal(k["l"]) <= min(Decimal(k["o"]), Decimal(k["c"]))
    assert max(Decimal(k["o"]), Decimal(k["c"])) <= Decimal(k["h"])
    assert Decimal(candles[0][5]) >= Decimal(k["v"])  # the candle only grows
    leftover = [t for t in threading.enumerate() if t is twm or t.name.startswith("trader-")]
    assert not leftover
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not errors, [r.getMessage() for r in errors]
    assert_no_traceback(sqlite_server.log)


def test_python_binance_depth_cache_is_the_rest_book(base: str) -> None:
    """``DepthCacheManager`` (a REST snapshot, then ``@depth@100ms`` diffs by Binance's
    rules) keeps the whole book: after a few diffs of the makers' requotes its levels
    are REST's depth, every price and quantity."""

    async def main() -> None:
        client = AsyncClient(None, None)
        client.API_URL = base + "/api"
        sockets = type(
            "SandexSockets",
            (BinanceSocketManager,),
            {"STREAM_URL": _sandex_urls(base)(BinanceSocketManager.STREAM_URL)},
        )
        http = httpx.AsyncClient(base_url=base, trust_env=False, timeout=WAIT_S)
        try:
            manager = DepthCacheManager(
                client, "BTCUSDT", bm=sockets(client), conv_type=Decimal, ws_interval=100
            )
            async with manager as dcm:
                for _ in range(5):  # a few diffs applied (about two a second)
                    cache = await asyncio.wait_for(dcm.recv(), WAIT_S)
                    assert not isinstance(cache, dict), cache  # {"e": "error", ...}

                async def next_update() -> None:
                    cache = await dcm.recv()
                    assert not isinstance(cache, dict), cache

                def levels() -> tuple[list[list[Decimal]], list[list[Decimal]]]:
                    cache = dcm.get_depth_cache()
                    return cache.get_bids(), cache.get_asks()

                async def rest_levels() -> tuple[list[list[Decimal]], list[list[Decimal]]]:
                    got = await http.get(
                        "/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000}
                    )
                    book = got.raise_for_status().json()
                    return tuple(  # type: ignore[return-value]
                        [[Decimal(p), Decimal(q)] for p, q in book[side]]
                        for side in ("bids", "asks")
                    )

                bids, asks = await _agrees_with_rest(
                    next_update, levels, rest_levels, "depth cache"
                )
                assert bids[0][0] < asks[0][0]
                assert len(bids) >= 10 and len(asks) >= 10
        finally:
            await http.aclose()
            await client.close_connection()

    asyncio.run(main())

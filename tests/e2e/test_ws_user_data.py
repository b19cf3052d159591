"""The user data stream and WebSocket trading through unmodified clients on a real
``sandex serve``: ccxt.pro (``watch_balance``, ``watch_orders``, ``watch_my_trades``, the
``*_ws`` order calls; HMAC and Ed25519 keys) with every URL moved by the README's
``sandex_urls``, and python-binance (``BinanceSocketManager.user_socket``,
``ThreadedWebsocketManager.start_user_socket``, ``AsyncClient.ws_*`` order calls) with its
client classes' URLs moved, as the README says.

Both clients subscribe with ``userDataStream.subscribe.signature`` on ``/ws-api/v3``.
Orders are placed over REST by a plain ccxt client with the same key, and what the
streams say is compared with what REST says. One server (SQLite) serves the module; the
simulated makers quote BTCUSDT around 60000, so a bid at 30000 rests and a market order
fills. The server's log must hold no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.pro
import pytest

from e2e.clients import Credentials, new_key, spot_ccxt_client, wait_for_balance
from e2e.conftest import Server, assert_no_traceback
from sandex.bootstrap import Sandex
from sandex.cli.recipes import DEFAULT_ADDRESS, SANDEX_URLS
from sandex.keys import KeyKind, Permission

with warnings.catch_warnings():
    # python-binance 1.0.37 imports a name websockets deprecated (see e2e.clients)
    warnings.filterwarnings(
        "ignore", message=r"websockets\..* is deprecated", category=DeprecationWarning
    )
    from binance import AsyncClient, BinanceSocketManager, ThreadedWebsocketManager

TRADE = Permission.READ | Permission.SPOT_TRADE
WAIT_S = 10.0
SYMBOL = "BTC/USDT"
START_USDT = Decimal(10_000)
_names = itertools.count(1)

pytestmark = pytest.mark.usefixtures("server_alive")


@pytest.fixture(scope="module", autouse=True)
def _no_traceback_in_the_log(sqlite_server: Server) -> Iterator[None]:
    yield
    assert_no_traceback(sqlite_server.log)


def _ws(base: str) -> str:
    return base.replace("http://", "ws://", 1)


def _sandex_urls(base: str) -> Any:
    """The README's ``sandex_urls`` for the server at ``base``."""
    namespace: dict[str, Any] = {}
    exec(SANDEX_URLS.replace(DEFAULT_ADDRESS, base.removeprefix("http://")), namespace)  # noqa: S102
    return namespace["sandex_urls"]


def _funded(
    operator: Sandex, base: str, name: str, kind: KeyKind = KeyKind.HMAC_SHA256
) -> tuple[Credentials, ccxt.binance]:
    """A trading key whose user has received the starting balance, and a plain ccxt
    client (REST) with it, markets loaded."""
    email = f"e2e-wsud-{name}-{next(_names)}@example.com"
    creds = new_key(operator, email, label=name, kind=kind, permissions=TRADE)
    rest = spot_ccxt_client(base, creds)
    rest.load_markets()
    wait_for_balance(rest, "USDT", START_USDT)
    return creds, rest


def _pro(base: str, creds: Credentials) -> Any:
    """ccxt.pro.binance as the README configures ccxt: the key, and every URL moved to
    Sandex (the WebSocket API's too: ``urls['api']['ws']['ws-api']['spot']``)."""
    urls = _sandex_urls(base)(ccxt.pro.binance().urls)
    assert urls["api"]["ws"]["ws-api"]["spot"] == _ws(base) + "/ws-api/v3"
    return ccxt.pro.binance({"apiKey": creds.api_key, "secret": creds.signing_secret, "urls": urls})


async def _rest(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A blocking REST call off the event loop (the socket keeps being read meanwhile)."""
    return await asyncio.to_thread(call, *args, **kwargs)


class _Watching:
    """A ccxt.pro ``watch_*`` call run in a loop, as a ccxt.pro user runs it (an update
    that arrives while no call is waiting is not given to the next call), each result
    kept (a deep copy: ccxt updates its caches in place).

    ``start()`` returns once the server has confirmed the subscription, so that the
    events of what is done next reach it. ccxt offers no call that waits for that:
    ``authenticate()`` returns at once when a subscription is in flight, and alone (no
    ``watch_*`` running) it leaves the balance cache unset, so the first
    ``outboundAccountPosition`` stops ccxt 4.5.90's receive loop (``KeyError: 'spot'``
    in ``handle_balance``), on Binance as here. So ``start()`` reads ccxt's own
    bookkeeping: the subscription flag is up and its future settled."""

    def __init__(self, ex: Any, watch: Callable[[], Awaitable[Any]]) -> None:
        self._ex = ex
        self._watch = watch
        self._results: list[Any] = []
        self._used = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> _Watching:
        self._task = asyncio.create_task(self._run())
        client = self._ex.client(self._ex.urls["api"]["ws"]["ws-api"]["spot"])
        deadline = time.monotonic() + WAIT_S
        while "spot" not in client.subscriptions or "authenticate:signature:spot" in client.futures:
            if self._task.done():
                self._task.result()
            assert time.monotonic() < deadline, "the user data stream was not subscribed"
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            got = await self._watch()
            self._results.append(copy.deepcopy(got))
            self._changed.set()

    async def until(self, wanted: Callable[[Any], Any]) -> Any:
        """What ``wanted`` finds first in a result newer than the last one found."""
        assert self._task is not None
        deadline = time.monotonic() + WAIT_S
        while True:
            for i in range(self._used, len(self._results)):
                found = wanted(self._results[i])
                if found:
                    self._used = i + 1
                    return found
            if self._task.done():
                self._task.result()
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"nothing wanted within {WAIT_S} s in {self._results[-5:]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


def _order(order_id: str, status: str) -> Callable[[list[dict[str, Any]]], Any]:
    def wanted(orders: list[dict[str, Any]]) -> Any:
        return next((o for o in orders if o["id"] == order_id and o["status"] == status), None)

    return wanted


def _usdt(free: Decimal, used: Decimal) -> Callable[[dict[str, Any]], Any]:
    def wanted(balance: dict[str, Any]) -> Any:
        usdt = balance.get("USDT")
        if usdt is None:
            return None
        now = (Decimal(str(usdt["free"])), Decimal(str(usdt["used"])))
        return usdt if now == (free, used) else None

    return wanted


# -- ccxt.pro ----------------------------------------------------------------------------


def test_ccxt_pro_watch_balance_follows_an_order_resting_then_canceled(
    operator: Sandex, base: str
) -> None:
    creds, rest = _funded(operator, base, "balance")
    held = Decimal("0.01") * Decimal(30_000)

    async def main() -> None:
        ex = _pro(base, creds)
        watching = _Watching(ex, ex.watch_balance)
        try:
            await ex.load_markets()
            await watching.start()
            order = await _rest(rest.create_order, SYMBOL, "limit", "buy", 0.01, 30_000)
            usdt = await watching.until(_usdt(START_USDT - held, held))
            assert Decimal(str(usdt["total"])) == START_USDT
            await _rest(rest.cancel_order, order["id"], SYMBOL)
            usdt = await watching.until(_usdt(START_USDT, Decimal(0)))
            assert Decimal(str(usdt["total"])) == START_USDT
            assert ex.balance["spot"]["info"]["e"] == "outboundAccountPosition"
        finally:
            await watching.stop()
            await ex.close()

    asyncio.run(main())
    after = rest.fetch_balance()["USDT"]
    assert (after["free"], after["used"]) == (float(START_USDT), 0.0)


def test_ccxt_pro_watch_orders_sees_a_rest_order_rest_then_cancel(
    operator: Sandex, base: str
) -> None:
    creds, rest = _funded(operator, base, "orders")
    cid = f"pro-orders-{next(_names)}"

    async def main() -> None:
        ex = _pro(base, creds)
        watching = _Watching(ex, lambda: ex.watch_orders(SYMBOL))
        try:
            await ex.load_markets()
            await watching.start()
            placed = await _rest(
                rest.create_order,
                SYMBOL,
                "limit",
                "buy",
                0.01,
                30_000,
                {"newClientOrderId": cid},
            )
            assert placed["status"] == "open" and placed["clientOrderId"] == cid
            opened = await watching.until(_order(placed["id"], "open"))
            assert opened["clientOrderId"] == cid and opened["symbol"] == SYMBOL
            assert (opened["side"], opened["type"], opened["timeInForce"]) == (
                "buy",
                "limit",
                "GTC",
            )
            assert (opened["price"], opened["amount"], opened["filled"]) == (30_000, 0.01, 0)
            assert opened["remaining"] == 0.01
            await _rest(rest.cancel_order, placed["id"], SYMBOL)
            canceled = await watching.until(_order(placed["id"], "canceled"))
            assert canceled["clientOrderId"] == cid and canceled["filled"] == 0
            fetched = await _rest(rest.fetch_order, placed["id"], SYMBOL)
            assert fetched["status"] == "canceled"

            # a market order: filled, its cost and average price those REST states
            bought = await _rest(rest.create_order, SYMBOL, "market", "buy", 0.001)
            filled = await watching.until(_order(bought["id"], "closed"))
            over_rest = await _rest(rest.fetch_order, bought["id"], SYMBOL)
            assert (filled["type"], filled["side"]) == ("market", "buy")
            for field in ("clientOrderId", "amount", "filled", "remaining", "cost", "average"):
                assert filled[field] == over_rest[field], field
            assert filled["filled"] == 0.001 and filled["remaining"] == 0
        finally:
            await watching.stop()
            await ex.close()

    asyncio.run(main())


def test_ccxt_pro_watch_my_trades_sees_a_rest_market_order_fill(
    operator: Sandex, base: str
) -> None:
    creds, rest = _funded(operator, base, "trades")

    async def main() -> None:
        ex = _pro(base, creds)
        watching = _Watching(ex, lambda: ex.watch_my_trades(SYMBOL))
        try:
            await ex.load_markets()
            await watching.start()
            bought = await _rest(rest.create_order, SYMBOL, "market", "buy", 0.001)
            assert bought["status"] == "closed" and bought["filled"] == 0.001

            def mine(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [t for t in trades if t["order"] == bought["id"]]

            streamed: dict[str, dict[str, Any]] = {}

            def whole(trades: list[dict[str, Any]]) -> bool:
                streamed.update({t["id"]: t for t in mine(trades)})
                return sum(Decimal(str(t["amount"])) for t in streamed.values()) >= Decimal("0.001")

            await watching.until(whole)
            listed = mine(await _rest(rest.fetch_my_trades, SYMBOL))
            by_id = {t["id"]: t for t in listed}
            assert set(streamed) == set(by_id)
            for trade in streamed.values():
                assert trade["id"] in by_id, (trade["id"], list(by_id))
                fromrest = by_id[trade["id"]]
                assert trade["symbol"] == SYMBOL and trade["side"] == "buy"
                assert trade["takerOrMaker"] == "taker"
                for field in ("order", "price", "amount", "cost", "timestamp"):
                    assert trade[field] == fromrest[field], field
                assert trade["fee"]["currency"] == "BTC" == fromrest["fee"]["currency"]
                assert trade["fee"]["cost"] == fromrest["fee"]["cost"] > 0
        finally:
            await watching.stop()
            await ex.close()

    asyncio.run(main())


def test_ccxt_pro_orders_over_the_websocket_api(operator: Sandex, base: str) -> None:
    """``create_order_ws`` / ``fetch_order_ws`` / ``fetch_open_orders_ws`` /
    ``fetch_balance_ws`` / ``cancel_order_ws``: each as REST sees it."""
    creds, rest = _funded(operator, base, "ws-orders")

    async def main() -> None:
        ex = _pro(base, creds)
        try:
            await ex.load_markets()
            placed = await ex.create_order_ws(SYMBOL, "limit", "buy", 0.01, 30_000)
            assert placed["status"] == "open" and placed["symbol"] == SYMBOL
            assert (placed["price"], placed["amount"]) == (30_000, 0.01)
            over_rest = await _rest(rest.fetch_order, placed["id"], SYMBOL)
            assert over_rest["status"] == "open"
            assert over_rest["clientOrderId"] == placed["clientOrderId"]

            fetched = await ex.fetch_order_ws(placed["id"], SYMBOL)
            assert fetched["id"] == placed["id"] and fetched["status"] == "open"
            assert fetched["clientOrderId"] == placed["clientOrderId"]
            listed = await ex.fetch_open_orders_ws(SYMBOL)
            assert [o["id"] for o in listed] == [placed["id"]]
            # ccxt 4.5.90 parses account.status for futures here (parseBalanceCustom
            # without the type), so a spot account's rows are only in "info", as on Binance
            balance = await ex.fetch_balance_ws()
            rows = {b["asset"]: b for b in balance["info"]["balances"]}
            assert (rows["USDT"]["free"], rows["USDT"]["locked"]) == (
                "9700.00000000",
                "300.00000000",
            )
            over_rest = await _rest(rest.fetch_balance)
            assert rows["USDT"] == {b["asset"]: b for b in over_rest["info"]["balances"]}["USDT"]

            canceled = await ex.cancel_order_ws(placed["id"], SYMBOL)
            assert canceled["id"] == placed["id"] and canceled["status"] == "canceled"
            over_rest = await _rest(rest.fetch_order, placed["id"], SYMBOL)
            assert over_rest["status"] == "canceled"
            assert await ex.fetch_open_orders_ws(SYMBOL) == []
        finally:
            await ex.close()

    asyncio.run(main())


def test_ccxt_pro_with_an_ed25519_key_streams_and_trades(operator: Sandex, base: str) -> None:
    """ccxt signs with the PEM private key as its secret, for the subscription and for
    ``order.place`` / ``order.cancel``."""
    creds, rest = _funded(operator, base, "ed25519", kind=KeyKind.ED25519)

    async def main() -> None:
        ex = _pro(base, creds)
        watching = _Watching(ex, lambda: ex.watch_orders(SYMBOL))
        try:
            await ex.load_markets()
            await watching.start()
            placed = await ex.create_order_ws(SYMBOL, "limit", "buy", 0.01, 30_000)
            assert placed["status"] == "open"
            opened = await watching.until(_order(placed["id"], "open"))
            assert opened["clientOrderId"] == placed["clientOrderId"]
            assert (await _rest(rest.fetch_order, placed["id"], SYMBOL))["status"] == "open"
            canceled = await ex.cancel_order_ws(placed["id"], SYMBOL)
            assert canceled["status"] == "canceled"
            await watching.until(_order(placed["id"], "canceled"))
            assert (await _rest(rest.fetch_order, placed["id"], SYMBOL))["status"] == "canceled"
        finally:
            await watching.stop()
            await ex.close()

    asyncio.run(main())


# -- python-binance --------------------------------------------------------------------


def _binance_classes(base: str) -> tuple[type[AsyncClient], type[BinanceSocketManager]]:
    """AsyncClient and BinanceSocketManager subclasses with every ``*_URL`` moved to
    Sandex by the README's ``sandex_urls`` (``WS_API_URL`` included: the client builds
    its WebSocket API connection from it in ``__init__``)."""
    sandex_urls = _sandex_urls(base)

    def moved(cls: type) -> dict[str, str]:
        return {n: sandex_urls(getattr(cls, n)) for n in dir(cls) if n.endswith("_URL")}

    client = type("SandexAsyncClient", (AsyncClient,), moved(AsyncClient))
    sockets = type("SandexSockets", (BinanceSocketManager,), moved(BinanceSocketManager))
    assert client.WS_API_URL == _ws(base) + "/ws-api/v3"
    return client, sockets


def _bid_params(cid: str) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "quantity": "0.01",
        "price": "30000",
        "newClientOrderId": cid,
    }


def test_python_binance_user_socket_gets_execution_reports(operator: Sandex, base: str) -> None:
    """``user_socket()`` subscribes over the client's WebSocket API connection (python-binance
    routes an event to it only if the message has both ``subscriptionId`` and ``event``);
    it unsubscribes on exit. (``close_connection`` then takes up to 10 s: python-binance's
    read loop wakes only on a message or its 10 s timeout, on Binance too.)"""
    creds, rest = _funded(operator, base, "pb-user")
    cid = f"pb-user-{next(_names)}"

    async def main() -> None:
        client_class, sockets_class = _binance_classes(base)
        client = client_class(creds.api_key, creds.secret)
        try:
            manager = sockets_class(client)
            async with manager.user_socket() as socket:

                async def event(wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
                    deadline = time.monotonic() + WAIT_S
                    while True:
                        message: dict[str, Any] = await asyncio.wait_for(
                            socket.recv(), max(0.1, deadline - time.monotonic())
                        )
                        assert message.get("e") != "error", message
                        if wanted(message):
                            return message

                placed = await _rest(
                    rest.create_order,
                    SYMBOL,
                    "limit",
                    "buy",
                    0.01,
                    30_000,
                    {"newClientOrderId": cid},
                )
                new = await event(lambda m: m.get("e") == "executionReport" and m["c"] == cid)
                assert (new["x"], new["X"], new["s"], new["S"]) == ("NEW", "NEW", "BTCUSDT", "BUY")
                assert str(new["i"]) == placed["id"]
                assert (new["p"], new["q"]) == ("30000.00000000", "0.01000000")
                position = await event(lambda m: m.get("e") == "outboundAccountPosition")
                usdt = {b["a"]: b for b in position["B"]}["USDT"]
                assert (Decimal(usdt["f"]), Decimal(usdt["l"])) == (Decimal(9_700), Decimal(300))
                await _rest(rest.cancel_order, placed["id"], SYMBOL)
                gone = await event(
                    lambda m: m.get("e") == "executionReport" and m["x"] == "CANCELED"
                )
                assert str(gone["i"]) == placed["id"] and gone["X"] == "CANCELED"
        finally:
            await client.close_connection()

    asyncio.run(main())


def test_python_binance_threaded_manager_user_socket(
    operator: Sandex, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ThreadedWebsocketManager`` builds its own ``AsyncClient`` and socket manager, so
    the classes' own URLs are moved."""
    creds, rest = _funded(operator, base, "pb-threaded")
    cid = f"pb-threaded-{next(_names)}"
    sandex_urls = _sandex_urls(base)
    for cls in (AsyncClient, BinanceSocketManager):
        for name in dir(cls):
            if name.endswith("_URL"):
                monkeypatch.setattr(cls, name, sandex_urls(getattr(cls, name)))
    messages: list[dict[str, Any]] = []
    arrived = threading.Condition()

    def callback(message: dict[str, Any]) -> None:
        with arrived:
            messages.append(message)
            arrived.notify_all()

    def first(wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        with arrived:
            assert arrived.wait_for(lambda: any(wanted(m) for m in messages), WAIT_S), messages
            return next(m for m in messages if wanted(m))

    twm = ThreadedWebsocketManager(api_key=creds.api_key, api_secret=creds.secret)
    twm.start()
    try:
        # python-binance 1.0.37 names a socket by its path, which a user socket has only
        # once subscribed: start_user_socket returns None (on Binance too); stop_socket
        # takes that name all the same
        name = twm.start_user_socket(callback=callback)
        # the subscription is made in the manager's thread: place orders until one is seen
        placed: list[str] = []
        deadline = time.monotonic() + WAIT_S
        while True:
            order = rest.create_order(
                SYMBOL, "limit", "buy", 0.01, 30_000, {"newClientOrderId": f"{cid}-{len(placed)}"}
            )
            placed.append(order["id"])
            with arrived:
                if arrived.wait_for(
                    lambda: any(m.get("e") == "executionReport" for m in messages), 1.0
                ):
                    break
            assert time.monotonic() < deadline, f"no executionReport: {messages}"
        report = first(lambda m: m.get("e") == "executionReport")
        assert report["x"] == "NEW" and str(report["i"]) in placed
        assert report["c"].startswith(cid)
        for order_id in placed:
            rest.cancel_order(order_id, SYMBOL)
        for order_id in placed:
            first(
                lambda m, i=order_id: (
                    m.get("e") == "executionReport" and str(m["i"]) == i and m["X"] == "CANCELED"
                )
            )
        # the socket first: it unsubscribes on its own connection as it ends. (twm.stop()
        # alone closes the client first, and the socket's unsubscribe goes out on a new
        # connection, answered {} since that connection has no such subscription; the
        # client's close is then left pending in the manager's loop.)
        twm.stop_socket(name)
        deadline = time.monotonic() + WAIT_S
        while twm._socket_running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not twm._socket_running
        # twm.stop() gives the client's close 5 s, but the close waits for its WebSocket
        # API read loop, which wakes on a message or after 10 s: the thread ends with the
        # close still pending in its loop (the test's, python-binance takes the thread's
        # current loop), so it is run to its end here, or its tasks would be destroyed
        # pending when the loop is collected
        twm.stop()
        twm.join(2 * WAIT_S)
        assert not twm.is_alive()
        loop = twm._loop
        closing = [t for t in asyncio.all_tasks(loop) if "stop_client" in repr(t.get_coro())]
        loop.run_until_complete(asyncio.wait_for(asyncio.gather(*closing), 2 * WAIT_S))
        loop.run_until_complete(asyncio.sleep(0.2))  # the connection's own tasks end
        assert not asyncio.all_tasks(loop), asyncio.all_tasks(loop)
    finally:
        twm.stop()
    assert not [m for m in messages if m.get("e") == "error"], messages


def test_python_binance_orders_over_the_websocket_api(operator: Sandex, base: str) -> None:
    """``AsyncClient.ws_*`` (``order.place``, ``order.status``, ``openOrders.status``,
    ``order.cancel``), signed percent-encoded: each as REST sees it."""
    creds, rest = _funded(operator, base, "pb-ws-orders")
    cid = f"pb-ws-{next(_names)}"

    async def main() -> None:
        client_class, _ = _binance_classes(base)
        client = client_class(creds.api_key, creds.secret)
        try:
            placed = await client.ws_order_limit_buy(**_bid_params(cid))
            assert placed["clientOrderId"] == cid and placed["status"] == "NEW"
            over_rest = await _rest(rest.fetch_order, str(placed["orderId"]), SYMBOL)
            assert over_rest["status"] == "open" and over_rest["clientOrderId"] == cid
            status = await client.ws_get_order(symbol="BTCUSDT", origClientOrderId=cid)
            assert status["orderId"] == placed["orderId"] and status["status"] == "NEW"
            listed = await client.ws_get_open_orders(symbol="BTCUSDT")
            assert [o["orderId"] for o in listed] == [placed["orderId"]]
            canceled = await client.ws_cancel_order(symbol="BTCUSDT", orderId=placed["orderId"])
            assert canceled["status"] == "CANCELED"
            over_rest = await _rest(rest.fetch_order, str(placed["orderId"]), SYMBOL)
            assert over_rest["status"] == "canceled"

            bought = await client.ws_order_market_buy(symbol="BTCUSDT", quantity="0.001")
            assert bought["status"] == "FILLED" and bought["fills"]
            trades = await _rest(rest.fetch_my_trades, SYMBOL)
            assert {t["id"] for t in trades if t["order"] == str(bought["orderId"])} == {
                str(f["tradeId"]) for f in bought["fills"]
            }
        finally:
            await client.close_connection()

    asyncio.run(main())

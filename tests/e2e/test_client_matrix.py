"""The client matrix: six real, unmodified clients run their everyday spot calls against
one real ``sandex serve``, each with an HMAC key and an Ed25519 key.

The module runs twice, on a server with SQLite and on one with PostgreSQL.

The clients: ccxt (Python), ccxt (JavaScript, ``tests/e2e/js``, installed by ``make``
with ``npm ci``), python-binance's Client and AsyncClient, Binance's official
``binance-sdk-spot`` and ``binance-connector`` (in ``.venv-connector``, made by
``make``: it installs a package named ``binance``, as python-binance does). Each is
configured as a user would: the base URL moved to the server, every other option left
at its default (ccxt in both languages loads its currencies and margin pairs too).

The everyday calls: server time, exchange info, 24 h ticker, depth, klines, account
balances, a LIMIT buy 10 % under the bid, that order queried, the open orders, the
order canceled, a small MARKET buy, and the account's trades. Every client's results
are checked by one function (:func:`check_everyday`), so the six agree on what they see.

binance-sdk-spot also calls the routes bots use beyond those (commission, unfilled order
count, rolling and trading-day tickers, uiKlines, prevented matches, an OCO placed,
listed and canceled), and its models must parse every answer: the SDK logs a WARNING
when one does not match, which fails the test.

python-binance's AsyncClient also places 200 orders and sends ``get_order`` then
``cancel_order`` for each at once, as its users do: the two requests carry the same
parameters and, in one millisecond, the same signature, which must not be refused as a
replay. The module's server allows 1,000 new orders per 10 s (the default is 100), so
the order-rate limit does not stop the run.

Credentials reach the two subprocesses (node and the connector's Python) through their
environment only; their scripts print results, never a credential, and whatever they
print is masked again here before it can reach an assertion message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
import shutil
import subprocess
import time
import types
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from conftest import _postgres_problem, _unavailable
from e2e.clients import Credentials, binance_client, ccxt_client, new_key, now_ms
from e2e.conftest import Server, running, server_env
from sandex.bootstrap import Sandex
from sandex.keys import KeyKind, Permission
from sandex.keys.envelope import MasterKey
from sandex.storage import normalize_url
from support import PG_URL

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"websockets\..* is deprecated", category=DeprecationWarning
    )
    from binance.async_client import AsyncClient

from binance_sdk_spot.rest_api.models import (
    KlinesIntervalEnum,
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
)
from binance_sdk_spot.spot import ConfigurationRestAPI, Spot

E2E = Path(__file__).resolve().parent
REPO = E2E.parents[1]
CONNECTOR_PYTHON = REPO / ".venv-connector" / "bin" / "python"
CONNECTOR_SCRIPT = E2E / "connector" / "everyday.py"
JS_DIR = E2E / "js"
JS_SCRIPT = JS_DIR / "everyday.mjs"

TRADE = Permission.READ | Permission.SPOT_TRADE
SYMBOL = "BTCUSDT"
QTY = Decimal("0.001")
START_USDT = Decimal(10_000)
KINDS = [KeyKind.HMAC_SHA256, KeyKind.ED25519]
SUBPROCESS_TIMEOUT_S = 60.0
ROUND_TRIPS = 200

pytestmark = pytest.mark.usefixtures("server_alive")


@contextmanager
def _module_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for the module's server, dropped after it (the test is
    skipped without PostgreSQL, failed when CI is set)."""
    _unavailable(_postgres_problem())
    schema = f"sandex_matrix_{os.getpid()}_{secrets.token_hex(4)}"
    engine = create_engine(normalize_url(PG_URL))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def sqlite_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """This module's server (under the conftest's fixture name, so ``base``, ``operator``
    and ``server_alive`` use it): on SQLite, then on PostgreSQL, each time with room for
    1,000 new orders per 10 s."""
    tmp = tmp_path_factory.mktemp(f"sandex-matrix-{request.param}")
    env = server_env(SANDEX_ORDERS_10S="1000")
    with ExitStack() as stack:
        if request.param == "postgresql":
            env.update(
                SANDEX_DATABASE_URL=PG_URL,
                SANDEX_DATABASE_SCHEMA=stack.enter_context(_module_schema()),
                SANDEX_MASTER_KEY=MasterKey.generate().to_text(),
            )
        yield stack.enter_context(running(tmp / "data", tmp / "server.log", env=env))


def _key(operator: Sandex, client: str, kind: KeyKind) -> Credentials:
    """A new user's trading key of ``kind`` (each user starts with 10,000 USDT)."""
    name = f"{client}-{kind.name.lower().replace('_', '-')}"
    return new_key(
        operator, f"e2e-matrix-{name}@example.com", label=name, kind=kind, permissions=TRADE
    )


def _limit_price(bid: Any) -> Decimal:
    """10 % under ``bid``, on BTCUSDT's 0.01 tick: far from the market, never filled."""
    return (Decimal(str(bid)) * Decimal("0.9")).quantize(Decimal("0.01"))


def _wait_for_usdt(read: Any) -> str:
    """Poll ``read()`` (USDT free, as the client states it) until the 10,000 arrive."""
    deadline = time.monotonic() + 5.0
    while True:
        free = str(read())
        if Decimal(free) == START_USDT or time.monotonic() > deadline:
            return free
        time.sleep(0.1)


def check_everyday(out: dict[str, Any]) -> None:
    """What every client must have seen in its everyday calls."""
    assert "error" not in out, f"{out.get('step')} failed: {out['error']}"
    assert abs(int(out["server_time"]) - now_ms()) < 60_000, out
    assert out["btc_listed"] is True
    assert 1_000 < Decimal(str(out["last"])) < 1_000_000, out
    assert Decimal(str(out["bid"])) < Decimal(str(out["ask"])), out
    assert out["candles"] == 10, out
    assert Decimal(str(out["usdt_free"])) == START_USDT, out
    assert (out["limit_status"], out["queried_status"]) == ("NEW", "NEW"), out
    assert [str(i) for i in out["open_ids"]] == [str(out["limit_id"])], out
    assert out["cancel_status"] == "CANCELED", out
    assert out["market_status"] == "FILLED" and Decimal(str(out["market_filled"])) == QTY, out
    assert [str(i) for i in out["trade_order_ids"]] == [str(out["market_id"])], out


def _fragments(creds: Credentials) -> list[str]:
    """Every credential, and each line of a PEM's body, as it could appear in output."""
    out = []
    for value in (creds.api_key, creds.secret, creds.private_key_pem):
        if value:
            out.append(value)
            out += [line for line in value.splitlines() if len(line) > 16 and "KEY" not in line]
    return out


def _run_script(cmd: list[str], env: dict[str, str], creds: Credentials) -> dict[str, Any]:
    """Run a client script with ``env`` (the credentials) added to a clean environment;
    its JSON result. A script that printed any credential fails the test without showing
    it; what a failing script printed is masked before it can reach a message."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("SANDEX_")}
    full.update(env)
    proc = subprocess.run(
        cmd,
        env=full,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    stdout, stderr = proc.stdout, proc.stderr
    if any(f in stdout or f in stderr for f in _fragments(creds)):
        pytest.fail(f"{cmd[-1]} printed a credential (its output is not shown)")
    lines = stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        pytest.fail(f"{cmd[-1]} exited with {proc.returncode} and no result:\n{stderr[-3000:]}")
    if proc.returncode != 0 and "error" not in result:
        pytest.fail(f"{cmd[-1]} exited with {proc.returncode}:\n{stderr[-3000:]}")
    return result


def run_ccxt_js(base: str, creds: Credentials) -> dict[str, Any]:
    """ccxt (JavaScript) runs ``everyday.mjs`` with ``creds``; its results."""
    node = shutil.which("node")
    assert node is not None, "node is not on PATH"
    assert (JS_DIR / "node_modules" / "ccxt").is_dir(), "ccxt (JS) is not installed: make"
    env = {"SANDEX_BASE": base, "SANDEX_API_KEY": creds.api_key}
    env["SANDEX_SECRET"] = creds.signing_secret
    return _run_script([node, str(JS_SCRIPT)], env, creds)


def run_connector(base: str, creds: Credentials) -> dict[str, Any]:
    """binance-connector runs ``connector/everyday.py`` with ``creds``; its results."""
    assert CONNECTOR_PYTHON.exists(), "binance-connector's venv is missing: make"
    env = {"SANDEX_BASE": base, "SANDEX_API_KEY": creds.api_key}
    if creds.kind is KeyKind.HMAC_SHA256:
        env["SANDEX_API_SECRET"] = creds.signing_secret
    else:
        env["SANDEX_PRIVATE_KEY"] = creds.signing_secret
    return _run_script([str(CONNECTOR_PYTHON), str(CONNECTOR_SCRIPT)], env, creds)


# -- ccxt ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_ccxt_python(base: str, operator: Sandex, kind: KeyKind) -> None:
    creds = _key(operator, "ccxt-py", kind)
    ex = ccxt_client(base, creds, fetchCurrencies=True, fetchMargins=True)  # the defaults
    out: dict[str, Any] = {}
    out["server_time"] = ex.fetch_time()
    out["btc_listed"] = "BTC/USDT" in ex.load_markets()
    out["last"] = ex.fetch_ticker("BTC/USDT")["last"]
    book = ex.fetch_order_book("BTC/USDT", 5)
    out["bid"], out["ask"] = book["bids"][0][0], book["asks"][0][0]
    out["candles"] = len(ex.fetch_ohlcv("BTC/USDT", "1m", limit=10))
    out["usdt_free"] = _wait_for_usdt(lambda: ex.fetch_balance()["free"].get("USDT", 0))
    price = ex.price_to_precision("BTC/USDT", _limit_price(out["bid"]))
    limit = ex.create_order("BTC/USDT", "limit", "buy", float(QTY), price)
    out["limit_id"], out["limit_status"] = limit["id"], limit["info"]["status"]
    out["queried_status"] = ex.fetch_order(limit["id"], "BTC/USDT")["info"]["status"]
    out["open_ids"] = [o["id"] for o in ex.fetch_open_orders("BTC/USDT")]
    out["cancel_status"] = ex.cancel_order(limit["id"], "BTC/USDT")["info"]["status"]
    market = ex.create_order("BTC/USDT", "market", "buy", float(QTY))
    out["market_id"], out["market_status"] = market["id"], market["info"]["status"]
    out["market_filled"] = market["filled"]
    out["trade_order_ids"] = sorted({t["order"] for t in ex.fetch_my_trades("BTC/USDT")})
    check_everyday(out)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_ccxt_js(base: str, operator: Sandex, kind: KeyKind) -> None:
    check_everyday(run_ccxt_js(base, _key(operator, "ccxt-js", kind)))


# -- python-binance --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_python_binance_client(base: str, operator: Sandex, kind: KeyKind) -> None:
    creds = _key(operator, "pb-sync", kind)
    client = binance_client(base, creds)
    out: dict[str, Any] = {}
    out["server_time"] = client.get_server_time()["serverTime"]
    out["btc_listed"] = client.get_symbol_info(SYMBOL) is not None
    out["last"] = client.get_ticker(symbol=SYMBOL)["lastPrice"]
    book = client.get_order_book(symbol=SYMBOL, limit=5)
    out["bid"], out["ask"] = book["bids"][0][0], book["asks"][0][0]
    out["candles"] = len(client.get_klines(symbol=SYMBOL, interval="1m", limit=10))
    out["usdt_free"] = _wait_for_usdt(
        lambda: (client.get_asset_balance("USDT") or {}).get("free", "0")
    )
    price = str(_limit_price(out["bid"]))
    limit = client.order_limit_buy(symbol=SYMBOL, quantity=str(QTY), price=price)
    out["limit_id"], out["limit_status"] = limit["orderId"], limit["status"]
    out["queried_status"] = client.get_order(symbol=SYMBOL, orderId=limit["orderId"])["status"]
    out["open_ids"] = [o["orderId"] for o in client.get_open_orders(symbol=SYMBOL)]
    canceled = client.cancel_order(symbol=SYMBOL, orderId=limit["orderId"])
    out["cancel_status"] = canceled["status"]
    market = client.order_market_buy(symbol=SYMBOL, quantity=str(QTY))
    out["market_id"], out["market_status"] = market["orderId"], market["status"]
    out["market_filled"] = market["executedQty"]
    trades = client.get_my_trades(symbol=SYMBOL)
    out["trade_order_ids"] = sorted({t["orderId"] for t in trades})
    check_everyday(out)


def _async_client(base: str, creds: Credentials) -> AsyncClient:
    local = types.new_class(
        "LocalAsyncClient",
        (AsyncClient,),
        exec_body=lambda ns: ns.update(API_URL=base + "/api", MARGIN_API_URL=base + "/sapi"),
    )
    if creds.kind is KeyKind.HMAC_SHA256:
        return local(creds.api_key, creds.secret)
    return local(creds.api_key, None, private_key=creds.private_key_pem)


async def _async_everyday(client: AsyncClient) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["server_time"] = (await client.get_server_time())["serverTime"]
    out["btc_listed"] = (await client.get_symbol_info(SYMBOL)) is not None
    out["last"] = (await client.get_ticker(symbol=SYMBOL))["lastPrice"]
    book = await client.get_order_book(symbol=SYMBOL, limit=5)
    out["bid"], out["ask"] = book["bids"][0][0], book["asks"][0][0]
    out["candles"] = len(await client.get_klines(symbol=SYMBOL, interval="1m", limit=10))
    deadline = time.monotonic() + 5.0
    while True:
        out["usdt_free"] = ((await client.get_asset_balance("USDT")) or {}).get("free", "0")
        if Decimal(out["usdt_free"]) == START_USDT or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    price = str(_limit_price(out["bid"]))
    limit = await client.order_limit_buy(symbol=SYMBOL, quantity=str(QTY), price=price)
    out["limit_id"], out["limit_status"] = limit["orderId"], limit["status"]
    queried = await client.get_order(symbol=SYMBOL, orderId=limit["orderId"])
    out["queried_status"] = queried["status"]
    out["open_ids"] = [o["orderId"] for o in await client.get_open_orders(symbol=SYMBOL)]
    canceled = await client.cancel_order(symbol=SYMBOL, orderId=limit["orderId"])
    out["cancel_status"] = canceled["status"]
    market = await client.order_market_buy(symbol=SYMBOL, quantity=str(QTY))
    out["market_id"], out["market_status"] = market["orderId"], market["status"]
    out["market_filled"] = market["executedQty"]
    trades = await client.get_my_trades(symbol=SYMBOL)
    out["trade_order_ids"] = sorted({t["orderId"] for t in trades})
    return out


def _run_async(base: str, creds: Credentials, work: Any, *args: Any) -> Any:
    """``work(client, *args)`` with an AsyncClient made (its aiohttp session belongs to
    the loop) and closed inside one ``asyncio.run``."""

    async def main() -> Any:
        client = _async_client(base, creds)
        try:
            return await work(client, *args)
        finally:
            await client.close_connection()

    return asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_python_binance_async_client(base: str, operator: Sandex, kind: KeyKind) -> None:
    creds = _key(operator, "pb-async", kind)
    check_everyday(_run_async(base, creds, _async_everyday))


async def _get_then_cancel(client: AsyncClient, price: str) -> list[tuple[str, str]]:
    """Place ROUND_TRIPS orders, each got and canceled at once; (got, canceled) statuses."""
    seen = []
    for _ in range(ROUND_TRIPS):
        order = await client.order_limit_buy(symbol=SYMBOL, quantity=str(QTY), price=price)
        got = await client.get_order(symbol=SYMBOL, orderId=order["orderId"])
        canceled = await client.cancel_order(symbol=SYMBOL, orderId=order["orderId"])
        seen.append((got["status"], canceled["status"]))
    return seen


def test_python_binance_async_get_then_cancel_200_times(base: str, operator: Sandex) -> None:
    creds = _key(operator, "pb-async-200", KeyKind.HMAC_SHA256)
    sync = binance_client(base, creds)
    assert (
        Decimal(_wait_for_usdt(lambda: (sync.get_asset_balance("USDT") or {}).get("free", "0")))
        == START_USDT
    )
    price = str(_limit_price(sync.get_order_book(symbol=SYMBOL, limit=5)["bids"][0][0]))
    seen = _run_async(base, creds, _get_then_cancel, price)
    assert seen == [("NEW", "CANCELED")] * ROUND_TRIPS
    assert sync.get_open_orders(symbol=SYMBOL) == []
    assert sync.get_asset_balance("USDT")["free"] == "10000.00000000"


# -- Binance's official SDK and connector ----------------------------------------------


def _sdk(base: str, creds: Credentials) -> Spot:
    if creds.kind is KeyKind.HMAC_SHA256:
        auth = {"api_secret": creds.secret}
    else:
        auth = {"private_key": creds.private_key_pem}
    config = ConfigurationRestAPI(
        api_key=creds.api_key, base_path=base, timeout=10_000, retries=0, **auth
    )
    return Spot(config_rest_api=config)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_binance_sdk_spot(
    base: str, operator: Sandex, kind: KeyKind, caplog: pytest.LogCaptureFixture
) -> None:
    creds = _key(operator, "sdk-spot", kind)
    rest = _sdk(base, creds).rest_api
    try:
        out = _sdk_everyday(rest)
    finally:
        rest._session.close()
    check_everyday(out)
    # the SDK logs a WARNING when a response does not match its model
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def _sdk_usdt(rest: Any) -> str:
    balances = rest.get_account().data().balances
    return str(next((b.free for b in balances if b.asset == "USDT"), "0"))


def _sdk_everyday(rest: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["server_time"] = rest.time().data().server_time
    info = rest.exchange_info(symbol=SYMBOL).data()
    out["btc_listed"] = [s.symbol for s in info.symbols] == [SYMBOL]
    ticker = rest.ticker24hr(symbol=SYMBOL).data().actual_instance
    out["last"] = ticker.last_price
    book = rest.depth(symbol=SYMBOL, limit=5).data()
    out["bid"], out["ask"] = book.bids[0][0], book.asks[0][0]
    interval = KlinesIntervalEnum.INTERVAL_1m.value
    out["candles"] = len(rest.klines(symbol=SYMBOL, interval=interval, limit=10).data())
    out["usdt_free"] = _wait_for_usdt(lambda: _sdk_usdt(rest))
    limit = rest.new_order(
        symbol=SYMBOL,
        side=NewOrderSideEnum.BUY.value,
        type=NewOrderTypeEnum.LIMIT.value,
        time_in_force=NewOrderTimeInForceEnum.GTC.value,
        quantity=float(QTY),
        price=float(_limit_price(out["bid"])),
    ).data()
    out["limit_id"], out["limit_status"] = limit.order_id, limit.status
    out["queried_status"] = rest.get_order(symbol=SYMBOL, order_id=limit.order_id).data().status
    out["open_ids"] = [o.order_id for o in rest.get_open_orders(symbol=SYMBOL).data()]
    canceled = rest.delete_order(symbol=SYMBOL, order_id=limit.order_id).data()
    out["cancel_status"] = canceled.status
    market = rest.new_order(
        symbol=SYMBOL,
        side=NewOrderSideEnum.BUY.value,
        type=NewOrderTypeEnum.MARKET.value,
        quantity=float(QTY),
    ).data()
    out["market_id"], out["market_status"] = market.order_id, market.status
    out["market_filled"] = market.executed_qty
    trades = rest.my_trades(symbol=SYMBOL).data()
    out["trade_order_ids"] = sorted({t.order_id for t in trades})
    return out


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_binance_connector(base: str, operator: Sandex, kind: KeyKind) -> None:
    check_everyday(run_connector(base, _key(operator, "connector", kind)))


# -- what a failing script prints -------------------------------------------------------


@pytest.mark.parametrize(
    ("run", "kind"),
    [(run_ccxt_js, KeyKind.ED25519), (run_connector, KeyKind.HMAC_SHA256)],
    ids=["ccxt-js-ED25519", "connector-HMAC_SHA256"],
)
def test_a_refused_script_reports_the_call_and_no_credential(
    base: str, operator: Sandex, run: Any, kind: KeyKind
) -> None:
    """Signing with the wrong secret (another key's): the script names the refused call
    and Binance's code, and prints no credential (``_run_script`` fails the test if the
    real or the wrong one appears anywhere in its output)."""
    creds = _key(operator, "refused", kind)
    other = _key(operator, "refused-other", kind)
    wrong = dataclasses.replace(creds, secret=other.secret, private_key_pem=other.private_key_pem)
    out = run(base, wrong)
    assert out["step"] in {"loadMarkets", "account"}, out  # the first signed call
    assert "-1022" in json.dumps(out["error"]), out


# -- binance-sdk-spot beyond the everyday calls ---------------------------------------


def _dump(response: Any) -> Any:
    """An SDK response's data as Binance names it (models dumped by alias)."""
    data = response.data()
    if isinstance(data, list):
        return [d.model_dump(by_alias=True) if hasattr(d, "model_dump") else d for d in data]
    if hasattr(data, "actual_instance"):
        data = data.actual_instance
    return data.model_dump(by_alias=True) if hasattr(data, "model_dump") else data


def test_binance_sdk_spot_beyond_the_everyday(
    base: str, operator: Sandex, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK's models parse the routes bots call beyond the everyday ones: commission,
    unfilled order count, rolling and trading-day tickers, uiKlines, prevented matches,
    and an OCO placed, listed and canceled."""
    creds = _key(operator, "sdk-more", KeyKind.HMAC_SHA256)
    rest = _sdk(base, creds).rest_api
    try:
        _wait_for_usdt(lambda: _sdk_usdt(rest))
        commission = _dump(rest.account_commission(symbol=SYMBOL))
        assert Decimal(commission["standardCommission"]["taker"]) == Decimal("0.001")
        counts = _dump(rest.rate_limit_order())
        assert {(c["interval"], c["intervalNum"], c["limit"]) for c in counts} == {
            ("SECOND", 10, 1000),
            ("DAY", 1, 200_000),
        }
        for ticker in (rest.ticker(symbol=SYMBOL), rest.ticker_trading_day(symbol=SYMBOL)):
            row = _dump(ticker)
            assert row["symbol"] == SYMBOL, row
            assert (
                Decimal(row["lowPrice"]) <= Decimal(row["lastPrice"]) <= Decimal(row["highPrice"])
            )
        assert len(_dump(rest.ui_klines(symbol=SYMBOL, interval="1m", limit=3))) == 3
        assert _dump(rest.my_prevented_matches(symbol=SYMBOL, prevented_match_id=1)) == []

        book = rest.depth(symbol=SYMBOL, limit=5).data()
        ask = Decimal(book.asks[0][0])
        stop = (ask * Decimal("1.1")).quantize(Decimal("0.01"))
        oco = rest.order_list_oco(
            symbol=SYMBOL,
            side="BUY",
            quantity=float(QTY),
            above_type="STOP_LOSS_LIMIT",
            above_stop_price=float(stop),
            above_price=float(stop + 100),
            above_time_in_force="GTC",
            below_type="LIMIT_MAKER",
            below_price=float(_limit_price(book.bids[0][0])),
        ).data()
        assert (oco.contingency_type, oco.list_order_status) == ("OCO", "EXECUTING")
        assert [o.order_list_id for o in rest.open_order_list().data()] == [oco.order_list_id]
        gone = rest.delete_order_list(symbol=SYMBOL, order_list_id=oco.order_list_id).data()
        assert gone.list_order_status == "ALL_DONE"
        assert {r.status for r in gone.order_reports} == {"CANCELED"}
        assert rest.open_order_list().data() == []
        assert Decimal(_sdk_usdt(rest)) == START_USDT
    finally:
        rest._session.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- last: the server's own log ----------------------------------------------------------


def test_the_server_logged_no_error_or_traceback(sqlite_server: Server) -> None:
    """Everything above is normal operation: the server printed no traceback, error or
    warning while six clients used it."""
    log = sqlite_server.log.read_text(errors="replace")
    for word in ("Traceback", "ERROR", "WARNING", "Exception"):
        assert word not in log, sqlite_server.log_tail()

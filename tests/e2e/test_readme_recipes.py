"""The README's connection recipes, run as written against a real ``sandex serve``.

Each recipe is a fenced block after a ``<!-- recipe: NAME -->`` line in README.md. The
tests take the blocks from the README itself, change only the server's address (the
README's ``127.0.0.1:8765``, for the test server's port) and supply ``KEY`` and
``SECRET``, then check what matters for safety: after the recipe, no URL anywhere in
the client (REST, WebSocket, testnet, demo, nested to any depth) leaves this host. The
ccxt recipe has no options at all, so it also proves that ccxt with its defaults loads
markets (the coin list, margin pairs and futures listings) and trades.

``make run``'s banner prints the same text (:mod:`sandex.cli.recipes`); a test holds the
two together.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from e2e.clients import (
    Credentials,
    new_key,
    spot_ccxt_client,
    wait_for_audit,
    wait_for_balance,
)
from e2e.conftest import HOST, Server
from e2e.readme import FT_VENV, at, freqtrade_env, freqtrade_exchange, readme_recipes
from sandex.bootstrap import Sandex
from sandex.cli.recipes import CCXT, DEFAULT_ADDRESS, SANDEX_URLS, ccxt_snippet
from sandex.keys import Permission

TRADE = Permission.READ | Permission.SPOT_TRADE

pytestmark = pytest.mark.usefixtures("server_alive")


def _at(server: Server, code: str) -> str:
    return at(code, f"{HOST}:{server.port}")


def _run(server: Server, creds: Credentials, *names: str) -> dict[str, Any]:
    """Execute the README recipes ``names`` in order, in one namespace with KEY, SECRET."""
    recipes = readme_recipes()
    namespace: dict[str, Any] = {"KEY": creds.api_key, "SECRET": creds.signing_secret}
    for name in ("sandex_urls", *names):
        code = compile(_at(server, recipes[name]), f"README:{name}", "exec")
        exec(code, namespace)  # noqa: S102 - running the README as written is the test
    return namespace


def foreign_urls(tree: object, server: Server, path: str = "") -> list[str]:
    """Every string in ``tree`` (dicts and lists to any depth) that is not a URL on the
    test server, with where it was found."""
    if isinstance(tree, dict):
        return [u for k, v in tree.items() for u in foreign_urls(v, server, f"{path}.{k}")]
    if isinstance(tree, (list, tuple)):
        return [u for i, v in enumerate(tree) for u in foreign_urls(v, server, f"{path}[{i}]")]
    if isinstance(tree, str):
        local = (f"http://{HOST}:{server.port}", f"ws://{HOST}:{server.port}")
        ok = any(tree == origin or tree.startswith(origin + "/") for origin in local)
        return [] if ok else [f"{path} = {tree}"]
    return []


@pytest.fixture
def trader(sqlite_server: Server, operator: Sandex, request: pytest.FixtureRequest) -> Credentials:
    """A new user's trading key, once the starting 10,000 USDT have arrived."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40]
    creds = new_key(operator, f"e2e-recipe-{name}@example.com", label="recipe", permissions=TRADE)
    wait_for_balance(spot_ccxt_client(sqlite_server.base, creds), "USDT", Decimal(10_000))
    return creds


def test_the_make_run_banner_prints_the_readmes_recipe() -> None:
    recipes = readme_recipes()
    assert recipes["sandex_urls"].rstrip("\n") == SANDEX_URLS
    assert recipes["ccxt"].startswith(CCXT + "\n")
    banner = ccxt_snippet("127.0.0.1:9999", "sdxkDEMO")
    assert SANDEX_URLS.replace(DEFAULT_ADDRESS, "127.0.0.1:9999") in banner
    assert CCXT in banner
    assert DEFAULT_ADDRESS not in banner


def test_ccxt_with_no_options_loads_markets_and_trades(
    sqlite_server: Server, operator: Sandex, trader: Credentials
) -> None:
    ns = _run(sqlite_server, trader, "ccxt")
    exchange: ccxt.binance = ns["exchange"]
    try:
        assert exchange.options["fetchCurrencies"] is True  # ccxt's defaults, untouched
        assert exchange.options["fetchMargins"] is True
        assert {"BTC", "ETH", "SOL", "USDT"} <= set(exchange.currencies)
        assert exchange.markets["BTC/USDT"]["margin"] is False
        orders = exchange.fetch_orders("BTC/USDT")
        assert [(o["type"], o["status"]) for o in orders] == [
            ("limit", "canceled"),
            ("market", "closed"),
        ]
        for endpoint in (
            "GET /sapi/v1/capital/config/getall",
            "GET /sapi/v1/margin/allPairs",
            "GET /sapi/v1/margin/isolated/allPairs",
        ):
            wait_for_audit(operator, trader.prefix, event="auth.allowed", endpoint=endpoint)
        assert foreign_urls(exchange.urls, sqlite_server) == []
        exchange.set_sandbox_mode(True)  # swaps in the testnet URLs: moved as well
        assert foreign_urls(exchange.urls, sqlite_server) == []
    finally:
        exchange.session.close()


def test_ccxt_pro_trades_and_watches_and_its_websockets_never_leave_sandex(
    sqlite_server: Server, trader: Credentials
) -> None:
    ns = _run(sqlite_server, trader, "ccxt.pro")  # the old recipe raised TypeError here
    exchange = ns["exchange"]
    assert foreign_urls(exchange.urls, sqlite_server) == []
    assert exchange.urls["api"]["ws"]["ws-api"]["spot"].startswith(f"ws://{HOST}:")

    async def use() -> None:
        try:
            await exchange.load_markets()
            order = await exchange.create_order("BTC/USDT", "market", "buy", 0.001)
            assert order["status"] == "closed"
            ticker = await asyncio.wait_for(exchange.watch_ticker("BTC/USDT"), 10)
            assert ticker["symbol"] == "BTC/USDT" and ticker["last"] > 0  # Sandex's stream
            # the account over Sandex's WebSocket API (the recipe moved ws-api too): the
            # first watch subscribes, and an order placed once it is on shows up in it
            placed: list[str] = []
            got: list[dict[str, object]] = []
            for _ in range(5):
                watching = asyncio.ensure_future(exchange.watch_orders("BTC/USDT"))
                await asyncio.sleep(0.5)
                resting = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 30_000)
                placed.append(str(resting["id"]))
                try:
                    got = await asyncio.wait_for(watching, 5)
                except TimeoutError:
                    continue
                if any(str(o["id"]) in placed for o in got):
                    break
            assert any(str(o["id"]) in placed and o["status"] == "open" for o in got), got
            for order_id in placed:
                await exchange.cancel_order(order_id, "BTC/USDT")
        finally:
            await exchange.close()

    asyncio.run(use())


def test_python_binance_has_every_url_at_sandex(sqlite_server: Server, trader: Credentials) -> None:
    ns = _run(sqlite_server, trader, "python-binance")
    client = ns["client"]
    try:
        urls = {n: getattr(client, n) for n in dir(client) if n.endswith("_URL")}
        assert len(urls) > 20
        assert foreign_urls(urls, sqlite_server) == [], urls
        assert client.get_order(symbol="BTCUSDT", orderId=ns["order"]["orderId"])["status"] == (
            "CANCELED"
        )
    finally:
        client.close_connection()


def test_freqtrade_downloads_candles_from_sandex_only(
    sqlite_server: Server, trader: Credentials, tmp_path: Path
) -> None:
    exchange = freqtrade_exchange(f"{HOST}:{sqlite_server.port}", trader)
    assert exchange["only_from_ccxt"] is True  # else 1s-5m candles come from Binance's archive
    assert "enable_ws" not in exchange  # freqtrade's default, true: candles over the socket
    assert foreign_urls(exchange["ccxt_config"]["urls"], sqlite_server) == []
    assert "ws" in exchange["ccxt_config"]["urls"]["api"]  # ccxt.pro's, moved too
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"stake_currency": "USDT", "dry_run": True, "exchange": exchange}))
    config.chmod(0o600)  # it holds the secret
    data = tmp_path / "data"
    userdir = tmp_path / "user_data"
    userdir.mkdir()
    out = subprocess.run(
        [
            str(FT_VENV / "bin" / "freqtrade"),
            "download-data",
            "--config",
            str(config),
            "--userdir",
            str(userdir),
            "--datadir",
            str(data),
            "--pairs",
            "BTC/USDT",
            "--timeframes",
            "1m",
            "5m",
            "--days",
            "30",  # freqtrade's everyday request; Binance's archive would serve all but 2
            "--no-parallel-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=freqtrade_env(),
        check=False,
    )
    log = (out.stdout + out.stderr).replace(trader.signing_secret, "<secret>")
    assert out.returncode == 0, log[-4000:]
    assert "binance.vision" not in log, log[-4000:]
    for level in (" - WARNING - ", " - ERROR - "):
        assert level not in log, log[-4000:]
    assert sorted(p.name for p in data.iterdir()) == ["BTC_USDT-1m.feather", "BTC_USDT-5m.feather"]
    # what freqtrade stored: 30 days of 1m, and 5m candles that are exactly their 1m
    # candles aggregated (read with freqtrade's own pandas; this venv has none)
    check = subprocess.run(
        [str(FT_VENV / "bin" / "python"), "-c", _AGREE, str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr[-4000:]
    found = json.loads(check.stdout)
    assert found["days_1m"] >= 29.9, found
    assert found["compared"] >= 8000 and found["mismatches"] == [], found


_AGREE = """
import json, sys
import pandas as pd
from pathlib import Path
data = Path(sys.argv[1])
m1 = pd.read_feather(data / "BTC_USDT-1m.feather").set_index("date")
m5 = pd.read_feather(data / "BTC_USDT-5m.feather").set_index("date")
agg = m1.resample("5min", label="left", closed="left").agg(
    {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
)
counts = m1["open"].resample("5min", label="left", closed="left").count()
whole = agg[counts == 5]
common = whole.index.intersection(m5.index)
bad = []
for ts in common:
    a, b = whole.loc[ts], m5.loc[ts]
    for col in ("open", "high", "low", "close"):
        if abs(a[col] - b[col]) > 1e-9 * max(1.0, abs(b[col])):
            bad.append([str(ts), col, a[col], b[col]])
    if abs(a["volume"] - b["volume"]) > 1e-6 * max(1.0, abs(b["volume"])):
        bad.append([str(ts), "volume", a["volume"], b["volume"]])
span = (m1.index.max() - m1.index.min()).total_seconds() / 86400
print(json.dumps({"days_1m": span, "compared": len(common), "mismatches": bad[:5]}))
"""

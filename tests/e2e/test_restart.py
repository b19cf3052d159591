"""What a server acknowledged survives ``kill -9``: orders, balances and the book.

A trader places a mix of orders with ccxt (market fills, resting limits on both sides far
from the market, a post-only, a stop-limit and a take-profit-limit that never trigger,
cancels) and the test records the server's view of all of it. Then comes a last burst
(a resting limit, a market fill, a cancel) whose acknowledgements are the last thing
the server says: the test SIGKILLs the serving process itself right after the last
answer, restarts ``sandex serve`` on the same data directory (SQLite) or the same
PostgreSQL schema, and checks with a fresh ccxt client that

* every acknowledged order reads back as acknowledged (the ones read before the burst
  field for field),
* the open orders are exactly those open before the kill,
* balances (free and locked, per asset) are exactly what they were, plus what the
  burst's acknowledgements imply,
* the order book still holds the trader's resting orders at their prices,
* the trader's trades are all there, and new orders and trades get new, higher ids.
"""

from __future__ import annotations

import os
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from e2e.clients import (
    account_balances,
    new_key,
    spot_ccxt_client,
    wait_for_balance,
)
from e2e.conftest import Launch, Server, server_env
from sandex.keys import Permission
from sandex.keys.envelope import MasterKey
from support import PG_URL

EMAIL = "e2e-restart@example.com"
TRADE = Permission.READ | Permission.SPOT_TRADE
BTC = "BTC/USDT"
ETH = "ETH/USDT"
SYMBOLS = (BTC, ETH)
START_USDT = Decimal(10_000)
ZERO = Decimal(0)
KEY_FIELDS = (
    "symbol",
    "orderId",
    "clientOrderId",
    "status",
    "type",
    "side",
    "price",
    "origQty",
    "executedQty",
    "cummulativeQuoteQty",
)
"""The fields an acknowledgement (placed or canceled) and GET /api/v3/order share."""

Balances = dict[str, tuple[Decimal, Decimal]]
Ref = tuple[str, str]
"""(ccxt symbol, order id): order ids are numbered per symbol."""


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def _price(ex: ccxt.binance, symbol: str, value: float) -> float:
    return float(ex.price_to_precision(symbol, value))


def _acked(order: dict[str, Any]) -> dict[str, Any]:
    """What an acknowledgement says about an order, in GET /api/v3/order's terms."""
    info = order["info"]
    fields = {name: info[name] for name in KEY_FIELDS if name != "clientOrderId"}
    fields["clientOrderId"] = info.get("origClientOrderId", info["clientOrderId"])
    fields["stopPrice"] = info.get("stopPrice", "0.00000000")
    return fields


def _ref(order: dict[str, Any]) -> Ref:
    return order["symbol"], order["id"]


def _view(ex: ccxt.binance, ref: Ref) -> dict[str, Any]:
    """GET /api/v3/order's view of an order, through ccxt's fetch_order."""
    symbol, order_id = ref
    info: dict[str, Any] = ex.fetch_order(order_id, symbol)["info"]
    return info


def _key_fields(view: dict[str, Any]) -> dict[str, Any]:
    return {name: view[name] for name in (*KEY_FIELDS, "stopPrice")}


def _resting_levels(
    views: list[dict[str, Any]],
) -> dict[tuple[str, str], dict[Decimal, Decimal]]:
    """(symbol, bids|asks) -> price -> quantity the trader rests there (untriggered stops
    are not in the book)."""
    levels: dict[tuple[str, str], dict[Decimal, Decimal]] = {}
    for v in views:
        if v["type"] not in ("LIMIT", "LIMIT_MAKER"):
            continue
        side = "bids" if v["side"] == "BUY" else "asks"
        book = levels.setdefault((v["symbol"], side), {})
        price = _d(v["price"])
        book[price] = book.get(price, ZERO) + _d(v["origQty"]) - _d(v["executedQty"])
    return levels


def _check_book(ex: ccxt.binance, views: list[dict[str, Any]]) -> None:
    """The trader's resting orders are in the public book at their prices, and nobody
    else rests at those far-away prices."""
    markets = {ex.market(s)["id"]: s for s in SYMBOLS}
    books = {s: ex.fetch_order_book(s, 100) for s in SYMBOLS}
    for (symbol_id, side), ours in _resting_levels(views).items():
        book = {_d(p): _d(q) for p, q in books[markets[symbol_id]][side]}
        for price, qty in ours.items():
            assert book.get(price) == qty, (symbol_id, side, price, qty, book)


def _sigkill(server: Server) -> None:
    """SIGKILL the serving process itself (not a wrapper), then whatever it left in its
    process group (its audit writer)."""
    pid = server.proc.pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"serve" in cmdline and str(server.port).encode() in cmdline, cmdline
    os.kill(pid, signal.SIGKILL)
    assert server.proc.wait(10) == -signal.SIGKILL
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_acknowledged_orders_balances_and_book_survive_kill_9(
    start_server: Launch, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    if database == "postgresql":
        env = server_env(
            SANDEX_DATABASE_URL=PG_URL,
            SANDEX_DATABASE_SCHEMA=request.getfixturevalue("pg_schema"),
            SANDEX_MASTER_KEY=MasterKey.generate().to_text(),
        )
    else:
        env = server_env()
    data_dir = tmp_path / "data"
    server = start_server(env=env, data_dir=data_dir)
    with server.open() as sx:
        creds = new_key(sx, EMAIL, label="durable", permissions=TRADE)
    ex = spot_ccxt_client(server.base, creds)
    ex.load_markets()
    wait_for_balance(ex, "USDT", START_USDT)
    top = {s: ex.fetch_order_book(s, 5) for s in SYMBOLS}
    bid = {s: top[s]["bids"][0][0] for s in SYMBOLS}
    ask = {s: top[s]["asks"][0][0] for s in SYMBOLS}

    def limit(
        client: ccxt.binance, symbol: str, side: str, amount: float, factor: float, **params: Any
    ) -> Any:
        """A limit order ``factor`` times the best price when the test began."""
        ref = bid[symbol] if side == "buy" else ask[symbol]
        price = _price(client, symbol, ref * factor)
        return client.create_order(symbol, "limit", side, amount, price, params)

    # -- the mix -----------------------------------------------------------------------------
    placed = [
        ex.create_order(BTC, "market", "buy", 0.02),
        ex.create_order(ETH, "market", "buy", 0.2),
        limit(ex, BTC, "buy", 0.001, 0.7),
        limit(ex, BTC, "buy", 0.002, 0.75),
        limit(ex, BTC, "sell", 0.003, 1.3),
        limit(ex, BTC, "sell", 0.001, 1.4),
        limit(ex, BTC, "buy", 0.001, 0.72, postOnly=True),
        limit(ex, ETH, "buy", 0.05, 0.7),
        limit(ex, ETH, "sell", 0.05, 1.3),
        limit(ex, BTC, "sell", 0.002, 0.59, stopPrice=_price(ex, BTC, bid[BTC] * 0.6)),
        limit(ex, ETH, "sell", 0.05, 1.51, takeProfitPrice=_price(ex, ETH, ask[ETH] * 1.5)),
        ex.create_order(BTC, "market", "sell", 0.005),
    ]
    # orders are numbered per symbol (as on Binance), so an order is (symbol, id)
    acked = {_ref(o): _acked(o) for o in placed}
    for doomed in (placed[3], placed[8]):
        acked[_ref(doomed)] = _acked(ex.cancel_order(doomed["id"], doomed["symbol"]))
    statuses = sorted(a["status"] for a in acked.values())
    assert statuses == ["CANCELED"] * 2 + ["FILLED"] * 3 + ["NEW"] * 7, statuses

    # -- what the server says before the last burst ------------------------------------------
    views = {ref: _view(ex, ref) for ref in acked}
    for ref, expected_fields in acked.items():
        assert _key_fields(views[ref]) == expected_fields, ref
    open_before = {_ref(o) for o in ex.fetch_open_orders()}
    assert open_before == {ref for ref, a in acked.items() if a["status"] == "NEW"}
    assert views[_ref(placed[9])]["isWorking"] is False  # the stop has not triggered
    balances: Balances = account_balances(ex)
    assert balances["BTC"][1] == Decimal("0.006") and balances["USDT"][1] > 0
    trades = {s: {t["id"]: t["info"] for t in ex.fetch_my_trades(s)} for s in SYMBOLS}
    assert trades[BTC] and trades[ETH]
    _check_book(ex, [views[ref] for ref in open_before])

    # -- the last burst: its acknowledgements are the last words before the kill ------------
    rest = limit(ex, BTC, "buy", 0.001, 0.71)
    fill = ex.create_order(BTC, "market", "buy", 0.001)
    gone = ex.cancel_order(placed[5]["id"], BTC)
    _sigkill(server)

    for order in (rest, fill, gone):
        acked[_ref(order)] = _acked(order)
    assert (acked[_ref(rest)]["status"], acked[_ref(fill)]["status"]) == ("NEW", "FILLED")
    assert acked[_ref(gone)]["status"] == "CANCELED"
    open_expected = open_before - {_ref(gone)} | {_ref(rest)}
    # the burst's effect on the balances, from its acknowledgements alone
    expected = dict(balances)
    hold = _d(rest["info"]["price"]) * _d(rest["info"]["origQty"])
    fill_qty = _d(fill["info"]["executedQty"])
    fill_fee = sum((_d(f["commission"]) for f in fill["info"]["fills"]), ZERO)
    assert {f["commissionAsset"] for f in fill["info"]["fills"]} == {"BTC"}
    released = _d(gone["info"]["origQty"]) - _d(gone["info"]["executedQty"])
    usdt_free, usdt_locked = expected["USDT"]
    btc_free, btc_locked = expected["BTC"]
    expected["USDT"] = (
        usdt_free - hold - _d(fill["info"]["cummulativeQuoteQty"]),
        usdt_locked + hold,
    )
    expected["BTC"] = (btc_free + fill_qty - fill_fee + released, btc_locked - released)
    trades[BTC].update({str(f["tradeId"]): None for f in fill["info"]["fills"]})

    # -- restart on the same data ------------------------------------------------------------
    again = start_server(env=env, data_dir=data_dir)
    ex2 = spot_ccxt_client(again.base, creds)
    ex2.load_markets()

    after = {ref: _view(ex2, ref) for ref in acked}
    for ref, expected_fields in acked.items():
        assert _key_fields(after[ref]) == expected_fields, ref
    for ref, before in views.items():
        if ref != _ref(gone):
            assert after[ref] == before, ref
    assert after[_ref(placed[9])]["isWorking"] is False
    assert {_ref(o) for o in ex2.fetch_open_orders()} == open_expected
    for symbol in SYMBOLS:
        assert {_ref(o) for o in ex2.fetch_open_orders(symbol)} == {
            ref for ref in open_expected if ref[0] == symbol
        }
        assert {_ref(o) for o in ex2.fetch_orders(symbol)} == {
            ref for ref in acked if ref[0] == symbol
        }
    assert account_balances(ex2) == expected
    _check_book(ex2, [after[ref] for ref in open_expected])
    for symbol in SYMBOLS:
        now = {t["id"]: t["info"] for t in ex2.fetch_my_trades(symbol)}
        assert set(now) == set(trades[symbol]), symbol
        assert all(now[i] == info for i, info in trades[symbol].items() if info), symbol

    # -- ids go on from where they were ------------------------------------------------------
    newest = max(int(order_id) for symbol, order_id in acked if symbol == BTC)
    newest_trade = max(int(trade_id) for trade_id in trades[BTC])
    more = limit(ex2, BTC, "buy", 0.001, 0.7)
    assert int(more["id"]) > newest and more["status"] == "open"
    fill2 = ex2.create_order(BTC, "market", "buy", 0.001)
    assert int(fill2["id"]) > int(more["id"])
    assert min(f["tradeId"] for f in fill2["info"]["fills"]) > newest_trade
    assert ex2.cancel_order(more["id"], BTC)["status"] == "canceled"

"""Unmodified ccxt trades spot on a real ``sandex serve``: every spot call of reference
§4, the errors of §7 and each key's risk policy.

One server (SQLite) serves the whole module; the simulated market makers quote around
BTCUSDT ~60000 and ETHUSDT ~3000. Each test trades as a user of its own, who starts
with 10,000 USDT, so balances can be checked to the last unit. ccxt is configured only
as reference §1-2 say (:func:`e2e.clients.spot_ccxt_client`). Prices are taken from the
live book, because the market moves. The flash crash runs last: it moves BTCUSDT for
good.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from e2e.clients import (
    Credentials,
    account_balances,
    new_key,
    now_ms,
    spot_ccxt_client,
    wait_for_balance,
)
from sandex.bootstrap import Sandex
from sandex.keys import Permission

TRADE = Permission.READ | Permission.SPOT_TRADE
BTC = "BTC/USDT"
ETH = "ETH/USDT"
START_USDT = Decimal(10_000)
FEE_RATE = Decimal("0.001")
ZERO = Decimal(0)
STOP_FILL_TIMEOUT_S = 20.0

Balances = dict[str, tuple[Decimal, Decimal]]


# -- fixtures and helpers ------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("server_alive")


def _email(name: str) -> str:
    return f"e2e-spot-ccxt-{name}@example.com"


def _trader(operator: Sandex, base: str, name: str) -> ccxt.binance:
    """A new user's trading key in a ccxt client, once the 10,000 USDT have arrived."""
    creds = new_key(operator, _email(name), label=name, permissions=TRADE)
    ex = spot_ccxt_client(base, creds)
    ex.load_markets()
    wait_for_balance(ex, "USDT", START_USDT)
    return ex


def _key(operator: Sandex, name: str, label: str) -> Credentials:
    return new_key(operator, _email(name), label=label, permissions=TRADE)


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def _price(ex: ccxt.binance, symbol: str, value: float) -> float:
    return float(ex.price_to_precision(symbol, value))


def _top(ex: ccxt.binance, symbol: str = BTC) -> tuple[float, float]:
    """(best bid, best ask) now."""
    book = ex.fetch_order_book(symbol, 5)
    return book["bids"][0][0], book["asks"][0][0]


def _ids(orders: list[dict[str, Any]]) -> set[str]:
    return {o["id"] for o in orders}


def _free(balances: Balances, asset: str) -> Decimal:
    return balances.get(asset, (ZERO, ZERO))[0]


def _locked(balances: Balances, asset: str) -> Decimal:
    return balances.get(asset, (ZERO, ZERO))[1]


def _fills(order: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal, set[str]]:
    """(quantity, quote, commission, commission assets) summed over a FULL response's fills."""
    fills = order["info"]["fills"]
    assert fills, order["info"]
    qty = sum((_d(f["qty"]) for f in fills), ZERO)
    quote = sum((_d(f["qty"]) * _d(f["price"]) for f in fills), ZERO)
    fee = sum((_d(f["commission"]) for f in fills), ZERO)
    return qty, quote, fee, {f["commissionAsset"] for f in fills}


def _refused(call: Callable[[], object], *, timeout: float = 3.0) -> Exception:
    """The exception ``call`` raises once the server has caught up with a key change made
    in another process (its key change feed is polled every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            call()
        except Exception as exc:
            return exc
        if time.monotonic() > deadline:
            raise AssertionError(f"still accepted {timeout} s after the change")
        time.sleep(0.05)


# -- market data ---------------------------------------------------------------------------


def test_public_market_data(base: str, operator: Sandex) -> None:
    ex = _trader(operator, base, "data")

    markets = ex.load_markets(reload=True)
    assert {BTC, ETH, "SOL/USDT", "ETH/BTC"} <= set(markets)
    btc = markets[BTC]
    assert btc["spot"] and btc["active"] and btc["base"] == "BTC" and btc["quote"] == "USDT"
    assert btc["precision"]["price"] == 0.01 and btc["precision"]["amount"] == 0.00001
    assert btc["limits"]["cost"]["min"] == 5.0
    assert {"LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"} <= set(
        btc["info"]["orderTypes"]
    )

    assert abs(ex.fetch_time() - now_ms()) < 5_000

    ticker = ex.fetch_ticker(BTC)
    assert ticker["symbol"] == BTC
    assert 30_000 < ticker["last"] < 120_000
    assert ticker["bid"] < ticker["ask"]
    assert ticker["low"] <= ticker["last"] <= ticker["high"]
    assert ticker["baseVolume"] > 0 and ticker["quoteVolume"] > 0
    tickers = ex.fetch_tickers()
    assert {BTC, ETH, "SOL/USDT", "ETH/BTC"} <= set(tickers)
    assert 1_000 < tickers[ETH]["last"] < 6_000
    assert 0.01 < tickers["ETH/BTC"]["last"] < 0.2

    book = ex.fetch_order_book(BTC, 5)
    assert len(book["bids"]) == 5 and len(book["asks"]) == 5
    bids = [p for p, _ in book["bids"]]
    asks = [p for p, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]
    assert all(q > 0 for _, q in book["bids"] + book["asks"])
    assert book["nonce"] is not None

    trades = ex.fetch_trades(BTC)
    assert trades
    assert all(t["symbol"] == BTC and t["price"] > 0 and t["amount"] > 0 for t in trades)
    assert [t["timestamp"] for t in trades] == sorted(t["timestamp"] for t in trades)
    assert trades[-1]["timestamp"] <= now_ms() + 1_000

    for timeframe, step in (("1m", 60_000), ("1h", 3_600_000)):
        candles = ex.fetch_ohlcv(BTC, timeframe, limit=1000)
        assert len(candles) == 1000, (timeframe, len(candles))
        times = [c[0] for c in candles]
        assert all(b - a == step for a, b in itertools.pairwise(times)), timeframe
        assert times[-1] <= now_ms() < times[-1] + step + 5_000, timeframe  # the newest is now
        for _, o, h, low, c, v in candles:
            assert low <= min(o, c) <= max(o, c) <= h and v >= 0, timeframe

    bids_asks = ex.fetch_bids_asks([BTC, ETH])
    assert set(bids_asks) == {BTC, ETH}
    assert all(t["bid"] < t["ask"] for t in bids_asks.values())
    last = ex.fetch_last_prices()
    assert {BTC, ETH, "SOL/USDT", "ETH/BTC"} <= set(last)
    assert 30_000 < last[BTC]["price"] < 120_000


def test_candles_agree_across_timeframes(base: str, operator: Sandex) -> None:
    """What a multi-timeframe strategy sees: every closed 5m, 15m and 1h candle is the
    aggregation of the 1m candles of its period (the prices of those that traded), and
    30 days of 1m history are there for ``freqtrade download-data --days 30``."""
    ex = _trader(operator, base, "candles")
    now = now_ms()
    minutes: list[list[float]] = []
    since = now - 5 * 3_600_000
    while True:
        page = ex.fetch_ohlcv(BTC, "1m", since=since, limit=1000)
        minutes += page
        if len(page) < 1000:
            break
        since = int(page[-1][0]) + 60_000
    closed = [m for m in minutes if m[0] + 60_000 <= now]
    by_open = {int(m[0]): m for m in closed}
    checked = 0
    for timeframe, step in (("5m", 300_000), ("15m", 900_000), ("1h", 3_600_000)):
        for opened, o, h, low, c, v in ex.fetch_ohlcv(BTC, timeframe, since=closed[0][0]):
            parts = [by_open.get(int(opened) + i) for i in range(0, step, 60_000)]
            if any(p is None for p in parts):
                continue  # reaches past the minutes fetched
            traded = [p for p in parts if p is not None and p[5] > 0]
            assert [o, h, low, c] == [
                traded[0][1],
                max(p[2] for p in traded),
                min(p[3] for p in traded),
                traded[-1][4],
            ], (timeframe, opened)
            assert v == pytest.approx(sum(p[5] for p in parts if p is not None), rel=1e-9)
            checked += 1
    assert checked >= 12 + 4 + 1
    since = now - 30 * 86_400_000
    month = ex.fetch_ohlcv(BTC, "1m", since=since, limit=5)
    assert month[0][0] == -(-since // 60_000) * 60_000  # the first minute from then on


# -- orders --------------------------------------------------------------------------------


def test_market_buy_and_sell_move_balances_by_the_fill_and_fee(base: str, operator: Sandex) -> None:
    ex = _trader(operator, base, "market")

    buy = ex.create_order(BTC, "market", "buy", 0.01)
    assert (buy["status"], buy["type"], buy["side"], buy["symbol"]) == (
        "closed",
        "market",
        "buy",
        BTC,
    )
    assert buy["amount"] == 0.01 and buy["filled"] == 0.01 and buy["remaining"] == 0
    qty, quote, fee, fee_assets = _fills(buy)
    assert qty == Decimal("0.01") == _d(buy["info"]["executedQty"])
    assert quote == _d(buy["info"]["cummulativeQuoteQty"])
    assert fee_assets == {"BTC"} and fee == qty * FEE_RATE
    assert buy["cost"] == pytest.approx(float(quote))
    assert buy["fee"] == {"currency": "BTC", "cost": pytest.approx(float(fee))}
    assert 30_000 * qty < quote < 120_000 * qty
    after_buy = account_balances(ex)
    assert after_buy == {"BTC": (qty - fee, ZERO), "USDT": (START_USDT - quote, ZERO)}
    assert ex.fetch_order(buy["id"], BTC)["status"] == "closed"

    sell = ex.create_order(BTC, "market", "sell", 0.005)
    assert (sell["status"], sell["side"], sell["filled"]) == ("closed", "sell", 0.005)
    s_qty, s_quote, s_fee, s_fee_assets = _fills(sell)
    assert s_qty == Decimal("0.005") and s_quote == _d(sell["info"]["cummulativeQuoteQty"])
    assert s_fee_assets == {"USDT"}
    assert abs(s_fee - s_quote * FEE_RATE) <= Decimal("0.00000001")
    assert account_balances(ex) == {
        "BTC": (qty - fee - s_qty, ZERO),
        "USDT": (START_USDT - quote + s_quote - s_fee, ZERO),
    }


def test_limit_order_rests_is_found_and_canceled(base: str, operator: Sandex) -> None:
    ex = _trader(operator, base, "limit")
    bid, _ = _top(ex)
    price = _price(ex, BTC, bid * 0.9)

    order = ex.create_order(BTC, "limit", "buy", 0.001, price)
    assert (order["status"], order["type"], order["side"], order["timeInForce"]) == (
        "open",
        "limit",
        "buy",
        "GTC",
    )
    assert order["price"] == price and order["amount"] == 0.001 and order["filled"] == 0
    hold = _d(order["info"]["price"]) * Decimal("0.001")
    assert account_balances(ex) == {"USDT": (START_USDT - hold, hold)}

    found = ex.fetch_order(order["id"], BTC)
    assert (found["id"], found["status"], found["price"], found["amount"]) == (
        order["id"],
        "open",
        price,
        0.001,
    )
    assert found["clientOrderId"] == order["clientOrderId"]
    assert found["info"]["isWorking"] is True
    by_client_id = ex.fetch_order(order["id"], BTC, {"clientOrderId": order["clientOrderId"]})
    assert by_client_id["id"] == order["id"]
    assert order["id"] in _ids(ex.fetch_open_orders(BTC))
    assert order["id"] in _ids(ex.fetch_open_orders())
    assert (price, 0.001) in [tuple(level) for level in ex.fetch_order_book(BTC, 100)["bids"]]

    canceled = ex.cancel_order(order["id"], BTC)
    assert (canceled["id"], canceled["status"]) == (order["id"], "canceled")
    assert ex.fetch_order(order["id"], BTC)["status"] == "canceled"
    assert order["id"] not in _ids(ex.fetch_open_orders(BTC))
    assert account_balances(ex) == {"USDT": (START_USDT, ZERO)}


def test_post_only_rests_as_limit_maker_or_is_refused_when_it_would_take(
    base: str, operator: Sandex
) -> None:
    ex = _trader(operator, base, "post-only")
    bid, ask = _top(ex)

    with pytest.raises(ccxt.OrderImmediatelyFillable):  # 0.001 BTC: ~60 USDT, above NOTIONAL
        ex.create_order(BTC, "limit", "buy", 0.001, _price(ex, BTC, ask * 1.01), {"postOnly": True})
    assert ex.fetch_open_orders(BTC) == []
    assert account_balances(ex) == {"USDT": (START_USDT, ZERO)}

    maker = ex.create_order(
        BTC, "limit", "buy", 0.001, _price(ex, BTC, bid * 0.95), {"postOnly": True}
    )
    assert maker["status"] == "open" and maker["postOnly"] is True
    assert maker["info"]["type"] == "LIMIT_MAKER"
    assert ex.fetch_order(maker["id"], BTC)["info"]["type"] == "LIMIT_MAKER"
    assert ex.cancel_order(maker["id"], BTC)["status"] == "canceled"


def test_stop_and_take_profit_orders_wait_for_their_trigger(
    base: str, operator: Sandex, cli: Callable[..., None]
) -> None:
    ex = _trader(operator, base, "triggers")
    cli("balances", "credit", _email("triggers"), "BTC", "0.01")  # the operator's CLI
    wait_for_balance(ex, "BTC", Decimal("0.01"))
    bid, ask = _top(ex)

    stop = ex.create_order(
        BTC,
        "limit",
        "sell",
        0.001,
        _price(ex, BTC, bid * 0.79),
        {"stopPrice": _price(ex, BTC, bid * 0.8)},
    )
    take = ex.create_order(
        BTC,
        "limit",
        "sell",
        0.001,
        _price(ex, BTC, ask * 1.21),
        {"takeProfitPrice": _price(ex, BTC, ask * 1.2)},
    )
    stop_market = ex.create_order(
        BTC, "market", "sell", 0.001, None, {"stopLossPrice": _price(ex, BTC, bid * 0.8)}
    )
    expected = {
        stop["id"]: ("STOP_LOSS_LIMIT", bid * 0.8),
        take["id"]: ("TAKE_PROFIT_LIMIT", ask * 1.2),
        stop_market["id"]: ("STOP_LOSS", bid * 0.8),
    }
    for order_id, (kind, trigger) in expected.items():
        found = ex.fetch_order(order_id, BTC)
        assert found["status"] == "open", found["info"]
        assert found["info"]["type"] == kind
        assert found["triggerPrice"] == _price(ex, BTC, trigger)
        assert found["filled"] == 0
        assert found["info"]["isWorking"] is False, found["info"]
    assert account_balances(ex) == {
        "BTC": (Decimal("0.007"), Decimal("0.003")),
        "USDT": (START_USDT, ZERO),
    }
    assert _ids(ex.fetch_open_orders(BTC)) == set(expected)

    canceled = ex.cancel_all_orders(BTC)
    assert _ids(canceled) == set(expected)
    assert {o["status"] for o in canceled} == {"canceled"}
    assert ex.fetch_open_orders(BTC) == []
    assert account_balances(ex) == {"BTC": (Decimal("0.01"), ZERO), "USDT": (START_USDT, ZERO)}


def test_market_buy_with_a_quote_cost(base: str, operator: Sandex) -> None:
    ex = _trader(operator, base, "cost")
    order = ex.create_market_buy_order_with_cost(BTC, 100)
    info = order["info"]
    assert order["status"] == "closed" and info["type"] == "MARKET"
    assert _d(info["origQuoteOrderQty"]) == 100
    qty, quote, fee, _ = _fills(order)
    spent = _d(info["cummulativeQuoteQty"])
    assert spent == quote
    # the most a whole number of lots (0.00001 BTC) buys for 100 USDT
    assert Decimal(99) < spent <= Decimal(100)
    assert qty == _d(info["executedQty"]) and fee == qty * FEE_RATE
    assert account_balances(ex) == {"BTC": (qty - fee, ZERO), "USDT": (START_USDT - spent, ZERO)}


def test_order_history_open_orders_and_my_trades(base: str, operator: Sandex) -> None:
    ex = _trader(operator, base, "history")
    bid, _ = _top(ex)
    eth_bid, _ = _top(ex, ETH)

    market = ex.create_order(BTC, "market", "buy", 0.002)
    btc_open = ex.create_order(BTC, "limit", "buy", 0.001, _price(ex, BTC, bid * 0.9))
    eth_open = ex.create_order(ETH, "limit", "buy", 0.01, _price(ex, ETH, eth_bid * 0.9))
    doomed = ex.create_order(BTC, "limit", "buy", 0.001, _price(ex, BTC, bid * 0.85))
    ex.cancel_order(doomed["id"], BTC)

    assert _ids(ex.fetch_open_orders(BTC)) == {btc_open["id"]}
    assert _ids(ex.fetch_open_orders(ETH)) == {eth_open["id"]}
    assert _ids(ex.fetch_open_orders()) == {btc_open["id"], eth_open["id"]}

    orders = ex.fetch_orders(BTC)
    assert {o["id"]: o["status"] for o in orders} == {
        market["id"]: "closed",
        btc_open["id"]: "open",
        doomed["id"]: "canceled",
    }
    assert [o["timestamp"] for o in orders] == sorted(o["timestamp"] for o in orders)
    assert _ids(ex.fetch_closed_orders(BTC)) == {market["id"]}
    assert _ids(ex.fetch_orders(ETH)) == {eth_open["id"]}

    trades = ex.fetch_my_trades(BTC)
    assert trades and {t["order"] for t in trades} == {market["id"]}
    qty, quote, fee, _ = _fills(market)
    assert sum(_d(t["amount"]) for t in trades) == qty
    assert sum(_d(t["info"]["quoteQty"]) for t in trades) == quote
    assert sum(_d(t["fee"]["cost"]) for t in trades) == fee
    assert {t["fee"]["currency"] for t in trades} == {"BTC"}
    assert {(t["side"], t["takerOrMaker"]) for t in trades} == {("buy", "taker")}
    assert {int(t["id"]) for t in trades} == {f["tradeId"] for f in market["info"]["fills"]}
    assert ex.fetch_my_trades(ETH) == []

    fee_rates = ex.fetch_trading_fee(BTC)
    account = ex.fetch_balance()["info"]
    assert fee_rates["maker"] == float(account["commissionRates"]["maker"]) == float(FEE_RATE)
    assert fee_rates["taker"] == float(account["commissionRates"]["taker"]) == float(FEE_RATE)

    assert _ids(ex.cancel_all_orders(BTC)) == {btc_open["id"]}
    assert _ids(ex.cancel_all_orders(ETH)) == {eth_open["id"]}
    assert ex.fetch_open_orders() == []


def test_edit_order_cancels_and_replaces(base: str, operator: Sandex) -> None:
    ex = _trader(operator, base, "edit")
    assert ex.has["editOrder"]
    bid, _ = _top(ex)
    first = ex.create_order(BTC, "limit", "buy", 0.001, _price(ex, BTC, bid * 0.9))
    new_price = _price(ex, BTC, bid * 0.88)

    edited = ex.edit_order(first["id"], BTC, "limit", "buy", 0.002, new_price)
    assert edited["id"] != first["id"]
    assert (edited["status"], edited["price"], edited["amount"]) == ("open", new_price, 0.002)
    assert ex.fetch_order(first["id"], BTC)["status"] == "canceled"
    assert _ids(ex.fetch_open_orders(BTC)) == {edited["id"]}
    hold = _d(edited["info"]["price"]) * Decimal("0.002")
    assert account_balances(ex) == {"USDT": (START_USDT - hold, hold)}
    ex.cancel_order(edited["id"], BTC)


def test_test_order_places_nothing(base: str, operator: Sandex) -> None:
    ex = _trader(operator, base, "test-order")
    bid, _ = _top(ex)
    ex.create_order(BTC, "market", "buy", 0.001, None, {"test": True})
    ex.create_order(BTC, "limit", "buy", 0.001, _price(ex, BTC, bid * 0.9), {"test": True})
    assert ex.fetch_orders(BTC) == []
    assert account_balances(ex) == {"USDT": (START_USDT, ZERO)}
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):  # still checked against filters
        ex.create_order(BTC, "limit", "buy", 0.00002, _price(ex, BTC, bid * 0.9), {"test": True})


# -- errors --------------------------------------------------------------------------------


def test_errors_map_to_ccxt_exceptions(base: str, operator: Sandex) -> None:
    ex = _trader(operator, base, "errors")
    bid, _ = _top(ex)

    with pytest.raises(ccxt.InsufficientFunds):  # 1 BTC is ~60,000 USDT
        ex.create_order(BTC, "market", "buy", 1)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(BTC, "limit", "buy", 1, _price(ex, BTC, bid * 0.9))
    with pytest.raises(ccxt.InsufficientFunds):  # no BTC at all
        ex.create_order(BTC, "market", "sell", 0.001)

    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("987654321", BTC)
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order("987654321", BTC)

    # filter failures; ccxt rounds amounts and prices itself, so these go out raw
    raw = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        ex.private_post_order({**raw, "quantity": "0.001", "price": "50000.001"})
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        ex.private_post_order({**raw, "quantity": "0.0000011", "price": "50000"})
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):  # 0.00002 BTC is ~1 USDT
        ex.create_order(BTC, "limit", "buy", 0.00002, _price(ex, BTC, bid * 0.9))

    assert ex.fetch_orders(BTC) == []
    assert account_balances(ex) == {"USDT": (START_USDT, ZERO)}


# -- a key's risk policy -------------------------------------------------------------------


def test_symbol_allowlist_refuses_other_symbols(
    base: str, operator: Sandex, cli: Callable[..., None]
) -> None:
    _trader(operator, base, "allowlist")  # the user, funded
    creds = _key(operator, "allowlist", "btc-only")
    cli("keys", "update", creds.prefix, "--symbols", "BTCUSDT")
    ex = spot_ccxt_client(base, creds)
    eth_bid, _ = _top(ex, ETH)
    eth_price = _price(ex, ETH, eth_bid * 0.9)

    refusal = _refused(
        lambda: ex.create_order(ETH, "limit", "buy", 0.01, eth_price, {"test": True})
    )
    assert type(refusal) is ccxt.PermissionDenied, repr(refusal)
    with pytest.raises(ccxt.PermissionDenied, match="ETHUSDT"):
        ex.create_order(ETH, "limit", "buy", 0.01, eth_price)
    assert ex.fetch_open_orders() == []

    bid, _ = _top(ex)
    allowed = ex.create_order(BTC, "limit", "buy", 0.001, _price(ex, BTC, bid * 0.9))
    assert allowed["status"] == "open"
    ex.cancel_order(allowed["id"], BTC)


def test_max_notional_refuses_larger_orders(
    base: str, operator: Sandex, cli: Callable[..., None]
) -> None:
    _trader(operator, base, "notional")
    creds = _key(operator, "notional", "small-orders")
    cli("keys", "update", creds.prefix, "--max-notional", "100")
    ex = spot_ccxt_client(base, creds)
    bid, _ = _top(ex)
    price = _price(ex, BTC, bid * 0.9)  # 0.01 BTC is ~540 USDT, 0.001 BTC ~54 USDT

    refusal = _refused(lambda: ex.create_order(BTC, "limit", "buy", 0.01, price, {"test": True}))
    # -2010 with a message ccxt does not know: the generic map makes it InvalidOrder
    assert type(refusal) is ccxt.InvalidOrder, repr(refusal)
    assert '"code":-2010' in str(refusal) and "max order notional 100" in str(refusal)
    with pytest.raises(ccxt.InvalidOrder, match="max order notional"):
        ex.create_order(BTC, "limit", "buy", 0.01, price)
    with pytest.raises(ccxt.InvalidOrder, match="max order notional"):
        ex.create_order(BTC, "market", "buy", 0.01)
    assert ex.fetch_orders(BTC) == []

    small = ex.create_order(BTC, "limit", "buy", 0.001, price)
    assert small["status"] == "open"
    ex.cancel_order(small["id"], BTC)


def test_cancel_only_key_cancels_but_places_nothing(
    base: str, operator: Sandex, cli: Callable[..., None]
) -> None:
    _trader(operator, base, "cancel-only")
    creds = _key(operator, "cancel-only", "winding-down")
    ex = spot_ccxt_client(base, creds)
    bid, _ = _top(ex)
    price = _price(ex, BTC, bid * 0.9)
    resting = ex.create_order(BTC, "limit", "buy", 0.001, price)

    cli("keys", "update", creds.prefix, "--mode", "CANCEL_ONLY")
    refusal = _refused(lambda: ex.create_order(BTC, "limit", "buy", 0.001, price, {"test": True}))
    assert type(refusal) is ccxt.PermissionDenied, repr(refusal)
    with pytest.raises(ccxt.PermissionDenied, match="CANCEL_ONLY"):
        ex.create_order(BTC, "limit", "buy", 0.001, price)

    assert _ids(ex.fetch_open_orders(BTC)) == {resting["id"]}  # still reads
    assert ex.cancel_order(resting["id"], BTC)["status"] == "canceled"
    assert ex.fetch_open_orders(BTC) == []
    assert account_balances(ex) == {"USDT": (START_USDT, ZERO)}


# -- a deep book, and a thin one on command ---------------------------------------------------


def _buy_with_cost(ex: ccxt.binance, symbol: str, cost: float) -> tuple[Decimal, Decimal, int]:
    """A MARKET buy spending ``cost``: (average price / best ask before it - 1, the
    worst fill's, the number of price levels it took)."""
    _, ask = _top(ex, symbol)
    order = ex.create_market_buy_order_with_cost(symbol, cost)
    prices = [_d(f["price"]) for f in order["info"]["fills"]]
    assert prices == sorted(prices), prices
    qty, quote, _, _ = _fills(order)
    return quote / qty / _d(ask) - 1, prices[-1] / _d(ask) - 1, len(set(prices))


def test_the_book_is_deep_and_a_large_market_order_walks_it(base: str, operator: Sandex) -> None:
    ex = _trader(operator, base, "deep")
    book = ex.fetch_order_book(BTC, 1000)
    bids, asks = book["bids"], book["asks"]
    assert len(bids) >= 50 and len(asks) >= 50
    for side in (bids, asks):  # sizes grow away from the touch
        values = [_d(price) * _d(amount) for price, amount, *_ in side]
        assert sum(values[40:50]) > 5 * sum(values[:10])
        assert values[0] < Decimal(5_000)  # a touch of a few thousand USDT
    slippage, worst, levels = _buy_with_cost(ex, BTC, 9_000)
    assert levels >= 2  # 9,000 USDT is more than the touch holds
    assert Decimal("0.00002") < slippage < Decimal("0.003"), slippage
    assert worst < Decimal("0.005")


def test_a_thin_market_slips_a_market_order_further_and_recovers(
    base: str, operator: Sandex, cli: Callable[..., None]
) -> None:
    ex = _trader(operator, base, "thin")
    normal, _, _ = _buy_with_cost(ex, ETH, 3_000)

    def maker_depth() -> Decimal:
        book = ex.fetch_order_book(ETH, 1000)
        return sum((_d(amount) for _, amount, *_ in book["asks"]), ZERO)

    deep = maker_depth()
    cli("market", "liquidity", "ETHUSDT", "--factor", "0.1", "--for", "4s")
    deadline = time.monotonic() + 5
    while maker_depth() > deep * Decimal("0.2") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert maker_depth() < deep * Decimal("0.2")
    assert len(ex.fetch_order_book(ETH, 1000)["asks"]) >= 50  # thinner, not shorter
    thin, _, levels = _buy_with_cost(ex, ETH, 3_000)
    assert thin > 3 * normal and levels >= 5, (normal, thin)
    deadline = time.monotonic() + 10
    while maker_depth() < deep * Decimal("0.8") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert maker_depth() >= deep * Decimal("0.8")  # the usual book is back


# -- a flash crash triggers a stop-loss (last: it moves BTCUSDT for the rest of the module) --


def test_flash_crash_triggers_a_stop_loss_limit_sell(
    base: str, operator: Sandex, cli: Callable[..., None]
) -> None:
    ex = _trader(operator, base, "crash")
    buy = ex.create_order(BTC, "market", "buy", 0.01)
    qty, quote, fee, _ = _fills(buy)
    before = account_balances(ex)
    assert before == {"BTC": (qty - fee, ZERO), "USDT": (START_USDT - quote, ZERO)}

    bid, _ = _top(ex)
    stop_price = _price(ex, BTC, bid * 0.99)
    limit_price = _price(ex, BTC, bid * 0.9)  # deep enough to fill on the way down
    stop = ex.create_order(BTC, "limit", "sell", 0.005, limit_price, {"stopPrice": stop_price})
    assert stop["status"] == "open" and stop["info"]["type"] == "STOP_LOSS_LIMIT"
    assert ex.fetch_order(stop["id"], BTC)["info"]["isWorking"] is False

    cli("market", "crash", "BTCUSDT", "--drop", "5%", "--over", "2s")
    deadline = time.monotonic() + STOP_FILL_TIMEOUT_S
    while True:
        found = ex.fetch_order(stop["id"], BTC)
        if found["status"] != "open" or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert found["status"] == "closed", found["info"]
    assert found["info"]["status"] == "FILLED" and found["filled"] == 0.005
    assert limit_price <= found["average"] < bid, found["info"]

    proceeds = _d(found["info"]["cummulativeQuoteQty"])
    trades = [t for t in ex.fetch_my_trades(BTC) if t["order"] == stop["id"]]
    assert sum(_d(t["amount"]) for t in trades) == Decimal("0.005")
    assert sum(_d(t["info"]["quoteQty"]) for t in trades) == proceeds
    sell_fee = sum(_d(t["fee"]["cost"]) for t in trades)
    assert {t["fee"]["currency"] for t in trades} == {"USDT"}
    after = account_balances(ex)
    assert after["BTC"] == (before["BTC"][0] - Decimal("0.005"), ZERO)
    assert after["USDT"] == (before["USDT"][0] + proceeds - sell_fee, ZERO)
    assert after["USDT"][0] > before["USDT"][0]
    assert ex.fetch_ticker(BTC)["last"] < bid * 0.99

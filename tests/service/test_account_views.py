"""Account events as Binance's user data stream payloads (executionReport,
outboundAccountPosition, balanceUpdate), and what ccxt.pro reads from them (watch_orders,
watch_my_trades, watch_balance parse these objects)."""

from __future__ import annotations

import ccxt.pro

from exchange_support import BTC, NOW, SYMBOL, buy, sell
from exchange_support import market as market_order
from sandex.exchange import CancelOrder, OrderType, PlaceOrder, Side, TimeInForce, default_symbols
from sandex.exchange.account_events import BalanceDelta, BalancesChanged, ListStatus, OrderUpdate
from sandex.exchange.order_lists import ContingencyType, OrderList
from sandex.exchange.symbols import symbols_by_name
from sandex.exchange.venue import MAKER, Venue
from sandex.service.account_views import account_payload

ME, OTHER = 1, 2
UNIT = 10**8
SYMBOLS = symbols_by_name(default_symbols())
EVENT_TIME = NOW + 99


def updates_of(*steps) -> list[OrderUpdate]:
    venue = Venue(default_symbols())
    for account in (ME, OTHER, MAKER):
        venue.ledger.credit(account, "USDT", 100_000 * UNIT)
        venue.ledger.credit(account, "BTC", 2 * UNIT)
    got: list[OrderUpdate] = []
    venue.on_order_update(got.append)
    for step in steps:
        step(venue)
    return [u._replace(execution_id=n) for n, u in enumerate(got, 1)]


def test_a_partial_fill_as_an_execution_report():
    updates = updates_of(
        lambda v: v.place(sell("0.5", "50000", account=ME, cid="my-sell"), NOW),
        lambda v: v.place(buy("0.2", "50000", account=OTHER), NOW + 1),
    )
    mine = [u for u in updates if u.account == ME]
    report = account_payload(mine[-1], SYMBOLS, EVENT_TIME)
    fee = mine[-1].fill.commission  # type: ignore[union-attr]
    assert report == {
        "e": "executionReport",
        "E": EVENT_TIME,
        "s": SYMBOL,
        "c": "my-sell",
        "S": "SELL",
        "o": "LIMIT",
        "f": "GTC",
        "q": BTC.format_quantity(BTC.quantity_units("0.5")),
        "p": BTC.format_price(BTC.price_units("50000")),
        "P": BTC.format_price(0),
        "F": BTC.format_quantity(0),
        "g": -1,
        "C": "",
        "x": "TRADE",
        "X": "PARTIALLY_FILLED",
        "r": "NONE",
        "i": mine[-1].order.order_id,
        "l": BTC.format_quantity(BTC.quantity_units("0.2")),
        "z": BTC.format_quantity(BTC.quantity_units("0.2")),
        "L": BTC.format_price(BTC.price_units("50000")),
        "n": f"{fee / UNIT:.8f}",
        "N": "USDT",
        "T": NOW + 1,
        "t": mine[-1].fill.trade_id,  # type: ignore[union-attr]
        "I": mine[-1].execution_id,
        "w": True,
        "m": True,
        "M": False,
        "O": NOW,
        "Z": BTC.format_quote(BTC.quote_units("10000")),
        "Y": BTC.format_quote(BTC.quote_units("10000")),
        "Q": BTC.format_quote(0),
        "W": NOW,
        "V": "EXPIRE_TAKER",
    }
    assert fee == 10 * UNIT  # 0.1 % of 10,000 USDT
    new = account_payload(mine[0], SYMBOLS, EVENT_TIME)
    assert (new["x"], new["X"], new["l"], new["n"], new["N"], new["t"]) == (
        "NEW",
        "NEW",
        "0.00000000",
        "0",
        None,
        -1,
    )


def test_a_cancel_names_the_order_in_c_and_C_and_ccxt_reads_it_as_canceled():
    def cancel(v: Venue) -> None:
        [order] = v.open_orders(ME)
        v.cancel(CancelOrder(SYMBOL, ME, order.order_id), NOW + 3)

    updates = updates_of(lambda v: v.place(buy("0.1", "40000", account=ME, cid="bid"), NOW), cancel)
    report = account_payload(updates[-1], SYMBOLS, EVENT_TIME)
    assert (report["x"], report["X"], report["c"], report["C"], report["w"]) == (
        "CANCELED",
        "CANCELED",
        "bid",
        "bid",
        False,
    )
    assert "W" not in report
    parsed = ccxt.pro.binance().parse_ws_order(report)
    assert parsed["id"] == str(updates[-1].order.order_id)
    assert parsed["clientOrderId"] == "bid" and parsed["status"] == "canceled"
    assert parsed["timestamp"] == NOW


def test_ccxt_reads_a_fill_as_an_order_update_and_as_my_trade():
    updates = updates_of(
        lambda v: v.place(sell("0.5", "50000", account=OTHER), NOW),
        lambda v: v.place(buy("0.2", "50000", account=ME, cid="taker"), NOW + 1),
    )
    [_, trade] = [u for u in updates if u.account == ME]
    report = account_payload(trade, SYMBOLS, EVENT_TIME)
    exchange = ccxt.pro.binance()
    order = exchange.parse_ws_order(report)
    assert order["id"] == str(trade.order.order_id) and order["clientOrderId"] == "taker"
    assert order["status"] == "closed" and order["filled"] == 0.2 and order["cost"] == 10_000
    assert float(order["fee"]["cost"]) == 0.0002 and order["fee"]["currency"] == "BTC"
    my_trade = exchange.parse_ws_trade(report)
    assert my_trade["id"] == str(trade.fill.trade_id)  # type: ignore[union-attr]
    assert my_trade["order"] == str(trade.order.order_id)
    assert (my_trade["price"], my_trade["amount"], my_trade["cost"]) == (50_000, 0.2, 10_000)
    assert my_trade["takerOrMaker"] == "taker" and my_trade["side"] == "buy"
    assert float(my_trade["fee"]["cost"]) == 0.0002 and my_trade["fee"]["currency"] == "BTC"


def test_expiries_say_why():
    def ioc(v: Venue) -> None:
        v.place(sell("0.1", "50000", account=OTHER), NOW)
        v.place(buy("0.3", "50000", account=ME, tif=TimeInForce.IOC), NOW + 1)

    def sell_market(v: Venue) -> None:
        v.place(market_order(Side.SELL, "0.1", account=ME), NOW + 2)

    expired = [u for u in updates_of(ioc, sell_market) if u.execution.value == "EXPIRED"]
    reasons = [account_payload(u, SYMBOLS, EVENT_TIME)["eR"] for u in expired]
    assert reasons == ["UNFILLED_IOC_QUANTITY_EXPIRED", "INSUFFICIENT_LIQUIDITY"]


def test_self_trade_prevention_fields():
    from sandex.exchange import SelfTradePrevention

    updates = updates_of(
        lambda v: v.place(sell("0.1", "50000", account=ME), NOW),
        lambda v: v.place(
            buy("0.1", "50000", account=ME, stp=SelfTradePrevention.EXPIRE_TAKER), NOW + 1
        ),
    )
    maker, _, prevented = updates
    report = account_payload(prevented, SYMBOLS, EVENT_TIME)
    assert (report["x"], report["X"]) == ("TRADE_PREVENTION", "EXPIRED_IN_MATCH")
    assert (report["v"], report["A"], report["B"], report["U"]) == (
        1,
        BTC.format_quantity(BTC.quantity_units("0.1")),
        BTC.format_quantity(BTC.quantity_units("0.1")),
        maker.order.order_id,
    )
    assert report["pl"] == BTC.format_quantity(BTC.quantity_units("0.1"))
    assert (report["pL"], report["Cs"]) == (BTC.format_price(BTC.price_units("50000")), SYMBOL)
    assert report["pY"] == BTC.format_quote(BTC.quote_units("5000"))
    assert "eR" not in report


def test_balances_and_credits():
    position = account_payload(
        BalancesChanged(ME, NOW, [("BTC", 150_000_000, 5), ("USDT", 0, 100 * UNIT)]),
        SYMBOLS,
        EVENT_TIME,
    )
    assert position == {
        "e": "outboundAccountPosition",
        "E": EVENT_TIME,
        "u": NOW,
        "B": [
            {"a": "BTC", "f": "1.50000000", "l": "0.00000005"},
            {"a": "USDT", "f": "0.00000000", "l": "100.00000000"},
        ],
    }
    delta = account_payload(BalanceDelta(ME, "BTC", 100 * UNIT, NOW), SYMBOLS, EVENT_TIME)
    assert delta == {
        "e": "balanceUpdate",
        "E": EVENT_TIME,
        "a": "BTC",
        "d": "100.00000000",
        "T": NOW,
    }
    withdrawal = account_payload(BalanceDelta(ME, "BTC", -UNIT // 2, NOW), SYMBOLS, EVENT_TIME)
    assert withdrawal["d"] == "-0.50000000"

    exchange = ccxt.pro.binance()
    exchange.balance["spot"] = {}  # what watch_balance starts from
    client = _Client()
    exchange.handle_balance(client, position)
    assert exchange.balance["spot"]["BTC"]["free"] == 1.5
    assert exchange.balance["spot"]["USDT"]["used"] == 100
    exchange.handle_balance(client, delta)
    assert exchange.balance["spot"]["BTC"]["free"] == 101.5
    assert len(client.resolved) == 2


class _Client:
    """What ccxt's handle_balance asks of its WebSocket client: watch_balance's
    subscription (spot) and where the balance is resolved."""

    def __init__(self) -> None:
        self.subscriptions = {"spot": True}
        self.resolved: list[object] = []

    def resolve(self, result: object, message_hash: str) -> None:
        self.resolved.append(result)


def test_a_stop_shows_its_stop_price_and_is_not_on_the_book_until_triggered():
    updates = updates_of(
        lambda v: v.place(
            PlaceOrder(
                SYMBOL,
                ME,
                Side.SELL,
                OrderType.STOP_LOSS_LIMIT,
                quantity=BTC.quantity_units("0.1"),
                price=BTC.price_units("44900"),
                stop_price=BTC.price_units("45000"),
                time_in_force=TimeInForce.GTC,
            ),
            NOW,
        )
    )
    report = account_payload(updates[0], SYMBOLS, EVENT_TIME)
    assert report["P"] == BTC.format_price(BTC.price_units("45000"))
    assert (report["p"], report["w"]) == (BTC.format_price(BTC.price_units("44900")), False)
    assert "W" not in report


def test_an_order_list_as_list_status():
    order_list = OrderList(7, ContingencyType.OCO, SYMBOL, ME, "my-oco", NOW, (3, 4))
    payload = account_payload(
        ListStatus(ME, NOW + 5, order_list, True, ["a", "b"]), SYMBOLS, EVENT_TIME
    )
    assert payload == {
        "e": "listStatus",
        "E": EVENT_TIME,
        "s": SYMBOL,
        "g": 7,
        "c": "OCO",
        "l": "EXEC_STARTED",
        "L": "EXECUTING",
        "r": "NONE",
        "C": "my-oco",
        "T": NOW + 5,
        "O": [{"s": SYMBOL, "i": 3, "c": "a"}, {"s": SYMBOL, "i": 4, "c": "b"}],
    }
    done = account_payload(ListStatus(ME, NOW, order_list, False, ["a", "b"]), SYMBOLS, 0)
    assert (done["l"], done["L"]) == ("ALL_DONE", "ALL_DONE")

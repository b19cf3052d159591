"""MARKET orders by quantity and by quote amount (quoteOrderQty)."""

from __future__ import annotations

from dataclasses import replace

from exchange_support import (
    BTC,
    NOW,
    SYMBOL,
    buy,
    kinds,
    market,
    new_engine,
    px,
    qty,
    rejected,
    sell,
    trades,
)
from sandex.exchange import Engine, Expired, OrderStatus, Rejected, Side, outcome

BUY, SELL = Side.BUY, Side.SELL


def book_with_asks() -> Engine:
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(sell("0.2", "60010", account=3), NOW)
    return engine


def test_market_buy_by_quantity_sweeps_and_fills():
    engine = book_with_asks()
    events = engine.submit(market(BUY, "0.25"), NOW)
    assert [(t.price, t.quantity) for t in trades(events)] == [
        (px("60000"), qty("0.1")),
        (px("60010"), qty("0.15")),
    ]
    result = outcome(events, 3, qty("0.25"))
    assert result.status is OrderStatus.FILLED
    assert result.quote == px("60000") * qty("0.1") + px("60010") * qty("0.15")


def test_market_order_larger_than_the_book_expires_the_rest():
    engine = book_with_asks()
    events = engine.submit(market(BUY, "1"), NOW)
    assert kinds(events) == ["Accepted", "Trade", "Trade", "Expired"]
    assert events[-1] == Expired(3, 1, qty("0.7"), False, NOW)
    assert outcome(events, 3, qty("1")).status is OrderStatus.EXPIRED
    assert engine.depth(SYMBOL) == ([], [])


def test_market_order_on_an_empty_book_expires():
    engine = new_engine()
    events = engine.submit(market(SELL, "0.1"), NOW)
    assert kinds(events) == ["Accepted", "Expired"]
    assert outcome(events, 1, qty("0.1")).status is OrderStatus.EXPIRED


def test_market_buy_by_quote_spends_at_most_the_amount_in_whole_steps():
    engine = book_with_asks()
    events = engine.submit(market(BUY, quote="9000"), NOW)
    fills = trades(events)
    spent = sum(t.price * t.quantity for t in fills)
    assert spent <= BTC.quote_units("9000")
    # 6000 USDT buys the 0.1 at 60000; 3000 left buys 0.04999 at 60010 (0.05 would cost 3000.5)
    assert [(t.price, t.quantity) for t in fills] == [
        (px("60000"), qty("0.1")),
        (px("60010"), qty("0.04999")),
    ]
    assert outcome(events, 3).status is OrderStatus.FILLED
    assert fills[-1].taker_remaining == 0


def test_market_sell_by_quote_raises_at_most_the_amount():
    engine = new_engine()
    engine.submit(buy("0.1", "60000", account=2), NOW)
    engine.submit(buy("0.1", "59000", account=2), NOW)
    events = engine.submit(market(SELL, quote="7180"), NOW)
    fills = trades(events)
    assert [(t.price, t.quantity) for t in fills] == [
        (px("60000"), qty("0.1")),
        (px("59000"), qty("0.02")),
    ]
    assert sum(t.price * t.quantity for t in fills) == BTC.quote_units("7180")


def test_quote_market_order_that_outlasts_the_book_expires():
    engine = book_with_asks()
    events = engine.submit(market(BUY, quote="1000000"), NOW)
    assert kinds(events) == ["Accepted", "Trade", "Trade", "Expired"]
    assert events[-1] == Expired(3, 1, 0, False, NOW)
    result = outcome(events, 3)
    assert result.status is OrderStatus.EXPIRED
    assert result.executed == qty("0.3")


def test_quote_market_order_on_an_empty_book_is_rejected():
    engine = new_engine()
    events = engine.submit(market(BUY, quote="100"), NOW)
    assert rejected(events) == Rejected(
        -2010, "Order book liquidity is less than symbol minimum quantity."
    )


def test_quote_market_orders_can_be_switched_off():
    engine = Engine([replace(BTC, quote_order_qty_market_allowed=False)])
    engine.submit(sell("0.1", "60000", account=2), NOW)
    assert rejected(engine.submit(market(BUY, quote="100"), NOW)) == Rejected(
        -2010, "Quote order qty market orders are not support for this symbol."
    )


def test_market_lot_size_applies_to_market_orders_only():
    engine = new_engine()  # BTCUSDT: MARKET_LOT_SIZE maxQty 120
    assert rejected(engine.submit(market(BUY, "121"), NOW)) == Rejected(
        -1013, "Filter failure: MARKET_LOT_SIZE"
    )
    assert kinds(engine.submit(buy("121", "100"), NOW)) == ["Accepted"]


def test_market_notional_uses_the_average_trade_price():
    engine = book_with_asks()
    engine.submit(buy("0.1", "60000"), NOW)  # a trade at 60000 sets the average
    assert engine.average_price(SYMBOL, NOW) == px("60000")
    # 0.00008 BTC at ~60000 is 4.8 USDT, under minNotional 5 (applyMinToMarket)
    assert rejected(engine.submit(market(BUY, "0.00008"), NOW)) == Rejected(
        -1013, "Filter failure: NOTIONAL"
    )
    assert kinds(engine.submit(market(BUY, "0.0001"), NOW))[0] == "Accepted"


def test_market_notional_is_valued_at_the_average_not_the_last_price():
    engine = new_engine()
    engine.submit(sell("0.1", "40000", account=2), NOW)
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(buy("0.2", "60000"), NOW)  # trades at 40000 and 60000: average 50000
    engine.submit(sell("1", "60000", account=2), NOW)
    assert engine.last_price(SYMBOL) == px("60000")
    assert engine.average_price(SYMBOL, NOW) == px("50000")
    # 0.00009 BTC: 4.5 USDT at the average, 5.4 at the last price
    assert rejected(engine.submit(market(BUY, "0.00009"), NOW)).msg == "Filter failure: NOTIONAL"


def test_average_price_window_forgets_old_trades():
    engine = new_engine()
    engine.submit(sell("0.1", "50000", account=2), NOW)
    engine.submit(buy("0.1", "50000"), NOW)
    later = NOW + 10 * 60_000
    engine.submit(sell("0.1", "70000", account=2), later)
    engine.submit(buy("0.05", "70000"), later)
    assert engine.average_price(SYMBOL, later) == px("70000")
    engine.submit(buy("0.05", "70000"), later + 1)
    assert engine.average_price(SYMBOL, later + 60_000 * 30) == px("70000")  # the last price


def test_quote_below_min_notional_is_refused():
    engine = book_with_asks()
    assert rejected(engine.submit(market(BUY, quote="4.99"), NOW)) == Rejected(
        -1013, "Filter failure: NOTIONAL"
    )


def test_market_fill_prices_a_market_order_against_the_book():
    engine = book_with_asks()
    cost = px("60000") * qty("0.1") + px("60010") * qty("0.05")
    assert engine.market_fill(SYMBOL, BUY, qty("0.15"), account=99) == (cost, qty("0.15"))
    assert engine.market_fill(SYMBOL, BUY, qty("0.31"), account=99)[1] < qty("0.31")
    assert engine.market_fill(SYMBOL, SELL, qty("0.01"), account=99) == (0, 0)

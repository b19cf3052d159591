"""What an order must carry: parameters per type, client order ids, and the order-count filter."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exchange_support import (
    BTC,
    NOW,
    SYMBOL,
    accepted,
    buy,
    kinds,
    market,
    new_engine,
    px,
    qty,
    rejected,
    sell,
    stop,
)
from sandex.exchange import (
    CancelOrder,
    Engine,
    OrderType,
    PlaceOrder,
    Rejected,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

DUPLICATE = Rejected(-2010, "Duplicate order sent.")
GTC = TimeInForce.GTC


def order(kind: OrderType, **fields) -> PlaceOrder:
    return PlaceOrder(SYMBOL, 1, Side.BUY, kind, **fields)


def missing(name: str) -> Rejected:
    return Rejected(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def not_required(name: str) -> Rejected:
    return Rejected(-1106, f"Parameter '{name}' sent when not required.")


Q, P = qty("0.1"), px("60000")
TIF_NOT_REQUIRED = Rejected(-1114, "TimeInForce parameter sent when not required.")
BOTH_EMPTY = Rejected(
    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
)


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (order(OrderType.LIMIT, quantity=Q, price=P), missing("timeInForce")),
        (order(OrderType.LIMIT, price=P, time_in_force=GTC), missing("quantity")),
        (order(OrderType.LIMIT, quantity=Q, time_in_force=GTC), missing("price")),
        (
            order(OrderType.LIMIT, quantity=Q, price=P, time_in_force=GTC, stop_price=P),
            not_required("stopPrice"),
        ),
        (
            order(OrderType.LIMIT, quantity=Q, price=P, time_in_force=GTC, quote_quantity=1),
            not_required("quoteOrderQty"),
        ),
        (order(OrderType.LIMIT_MAKER, quantity=Q, price=P, time_in_force=GTC), TIF_NOT_REQUIRED),
        (order(OrderType.MARKET), BOTH_EMPTY),
        (order(OrderType.MARKET, quantity=Q, quote_quantity=10**9), not_required("quantity")),
        (order(OrderType.MARKET, quantity=Q, price=P), not_required("price")),
        (order(OrderType.MARKET, quantity=Q, time_in_force=GTC), TIF_NOT_REQUIRED),
        (order(OrderType.STOP_LOSS, quantity=Q), missing("stopPrice")),
        (
            order(OrderType.STOP_LOSS_LIMIT, quantity=Q, price=P, stop_price=P),
            missing("timeInForce"),
        ),
        (
            order(OrderType.TAKE_PROFIT_LIMIT, quantity=Q, time_in_force=GTC, stop_price=P),
            missing("price"),
        ),
    ],
)
def test_parameters_each_type_needs_or_refuses(command, error):
    assert new_engine().submit(command, NOW) == [error]


def test_amounts_must_be_ints():
    # the edge turns strings into units; a float slipping through is refused, not crawled
    engine = new_engine()
    illegal = [Rejected(-1100, "Illegal characters found in a parameter.")]
    assert engine.submit(market(Side.BUY, "0.1")._replace(quantity=0.1), NOW) == illegal
    assert engine.check(buy("0.1", "60000")._replace(price=60000.5), NOW) == illegal[0]


def test_values_of_the_wrong_type_are_refused_not_misread():
    # a transport that decodes commands must give enums; a bare string is not taken
    # for one (a "BUY" string must not become a sell)
    engine = new_engine()
    base = buy("0.1", "60000")
    assert engine.submit(base._replace(side="BUY"), NOW) == [Rejected(-1117, "Invalid side.")]
    assert engine.submit(base._replace(type="LIMIT"), NOW) == [
        Rejected(-1116, "Invalid orderType.")
    ]
    assert engine.submit(base._replace(time_in_force="GTC"), NOW) == [
        Rejected(-1115, "Invalid timeInForce.")
    ]
    assert engine.submit(base._replace(stp_mode="NONE"), NOW) == [
        Rejected(-1130, "Data sent for parameter 'selfTradePreventionMode' is not valid.")
    ]
    assert engine.depth(SYMBOL) == ([], [])
    assert accepted(engine.submit(base, NOW)).order_id == 1


def test_check_runs_the_static_checks_without_placing():
    engine = new_engine()
    assert engine.check(buy("0.1", "60000"), NOW) is None
    assert engine.check(buy("0.00001", "60000"), NOW) == Rejected(-1013, "Filter failure: NOTIONAL")
    assert engine.check(buy("0.1", "60000")._replace(symbol="NOPE"), NOW) == Rejected(
        -1121, "Invalid symbol."
    )
    assert engine.depth(SYMBOL) == ([], [])


@pytest.mark.parametrize(
    ("command", "msg"),
    [
        (buy("0.1", "0.01"), "Filter failure: NOTIONAL"),
        (buy("9001", "60000"), "Filter failure: LOT_SIZE"),
        (buy("0.1", "1000000")._replace(price=px("1000000") + 1), "Filter failure: PRICE_FILTER"),
        (buy("0.1", "60000")._replace(quantity=0), "Filter failure: LOT_SIZE"),
        (buy("0.1", "60000")._replace(price=0), "Filter failure: PRICE_FILTER"),
        (buy("100", "100000"), "Filter failure: NOTIONAL"),  # 10M > maxNotional 9M
    ],
)
def test_filter_failures_have_binances_messages(command, msg):
    assert new_engine().submit(command, NOW) == [Rejected(-1013, msg)]


def test_filters_on_a_symbol_whose_tick_is_not_a_unit():
    # tick 0.05 with two decimals: the fast path is off and the grid is checked
    five_cents = BTC.price_filter.tick_size * 5
    tick5 = replace(
        BTC, price_filter=replace(BTC.price_filter, min_price=five_cents, tick_size=five_cents)
    )
    engine = Engine([tick5])
    assert kinds(engine.submit(buy("0.1", "60000.05"), NOW)) == ["Accepted"]
    assert rejected(engine.submit(buy("0.1", "60000.06"), NOW)).msg == (
        "Filter failure: PRICE_FILTER"
    )
    events = engine.submit(sell("0.1", "60000", account=2), NOW)
    assert kinds(events) == ["Accepted", "Trade"]


def test_order_types_a_symbol_does_not_list_are_refused():
    engine = Engine([replace(BTC, order_types=(OrderType.LIMIT,))])
    assert rejected(engine.submit(market(Side.BUY, "0.1"), NOW)) == Rejected(
        -2010, "Market orders are not supported for this symbol."
    )
    assert rejected(
        engine.submit(stop(OrderType.STOP_LOSS_LIMIT, Side.SELL, "0.1", "50000", "50000"), NOW)
    ) == Rejected(-2010, "Stop loss limit orders are not supported for this symbol.")
    maker = buy("0.1", "60000", kind=OrderType.LIMIT_MAKER, tif=None)
    assert rejected(engine.submit(maker, NOW)) == Rejected(-1014, "Unsupported order combination.")


def test_a_halted_symbol_takes_no_orders():
    engine = Engine([replace(BTC, status="HALT")])
    assert rejected(engine.submit(buy("0.1", "60000"), NOW)) == Rejected(-2010, "Market is closed.")


def test_limit_factory_builds_the_same_order():
    built = PlaceOrder.limit(SYMBOL, 1, Side.BUY, Q, P)
    assert built == PlaceOrder(SYMBOL, 1, Side.BUY, OrderType.LIMIT, Q, P, GTC)
    assert type(built) is PlaceOrder
    assert built.stp_mode is None and built.client_order_id is None
    with_ids = PlaceOrder.limit(
        SYMBOL, 1, Side.SELL, Q, P, TimeInForce.IOC, "cid", SelfTradePrevention.NONE
    )
    assert (with_ids.time_in_force, with_ids.client_order_id, with_ids.stp_mode) == (
        TimeInForce.IOC,
        "cid",
        SelfTradePrevention.NONE,
    )


# -- client order ids -----------------------------------------------------------------------


def test_a_duplicate_open_client_order_id_is_rejected():
    engine = new_engine()
    assert kinds(engine.submit(buy("0.1", "59000", cid="retry-me"), NOW)) == ["Accepted"]
    assert engine.submit(buy("0.1", "59000", cid="retry-me"), NOW) == [DUPLICATE]
    assert engine.submit(
        stop(OrderType.STOP_LOSS, Side.SELL, "0.1", "50000", cid="retry-me"), NOW
    ) == [DUPLICATE]
    assert len(engine.open_orders(SYMBOL)) == 1


def test_client_order_ids_belong_to_an_account():
    engine = new_engine()
    engine.submit(buy("0.1", "59000", cid="same"), NOW)
    assert kinds(engine.submit(buy("0.1", "59000", cid="same", account=2), NOW)) == ["Accepted"]


def test_a_client_order_id_is_free_again_once_its_order_is_closed():
    engine = new_engine()
    engine.submit(buy("0.1", "59000", cid="a"), NOW)
    engine.submit(CancelOrder(SYMBOL, 1, client_order_id="a"), NOW)
    assert kinds(engine.submit(buy("0.1", "59000", cid="a"), NOW)) == ["Accepted"]
    engine.submit(sell("0.1", "59000", account=2), NOW)  # fills it
    assert kinds(engine.submit(buy("0.1", "59000", cid="a"), NOW)) == ["Accepted"]


def test_a_pending_stops_client_order_id_is_taken():
    engine = new_engine()
    engine.submit(stop(OrderType.STOP_LOSS, Side.SELL, "0.1", "50000", cid="s"), NOW)
    assert engine.submit(buy("0.1", "59000", cid="s"), NOW) == [DUPLICATE]


def test_stale_client_order_ids_are_pruned():
    engine = new_engine()
    for n in range(3000):
        engine.submit(buy("0.1", "59000", cid=f"c{n}"), NOW)
        engine.submit(CancelOrder(SYMBOL, 1, client_order_id=f"c{n}"), NOW)
    engine.submit(buy("0.1", "59000", cid="open"), NOW)
    market_state = engine._markets[SYMBOL]
    assert len(market_state.cids) < 2100
    assert engine.submit(buy("0.1", "59000", cid="open"), NOW) == [DUPLICATE]
    assert [o.client_order_id for o in engine.open_orders(SYMBOL, 1)] == ["open"]


# -- MAX_NUM_ORDERS -------------------------------------------------------------------------


def test_max_num_orders_counts_resting_orders_and_stops():
    engine = Engine([replace(BTC, max_num_orders=3)])
    engine.submit(buy("0.1", "59000"), NOW)
    assert kinds(engine.submit(stop(OrderType.STOP_LOSS, Side.SELL, "0.1", "50000"), NOW)) == [
        "Accepted"
    ]
    engine.submit(
        PlaceOrder(SYMBOL, 1, Side.BUY, OrderType.LIMIT_MAKER, quantity=Q, price=px("58000")), NOW
    )
    too_many = Rejected(-1013, "Filter failure: MAX_NUM_ORDERS")
    assert engine.submit(buy("0.1", "59000"), NOW) == [too_many]
    assert engine.submit(market(Side.SELL, "0.01"), NOW) == [too_many]
    assert kinds(engine.submit(buy("0.1", "59000", account=2), NOW)) == ["Accepted"]
    engine.submit(CancelOrder(SYMBOL, 1, order_id=1), NOW)
    assert accepted(engine.submit(buy("0.1", "59000"), NOW)).order_id == 5

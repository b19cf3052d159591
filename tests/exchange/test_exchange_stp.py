"""Self-trade prevention: the taker's mode decides; EXPIRE_TAKER is the default."""

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
from sandex.exchange import (
    Engine,
    Expired,
    Level,
    OrderStatus,
    Rejected,
    SelfTradePrevented,
    SelfTradePrevention,
    Side,
    TimeInForce,
    outcome,
)

NONE = SelfTradePrevention.NONE
TAKER = SelfTradePrevention.EXPIRE_TAKER
MAKER = SelfTradePrevention.EXPIRE_MAKER
BOTH = SelfTradePrevention.EXPIRE_BOTH


def test_default_mode_expires_the_taker_and_leaves_the_maker():
    engine = new_engine()
    engine.submit(sell("0.1", "60000"), NOW)
    events = engine.submit(buy("0.1", "60000"), NOW)
    assert kinds(events) == ["Accepted", "SelfTradePrevented", "Expired"]
    assert events[0].stp_mode is TAKER
    assert events[1] == SelfTradePrevented(2, 1, px("60000"), qty("0.1"), 0, TAKER, NOW)
    assert events[2] == Expired(2, 1, qty("0.1"), True, NOW)
    assert outcome(events, 2, qty("0.1")).status is OrderStatus.EXPIRED_IN_MATCH
    assert engine.depth(SYMBOL) == ([], [Level(px("60000"), qty("0.1"))])


def test_expire_taker_keeps_the_trades_made_before_the_own_order():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(sell("0.1", "60001"), NOW)
    events = engine.submit(buy("0.3", "60002"), NOW)
    assert kinds(events) == ["Accepted", "Trade", "SelfTradePrevented", "Expired"]
    assert events[-1] == Expired(3, 1, qty("0.2"), True, NOW)
    assert engine.depth(SYMBOL) == ([], [Level(px("60001"), qty("0.1"))])


def test_expire_maker_removes_own_orders_and_goes_on():
    # Binance's STP FAQ, scenario B (prices x10 to pass minNotional): the own makers
    # expire, the taker rests
    engine = new_engine()
    engine.submit(buy("1.2", "12"), NOW)
    engine.submit(buy("1.3", "11"), NOW)
    engine.submit(buy("8.1", "10"), NOW)
    events = engine.submit(sell("3", "10", stp=MAKER), NOW)
    assert kinds(events) == ["Accepted"] + ["SelfTradePrevented", "Expired"] * 3
    assert [e.order_id for e in events if isinstance(e, Expired)] == [1, 2, 3]
    assert all(e.in_match for e in events if isinstance(e, Expired))
    assert engine.depth(SYMBOL) == ([], [Level(px("10"), qty("3"))])


def test_expire_maker_trades_with_others_behind_the_own_order():
    engine = new_engine()
    engine.submit(sell("0.1", "60000"), NOW)
    engine.submit(sell("0.1", "60000", account=2), NOW)
    events = engine.submit(buy("0.1", "60000", stp=MAKER), NOW)
    assert kinds(events) == ["Accepted", "SelfTradePrevented", "Expired", "Trade"]
    assert trades(events)[0].maker_account == 2
    assert outcome(events, 3, qty("0.1")).status is OrderStatus.FILLED


def test_expire_both():
    engine = new_engine()
    engine.submit(sell("0.5", "60000"), NOW)
    events = engine.submit(buy("0.2", "60000", stp=BOTH), NOW)
    assert kinds(events) == ["Accepted", "SelfTradePrevented", "Expired", "Expired"]
    assert events[1] == SelfTradePrevented(2, 1, px("60000"), qty("0.2"), qty("0.5"), BOTH, NOW)
    assert {(e.order_id, e.remaining) for e in events if isinstance(e, Expired)} == {
        (1, qty("0.5")),
        (2, qty("0.2")),
    }
    assert engine.depth(SYMBOL) == ([], [])


def test_none_lets_an_account_trade_with_itself():
    engine = new_engine()
    engine.submit(sell("0.1", "60000"), NOW)
    events = engine.submit(buy("0.1", "60000", stp=NONE), NOW)
    assert kinds(events) == ["Accepted", "Trade"]
    assert trades(events)[0].maker_account == trades(events)[0].taker_account == 1


def test_the_makers_mode_does_not_matter():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", stp=NONE), NOW)
    events = engine.submit(buy("0.1", "60000"), NOW)
    assert kinds(events) == ["Accepted", "SelfTradePrevented", "Expired"]


def test_market_orders_obey_stp_too():
    engine = new_engine()
    engine.submit(sell("0.1", "60000"), NOW)
    engine.submit(sell("0.1", "60001", account=2), NOW)
    events = engine.submit(market(Side.BUY, "0.2", stp=MAKER), NOW)
    assert kinds(events) == ["Accepted", "SelfTradePrevented", "Expired", "Trade", "Expired"]
    events = engine.submit(market(Side.SELL, quote="100"), NOW)  # no bids at all
    assert rejected(events).code == -2010


def test_fok_counts_only_what_stp_lets_it_reach():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(sell("0.1", "60000"), NOW)
    engine.submit(sell("0.1", "60000", account=3), NOW)
    events = engine.submit(buy("0.2", "60000", tif=TimeInForce.FOK), NOW)
    assert kinds(events) == ["Accepted", "Expired"]  # EXPIRE_TAKER would stop at the own order
    events = engine.submit(buy("0.2", "60000", tif=TimeInForce.FOK, stp=MAKER), NOW)
    assert [t.maker_account for t in trades(events)] == [2, 3]


def test_a_symbol_may_restrict_the_modes():
    engine = Engine([replace(BTC, allowed_stp_modes=(NONE, TAKER))])
    assert rejected(engine.submit(buy("0.1", "60000", stp=MAKER), NOW)) == Rejected(
        -1013, "This symbol does not allow the specified self-trade prevention mode."
    )
    assert kinds(engine.submit(buy("0.1", "60000", stp=NONE), NOW)) == ["Accepted"]

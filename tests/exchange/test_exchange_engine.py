"""The engine's read side, snapshots, the outcome fold, and the DESIGN §6 workload."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from exchange_support import (
    NOW,
    SYMBOL,
    accepted,
    buy,
    new_engine,
    px,
    qty,
    sell,
    stop,
)
from sandex.exchange import (
    CancelOrder,
    InvalidMarket,
    Level,
    OpenOrder,
    OrderStatus,
    OrderType,
    Side,
    outcome,
)

BENCH = Path(__file__).resolve().parents[2] / "bench" / "engine.py"


def test_depth_is_best_first_and_limited():
    engine = new_engine()
    for price in ("59990", "60000", "59980"):
        engine.submit(buy("0.1", price), NOW)
    engine.submit(buy("0.2", "60000", account=2), NOW)
    for price in ("60020", "60010"):
        engine.submit(sell("0.3", price, account=3), NOW)
    bids, asks = engine.depth(SYMBOL, 2)
    assert bids == [Level(px("60000"), qty("0.3")), Level(px("59990"), qty("0.1"))]
    assert asks == [Level(px("60010"), qty("0.3")), Level(px("60020"), qty("0.3"))]
    assert engine.best_bid(SYMBOL) == Level(px("60000"), qty("0.3"))
    assert engine.best_ask(SYMBOL) == Level(px("60010"), qty("0.3"))


def test_levels_emptied_by_cancels_disappear_from_the_read_side():
    engine = new_engine()
    engine.submit(buy("0.1", "60000"), NOW)  # 1
    engine.submit(buy("0.1", "59000"), NOW)  # 2
    engine.submit(buy("0.1", "58000"), NOW)  # 3

    engine.submit(CancelOrder(SYMBOL, 1, order_id=2), NOW)  # a level below the top
    engine.submit(CancelOrder(SYMBOL, 1, order_id=1), NOW)  # the top
    assert engine.depth(SYMBOL) == ([Level(px("58000"), qty("0.1"))], [])
    assert engine.best_bid(SYMBOL) == Level(px("58000"), qty("0.1"))
    events = engine.submit(sell("0.1", "57000", account=2), NOW)
    assert [t.maker_order_id for t in events[1:]] == [3]


def test_open_orders_of_an_account_in_time_order():
    engine = new_engine()
    engine.submit(buy("0.1", "59000", cid="a"), NOW)
    engine.submit(sell("0.2", "61000", account=2), NOW)
    engine.submit(sell("0.3", "62000"), NOW)
    assert engine.open_orders(SYMBOL, 1) == [
        OpenOrder(1, 1, Side.BUY, px("59000"), qty("0.1"), qty("0.1"), "a"),
        OpenOrder(3, 1, Side.SELL, px("62000"), qty("0.3"), qty("0.3"), None),
    ]
    assert [o.order_id for o in engine.open_orders(SYMBOL)] == [1, 2, 3]
    assert engine.open_orders(SYMBOL, 9) == []


def test_read_side_refuses_an_unknown_symbol():
    with pytest.raises(InvalidMarket):
        new_engine().depth("NOPE")


def test_snapshot_restores_books_stops_ids_and_client_order_ids():
    engine = new_engine()
    engine.submit(sell("0.5", "60000", account=2, cid="maker"), NOW)
    engine.submit(buy("0.2", "60000"), NOW)
    engine.submit(buy("0.1", "59000", cid="bid"), NOW)
    engine.submit(stop(OrderType.STOP_LOSS, Side.SELL, "0.1", "58000", cid="sl"), NOW)
    snap = engine.snapshot(SYMBOL)
    assert (snap.next_order_id, snap.next_trade_id, snap.last_price) == (5, 2, px("60000"))
    assert [(o.order_id, o.remaining, o.client_order_id) for o in snap.resting] == [
        (3, qty("0.1"), "bid"),
        (1, qty("0.3"), "maker"),
    ]
    restored = new_engine()
    restored.restore(snap)
    assert restored.snapshot(SYMBOL) == snap
    assert restored.submit(buy("0.1", "1", cid="bid"), NOW) == engine.submit(
        buy("0.1", "1", cid="bid"), NOW
    )
    events = restored.submit(buy("0.3", "60000", account=3), NOW)
    assert accepted(events).order_id == 5
    assert events[1].trade_id == 2 and events[1].maker_order_id == 1
    with pytest.raises(InvalidMarket, match="empty book"):
        restored.restore(snap)


def test_outcome_folds_events_into_binance_statuses():
    engine = new_engine()
    engine.submit(sell("0.1", "60000", account=2), NOW)
    engine.submit(sell("0.1", "60010", account=2), NOW)
    events = engine.submit(buy("0.3", "60010"), NOW)
    taker = outcome(events, 3, qty("0.3"))
    assert taker.status is OrderStatus.PARTIALLY_FILLED
    assert taker.executed == qty("0.2")
    assert taker.quote == px("60000") * qty("0.1") + px("60010") * qty("0.1")
    assert len(taker.trades) == 2
    assert outcome(events, 1, qty("0.1")).status is OrderStatus.FILLED
    assert outcome(engine.submit(buy("0.1", "1"), NOW), 4, qty("0.1")).status is OrderStatus.NEW


def test_the_design_workload_yields_37951_trades():
    bench = runpy.run_path(str(BENCH))
    _seconds, trades = bench["run"](100_000)
    assert trades == 37_951


def test_engine_is_deterministic():
    def play() -> list:
        engine = new_engine()
        out = []
        for n in range(200):
            side = buy if n % 3 else sell
            out += engine.submit(side("0.1", str(60000 + (n * 7) % 13), account=n % 4), NOW + n)
        return out

    assert play() == play()

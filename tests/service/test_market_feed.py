"""The engine's public events and a gateway's read model built from them: whatever the
engine did, the read model's books, last prices and average prices are the engine's."""

from __future__ import annotations

import random

from exchange_support import NOW, SYMBOL, buy, new_engine, px, qty, sell
from sandex.exchange import MarketData, default_symbols
from sandex.exchange.events import Trade
from sandex.exchange.symbols import symbols_by_name
from sandex.service.market_feed import BookChange, MarketFeed, MarketReadModel

SYMBOLS = symbols_by_name(default_symbols())


def _model() -> tuple[MarketReadModel, list[str]]:
    gaps: list[str] = []
    model = MarketReadModel(SYMBOLS, MarketData(SYMBOLS.values()), on_gap=lambda: gaps.append(""))
    return model, gaps


def _same_as_the_engine(model: MarketReadModel, engine: object, now: int) -> None:
    for name in SYMBOLS:
        assert model.depth(name, 5000) == engine.depth(name, 5000)  # type: ignore[attr-defined]
        assert model.best_bid(name) == engine.best_bid(name)  # type: ignore[attr-defined]
        assert model.best_ask(name) == engine.best_ask(name)  # type: ignore[attr-defined]
        assert model.last_price(name) == engine.last_price(name)  # type: ignore[attr-defined]
        assert model.average_price(name, now) == engine.average_price(name, now)  # type: ignore[attr-defined]


def test_a_read_model_fed_by_the_feed_matches_the_engine_through_random_trading() -> None:
    engine = new_engine()
    feed = MarketFeed(engine, SYMBOLS, now=NOW)
    model, gaps = _model()
    model.load(feed.snapshot())
    rng = random.Random(5)
    now = NOW
    for step in range(300):
        now += rng.randint(1, 20_000)
        price = str(50_000 + rng.randint(-50, 50) * 10)
        side = buy if rng.random() < 0.5 else sell
        events = engine.submit(side("0.01", price, account=rng.randint(1, 4)), now)
        for event in events:
            if isinstance(event, Trade):
                feed.record(SYMBOL, event)
        if step % 7 == 0:
            for event in feed.take():
                model.apply(event)
            _same_as_the_engine(model, engine, now)
    for event in feed.take():
        model.apply(event)
    _same_as_the_engine(model, engine, now)
    assert gaps == []


def test_a_missed_change_asks_for_a_snapshot_and_the_snapshot_heals_the_book() -> None:
    engine = new_engine()
    feed = MarketFeed(engine, SYMBOLS, now=NOW)
    model, gaps = _model()
    model.load(feed.snapshot())
    engine.submit(buy("0.01", "49000"), NOW)
    feed.take()  # lost on the way
    engine.submit(buy("0.02", "48000"), NOW + 1)
    (change,) = feed.take()
    assert isinstance(change, BookChange)
    model.apply(change)
    assert gaps == [""] and not model.ready
    model.load(feed.snapshot())
    assert model.ready
    _same_as_the_engine(model, engine, NOW + 1)


def test_changes_already_in_a_snapshot_are_skipped_and_a_restarted_engine_is_a_gap() -> None:
    engine = new_engine()
    feed = MarketFeed(engine, SYMBOLS, now=NOW)
    engine.submit(buy("0.01", "49000"), NOW)
    old = feed.take()
    model, gaps = _model()
    model.load(feed.snapshot())
    for event in old:  # read from the stream after the snapshot: no harm done
        model.apply(event)
    assert model.depth(SYMBOL, 10) == engine.depth(SYMBOL, 10) and gaps == []
    restarted = MarketFeed(engine, SYMBOLS, now=NOW + 60_000)
    engine.submit(buy("0.01", "48000"), NOW + 60_001)
    for event in restarted.take():
        model.apply(event)
    assert gaps == [""]  # its update ids jumped: the gateway takes a new snapshot


def test_a_trade_is_forwarded_once_to_market_data() -> None:
    engine = new_engine()
    feed = MarketFeed(engine, SYMBOLS, now=NOW)
    model, _ = _model()
    model.load(feed.snapshot())
    engine.submit(sell("0.01", "50000", account=2), NOW)
    for event in engine.submit(buy("0.01", "50000", account=3), NOW + 1):
        if isinstance(event, Trade):
            feed.record(SYMBOL, event)
    events = feed.take()
    for event in events + events:  # delivered twice
        model.apply(event)
    trades = model.market_data.recent_trades(SYMBOL, 10)
    assert [(t.price, t.quantity) for t in trades] == [(px("50000"), qty("0.01"))]
    assert model.last_price(SYMBOL) == px("50000")

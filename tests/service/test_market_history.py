"""Klines and the public trade tape survive a restart (SQLite and PostgreSQL): the engine
writes every trade and the 1m candles it changed with each batch, and a restarted engine,
or a gateway that starts from storage and then follows the engine's events, answers
``/api/v3/klines``, ``/api/v3/trades`` and ``/api/v3/aggTrades`` as the engine did.

A "restart" is a new :class:`LocalExchange` over the same database, started as
``sandex serve`` starts it (see tests/service/test_trading.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from exchange_support import SYMBOL, buy, market, sell
from sandex.bootstrap import Sandex
from sandex.exchange import MarketData, Side
from sandex.exchange.events import Trade
from sandex.exchange.klines import INTERVALS, Candle
from sandex.service.market_feed import MarketReadModel, PublicTradeEvent
from sandex.service.market_simulator import KEEP_MINUTES_MS
from sandex.storage.exchange_store import SqlExchangeStore
from trading_support import LocalExchange, new_exchange

NOW = 1_800_000_000_000
START = NOW + 37 * 60_000 + 1234  # mid-hour, as a server starts
ALICE, BOB = 1, 2
UNIT = 10**8

Open = Callable[..., LocalExchange]


@pytest.fixture
def open_exchange(sandex: Sandex) -> Iterator[Open]:
    started: list[LocalExchange] = []

    def start(*, now: int = START, **kwargs: Any) -> LocalExchange:
        exchange = new_exchange(sandex, **kwargs)
        exchange.start(now)
        started.append(exchange)
        return exchange

    yield start
    for exchange in started:
        exchange.close()


def fund(exchange: LocalExchange, account: int, asset: str, amount: str, now: int) -> None:
    exchange.store.add_credit(account, asset, int(Decimal(amount) * UNIT), "test", now)
    exchange.apply_credits(exchange.store.pending_credits(), now)
    exchange.durable()


def trade_between_alice_and_bob(exchange: LocalExchange, rounds: int, now: int) -> int:
    """``rounds`` crossings, a few seconds apart; the time after the last."""
    for i in range(rounds):
        at = now + i * 7_000
        price = str(60_000 + (i * 37) % 500)
        exchange.place(sell("0.01", price, account=BOB), at)
        exchange.place(buy("0.004", price, account=ALICE), at)
        exchange.place(buy("0.006", price, account=ALICE), at + 1)
    exchange.durable()
    return now + rounds * 7_000


def answers(md: MarketData, now: int, *, end: int | None = None) -> dict[str, object]:
    """What the public market-data routes read (their bodies are these, formatted)."""
    out: dict[str, object] = {
        f"klines {interval}": md.klines(SYMBOL, interval, end=end, limit=1000, now=now)
        for interval in INTERVALS
    }
    out["trades"] = md.recent_trades(SYMBOL, 1000)
    out["historicalTrades"] = md.historical_trades(SYMBOL, 50, from_id=2)
    out["aggTrades"] = md.agg_trades(SYMBOL, limit=1000)
    out["ticker"] = md.ticker(SYMBOL, now)
    return out


def backfilled(md: MarketData, now: int) -> dict[str, list[Candle]]:
    """The candles of every interval that closed before the exchange first started."""
    return {
        interval: [
            c
            for c in md.klines(SYMBOL, interval, end=START, limit=1000, now=now)
            if c.close_time < START
        ]
        for interval in INTERVALS
    }


def test_klines_trades_and_tickers_read_the_same_after_a_restart(open_exchange: Open) -> None:
    exchange = open_exchange()
    fund(exchange, ALICE, "USDT", "100000", START)
    fund(exchange, BOB, "BTC", "10", START)
    later = trade_between_alice_and_bob(exchange, 40, START + 1000)
    before = answers(exchange.market_data, later)
    assert len(before["trades"]) == 80  # type: ignore[arg-type]
    exchange.close()

    again = open_exchange(now=later + 60_000)
    assert answers(again.market_data, later) == before
    # and it trades on from there: trade ids, aggregate ids and candles continue
    trade_between_alice_and_bob(again, 2, later + 60_000)
    trades = again.market_data.recent_trades(SYMBOL, 1000)
    assert [t.id for t in trades] == list(range(1, 85))
    aggs = again.market_data.agg_trades(SYMBOL, limit=1000)
    assert len({a.id for a in aggs}) == len(aggs)


def test_the_simulated_history_and_its_trades_read_the_same_after_a_restart(
    open_exchange: Open,
) -> None:
    exchange = open_exchange(simulate=True, seed=11)
    fund(exchange, ALICE, "USDT", "100000", START)
    exchange.place(market(Side.BUY, "0.05", account=ALICE), START + 1)
    for i in range(1, 241):
        exchange.tick(START + i * 500)
    exchange.durable()
    later = START + 240 * 500
    md = exchange.market_data
    history = backfilled(md, later)
    assert all(history.values())
    minutes = md.klines(SYMBOL, "1m", end=later, limit=1000, now=later)
    seconds = md.klines(SYMBOL, "1s", end=later, limit=1000, now=later)
    tape = md.recent_trades(SYMBOL, 1000)
    assert tape and any(m.trades for m in minutes)
    exchange.close()

    again = open_exchange(simulate=True, seed=11, now=later + 60_000)
    md = again.market_data
    assert backfilled(md, later) == history
    assert md.klines(SYMBOL, "1m", end=later, limit=1000, now=later) == minutes
    assert md.klines(SYMBOL, "1s", end=later, limit=1000, now=later) == seconds
    assert [t for t in md.recent_trades(SYMBOL, 1000) if t.id <= tape[-1].id][-len(tape) :] == (
        tape
    )


def test_a_gateway_starts_from_storage_then_follows_the_engines_trades(
    sandex: Sandex, open_exchange: Open
) -> None:
    exchange = open_exchange()
    published: list[PublicTradeEvent] = []

    def publish(symbol: str, trade: Trade) -> None:
        published.append(PublicTradeEvent(symbol, trade))

    exchange.venue.on_trade(publish)
    fund(exchange, ALICE, "USDT", "100000", START)
    fund(exchange, BOB, "BTC", "10", START)
    now = trade_between_alice_and_bob(exchange, 10, START + 1000)

    store = SqlExchangeStore(sandex.db)
    gateway = MarketReadModel(exchange.symbols, MarketData(exchange.symbols.values()))
    gateway.load_history(store.market_history(gateway.market_data.keep_trades))
    now = trade_between_alice_and_bob(exchange, 5, now + 30_000)
    for event in published:  # the events it follows overlap what storage had: once each
        gateway.apply(event)
    assert answers(gateway.market_data, now) == answers(exchange.market_data, now)
    assert gateway.last_price(SYMBOL) == exchange.engine.last_price(SYMBOL)

    # events missed (a gap): it catches up from storage, by trade id
    now = trade_between_alice_and_bob(exchange, 3, now + 30_000)
    gateway.catch_up(store.public_trades(SYMBOL, gateway.next_trade_id(SYMBOL), 1000))
    assert (
        answers(gateway.market_data, now)["trades"] == answers(exchange.market_data, now)["trades"]
    )
    klines = answers(gateway.market_data, now)["klines 1m"]
    assert klines == answers(exchange.market_data, now)["klines 1m"]
    store.close()


def test_a_restart_forgets_stored_minutes_past_their_retention_but_keeps_the_last_price(
    open_exchange: Open,
) -> None:
    exchange = open_exchange(simulate=True, seed=3)
    fund(exchange, ALICE, "USDT", "100000", START)
    fund(exchange, BOB, "BTC", "10", START)
    later = trade_between_alice_and_bob(exchange, 20, START + 1000)
    exchange.close()
    month = 40 * 24 * 3600_000

    again = open_exchange(simulate=True, seed=3, now=later + month)
    stored = again.store.market_history(again.market_data.keep_trades)[SYMBOL]
    old = [c for c in stored.minutes if c.open_time < later + month - KEEP_MINUTES_MS]
    assert [c.open_time for c in old] == [later - later % 60_000]  # the last price kept
    assert stored.backfill is not None and stored.backfill.anchor == old[0].open_time
    assert [t.id for t in stored.trades][:40] == list(range(1, 41))  # the tape is kept
    candles = again.market_data.klines(SYMBOL, "1m", limit=1000, now=later + month)
    assert len(candles) == 1000 and all(c.open_time < c.close_time for c in candles)

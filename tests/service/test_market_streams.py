"""The market streams over the embedded exchange as ``sandex serve`` wires it: orders go
through the engine and the journal into storage, the committed events into the read
model, and from it to the streams' subscribers. Payloads are checked field by field
against Binance's (reference/binance-websocket.md §2), and the depth diffs against the
order-book sync rules the clients apply to them."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from exchange_support import BTC, SYMBOL, buy, new_engine, sell
from sandex.bootstrap import Sandex
from sandex.exchange import MarketData, default_symbols
from sandex.exchange.events import Trade
from sandex.exchange.symbols import symbols_by_name
from sandex.http import Request
from sandex.http.market_data import routes as market_data_routes
from sandex.service.market_feed import MarketFeed, MarketReadModel
from sandex.service.market_streams import MarketStreams
from trading_support import LocalExchange, new_exchange

NOW = 1_800_000_000_000  # a whole minute
ALICE, BOB = 1, 2
UNIT = 10**8
SYMBOLS = symbols_by_name(default_symbols())


class Clock:
    def __init__(self, now: int) -> None:
        self.ms = now

    def now(self) -> int:
        return self.ms


class Sink:
    """A subscriber that keeps what it is sent, decoded."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Any]] = []

    def push(self, stream: str, payload: bytes) -> None:
        self.got.append((stream, json.loads(payload)))

    def of(self, stream: str) -> list[Any]:
        return [data for name, data in self.got if name == stream]


class Broken:
    def push(self, stream: str, payload: bytes) -> None:
        raise ConnectionResetError("the peer went away")


class Market:
    """An embedded exchange, its streams, and a clock the test moves."""

    def __init__(self, exchange: LocalExchange) -> None:
        self.exchange = exchange
        self.clock = Clock(NOW)
        self.model = exchange.market.model
        self.streams = MarketStreams(exchange.symbols, self.model, self.clock)

    def place(self, *orders: Any) -> None:
        for order in orders:
            self.exchange.place(order, self.clock.ms)

    def tick(self, ms: int = 100) -> None:
        self.clock.ms += ms
        self.streams.tick(self.clock.ms)

    def subscribe(self, sink: Sink, *streams: str) -> None:
        for stream in streams:
            assert self.streams.parse(stream) == stream
            self.streams.subscribe(stream, sink)

    def rest_depth(self, limit: int = 5000) -> Any:
        """What ``GET /api/v3/depth`` answers (its handler, over this exchange)."""
        route = market_data_routes.find("GET", "/api/v3/depth")
        assert route is not None
        services = SimpleNamespace(exchange=self.exchange.trading)
        params = {"symbol": SYMBOL, "limit": str(limit)}
        request = Request("GET", "/api/v3/depth", b"", b"", {}, "127.0.0.1", 0, services, params)
        return route.handler(request)


@pytest.fixture
def market(sandex: Sandex) -> Iterator[Market]:
    exchange = new_exchange(sandex)
    exchange.start(NOW)
    store = exchange.store
    store.add_credit(ALICE, "USDT", 10_000_000 * UNIT, "credit", NOW)
    store.add_credit(BOB, "BTC", 1000 * UNIT, "credit", NOW)
    exchange.apply_credits(store.pending_credits(), NOW)
    exchange.durable()
    yield Market(exchange)
    exchange.close()


def _p(text: str) -> str:
    return BTC.format_price(BTC.price_units(text))


def _q(text: str) -> str:
    return BTC.format_quantity(BTC.quantity_units(text))


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "btcusdt@trade", "btcusdt@aggTrade", "btcusdt@kline_1s", "btcusdt@kline_1m",
        "ethusdt@kline_1M", "btcusdt@kline_1w", "btcusdt@depth", "btcusdt@depth@100ms",
        "btcusdt@depth5", "btcusdt@depth10@100ms", "btcusdt@depth20", "btcusdt@ticker",
        "btcusdt@miniTicker", "!miniTicker@arr", "btcusdt@bookTicker", "btcusdt@avgPrice",
        "ethbtc@trade",
    ],
)  # fmt: skip
def test_binance_stream_names_are_accepted_as_they_are(name: str) -> None:
    streams = MarketStreams(
        SYMBOLS, MarketReadModel(SYMBOLS, MarketData(SYMBOLS.values())), Clock(0)
    )
    assert streams.parse(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "BTCUSDT@trade", "btcusdt", "btcusdt@", "@trade", "xrpusdt@trade", "btcusdt@trades",
        "btcusdt@kline_2m", "btcusdt@kline_", "btcusdt@depth15", "btcusdt@depth5@500ms",
        "btcusdt@depth@10ms", "btcusdt@miniticker", "!ticker@arr", "!bookTicker",
        "!miniTicker@arr@1s", "btcusdt@trade@100ms", "btcusdt@depth@100ms@100ms", "",
    ],
)  # fmt: skip
def test_other_names_are_refused(name: str) -> None:
    streams = MarketStreams(
        SYMBOLS, MarketReadModel(SYMBOLS, MarketData(SYMBOLS.values())), Clock(0)
    )
    assert streams.parse(name) is None
    with pytest.raises(ValueError):
        streams.subscribe(name, Sink())


# -- trades -----------------------------------------------------------------------------


def test_a_trade_goes_out_at_once_with_binance_fields(market: Market) -> None:
    sink = Sink()
    market.subscribe(sink, "btcusdt@trade")
    market.place(sell("0.5", "60000", account=BOB))
    market.clock.ms += 7
    market.place(buy("0.2", "60000", account=ALICE))
    [trade] = sink.of("btcusdt@trade")
    rest = market.exchange.market_data.recent_trades(SYMBOL, 1)[0]
    assert trade == {
        "e": "trade", "E": NOW + 7, "s": "BTCUSDT", "t": rest.id, "p": _p("60000"),
        "q": _q("0.2"), "T": NOW + 7, "m": False, "M": True,
    }  # fmt: skip
    market.place(buy("0.1", "59900", account=ALICE), sell("0.1", "59900", account=BOB))
    assert [t["m"] for t in sink.of("btcusdt@trade")] == [False, True]  # the seller took


def test_the_trades_of_one_taker_at_one_price_are_one_aggregate_trade(market: Market) -> None:
    sink = Sink()
    market.subscribe(sink, "btcusdt@aggTrade")
    market.place(
        sell("0.1", "60000", account=BOB),
        sell("0.2", "60000", account=BOB),
        sell("0.3", "60010", account=BOB),
    )
    market.place(buy("0.6", "60010", account=ALICE))  # 3 trades: 2 at 60000, 1 at 60010
    market.streams.flush()
    aggs = sink.of("btcusdt@aggTrade")
    rest = market.exchange.market_data.agg_trades(SYMBOL, limit=10)
    assert [(a["a"], a["f"], a["l"]) for a in aggs] == [(r.id, r.first_id, r.last_id) for r in rest]
    first, second = aggs
    assert list(first) == ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"]
    assert (first["e"], first["s"], first["p"], first["q"]) == (
        "aggTrade", "BTCUSDT", _p("60000"), _q("0.3"),
    )  # fmt: skip
    assert first["l"] - first["f"] == 1 and second["f"] == second["l"] == first["l"] + 1
    assert (second["p"], second["q"], second["m"], second["M"]) == (
        _p("60010"),
        _q("0.3"),
        False,
        True,
    )


# -- depth ------------------------------------------------------------------------------


class DepthClient:
    """A client keeping a local book the way Binance tells clients to (and ccxt does):
    buffer the diffs, take a snapshot, drop diffs with ``u <= lastUpdateId``, check the
    first applied one straddles it and every later ``U`` follows the previous ``u``."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.last = snapshot["lastUpdateId"]
        self.bids = {p: q for p, q in snapshot["bids"]}
        self.asks = {p: q for p, q in snapshot["asks"]}
        self.started = False

    def apply(self, diff: dict[str, Any]) -> None:
        if diff["u"] <= self.last:
            return
        if not self.started:
            assert diff["U"] - 1 <= self.last <= diff["u"] - 1
            self.started = True
        else:
            assert diff["U"] == self.last + 1, "a gap"
        for side, levels in ((self.bids, diff["b"]), (self.asks, diff["a"])):
            for price, quantity in levels:
                if Decimal(quantity):
                    side[price] = quantity
                else:
                    side.pop(price, None)
        self.last = diff["u"]

    def book(self) -> tuple[list[list[str]], list[list[str]]]:
        bids = sorted(self.bids.items(), key=lambda pq: Decimal(pq[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda pq: Decimal(pq[0]))
        return [list(b) for b in bids], [list(a) for a in asks]


@pytest.mark.parametrize("stream", ["btcusdt@depth@100ms", "btcusdt@depth"])
def test_a_client_synced_from_the_rest_snapshot_keeps_the_book_through_random_trading(
    market: Market, stream: str
) -> None:
    sink = Sink()
    market.subscribe(sink, stream)
    rng = random.Random(11)
    market.place(sell("0.5", "60100", account=BOB), buy("0.5", "59900", account=ALICE))
    snapshot: dict[str, Any] | None = None
    for step in range(150):
        price = str(60_000 + rng.randint(-20, 20) * 10)
        amount = f"0.{rng.randint(1, 9)}"
        side = buy if rng.random() < 0.5 else sell
        market.place(side(amount, price, account=ALICE if side is buy else BOB))
        if step == 40:
            snapshot = market.rest_depth()  # diffs before it are buffered too
        if rng.random() < 0.3:
            market.tick(rng.choice([100, 100, 300, 1000]))
    market.tick(1000)
    assert snapshot is not None
    diffs = sink.of(stream)
    assert len(diffs) > 5
    for before, after in itertools.pairwise(diffs):
        assert after["U"] == before["u"] + 1
    client = DepthClient(snapshot)
    for diff in diffs:
        assert list(diff) == ["e", "E", "s", "U", "u", "b", "a"]
        assert (diff["e"], diff["s"]) == ("depthUpdate", "BTCUSDT")
        client.apply(diff)
    now = market.rest_depth()
    assert client.last == now["lastUpdateId"]
    assert client.book() == (now["bids"], now["asks"])


def test_changes_within_100ms_are_one_diff_with_the_latest_quantity(market: Market) -> None:
    sink = Sink()
    market.subscribe(sink, "btcusdt@depth@100ms", "btcusdt@depth")
    start = market.model.update_id(SYMBOL)
    market.place(sell("0.5", "60100", account=BOB))
    market.place(sell("0.25", "60100", account=BOB))
    market.place(buy("0.1", "59900", account=ALICE))
    market.tick(100)
    market.place(sell("0.5", "60200", account=BOB))
    market.tick(100)
    market.tick(100)  # nothing changed: nothing sent
    fast = sink.of("btcusdt@depth@100ms")
    assert [(d["U"], d["u"], d["b"], d["a"]) for d in fast] == [
        (start + 1, start + 3, [[_p("59900"), _q("0.1")]], [[_p("60100"), _q("0.75")]]),
        (start + 4, start + 4, [], [[_p("60200"), _q("0.5")]]),
    ]
    assert fast[0]["E"] == NOW + 100
    market.tick(1000)
    [slow] = sink.of("btcusdt@depth")  # once a second
    assert (slow["U"], slow["u"]) == (start + 1, start + 4)
    assert slow["a"] == [[_p("60100"), _q("0.75")], [_p("60200"), _q("0.5")]]


def test_a_level_that_empties_is_sent_with_quantity_zero(market: Market) -> None:
    sink = Sink()
    market.place(sell("0.5", "60100", account=BOB))
    market.subscribe(sink, "btcusdt@depth@100ms")
    market.place(buy("0.5", "60100", account=ALICE))
    market.tick()
    [diff] = sink.of("btcusdt@depth@100ms")
    assert diff["a"] == [[_p("60100"), _q("0")]]


def test_after_a_gap_the_diffs_continue_with_the_new_ids_and_never_span_it() -> None:
    engine = new_engine()
    feed = MarketFeed(engine, SYMBOLS, now=NOW)
    gaps: list[int] = []
    model = MarketReadModel(SYMBOLS, MarketData(SYMBOLS.values()), on_gap=lambda: gaps.append(1))
    model.load(feed.snapshot())
    clock = Clock(NOW)
    streams = MarketStreams(SYMBOLS, model, clock)
    sink = Sink()
    streams.subscribe("btcusdt@depth@100ms", sink)

    def step(order: Any, *, lost: bool = False) -> None:
        for event in engine.submit(order, clock.ms):
            if isinstance(event, Trade):
                feed.record(SYMBOL, event)
        for change in feed.take():
            if not lost:
                model.apply(change)

    step(sell("0.1", "60100", account=BOB))
    step(sell("0.1", "60200", account=BOB), lost=True)
    step(sell("0.1", "60300", account=BOB))  # shows the gap: the model resyncs
    assert gaps == [1]
    model.load(feed.snapshot())
    step(sell("0.1", "60400", account=BOB))
    clock.ms += 100
    streams.tick(clock.ms)
    first, second = sink.of("btcusdt@depth@100ms")
    assert first["U"] == first["u"] == NOW * 1000 + 1
    assert second["U"] == second["u"] == NOW * 1000 + 4  # the jump tells clients to resync
    assert model.update_id(SYMBOL) == NOW * 1000 + 4


def test_partial_depth_is_the_top_of_the_book_with_its_update_id(market: Market) -> None:
    sink = Sink()
    for i in range(7):
        market.place(sell("0.1", f"{60_100 + 10 * i}", account=BOB))
        market.place(buy("0.1", f"{59_900 - 10 * i}", account=ALICE))
    market.subscribe(sink, "btcusdt@depth5", "btcusdt@depth10@100ms")
    market.tick(100)
    assert sink.of("btcusdt@depth5") == []  # every second
    [ten] = sink.of("btcusdt@depth10@100ms")
    rest = market.rest_depth(10)
    assert ten == rest and len(ten["bids"]) == 7
    market.tick(1000)
    five = sink.of("btcusdt@depth5")[-1]
    assert list(five) == ["lastUpdateId", "bids", "asks"]
    assert five == market.rest_depth(5)


# -- the best levels --------------------------------------------------------------------


def test_book_ticker_goes_out_when_the_best_levels_change_only(market: Market) -> None:
    sink = Sink()
    market.subscribe(sink, "btcusdt@bookTicker")
    market.place(sell("0.5", "60100", account=BOB), buy("0.2", "59900", account=ALICE))
    market.place(sell("0.5", "60500", account=BOB))  # not the best: nothing sent
    got = sink.of("btcusdt@bookTicker")
    assert len(got) == 2
    assert got[-1] == {
        "u": market.model.update_id(SYMBOL) - 1, "s": "BTCUSDT", "b": _p("59900"),
        "B": _q("0.2"), "a": _p("60100"), "A": _q("0.5"),
    }  # fmt: skip


# -- klines -----------------------------------------------------------------------------


def test_a_kline_is_sent_every_two_seconds_and_once_more_when_it_closes(market: Market) -> None:
    sink = Sink()
    market.subscribe(sink, "btcusdt@kline_1m")
    market.place(sell("0.5", "60000", account=BOB))
    market.clock.ms = NOW + 1000
    market.place(buy("0.2", "60000", account=ALICE))
    market.tick(100)
    market.tick(100)  # not yet due
    [first] = sink.of("btcusdt@kline_1m")
    assert list(first) == ["e", "E", "s", "k"] and first["e"] == "kline"
    k = first["k"]
    assert list(k) == [
        "t",
        "T",
        "s",
        "i",
        "f",
        "L",
        "o",
        "c",
        "h",
        "l",
        "v",
        "n",
        "x",
        "q",
        "V",
        "Q",
        "B",
    ]
    trade = market.exchange.market_data.recent_trades(SYMBOL, 1)[0]
    assert (k["t"], k["T"], k["s"], k["i"], k["x"]) == (NOW, NOW + 59_999, "BTCUSDT", "1m", False)
    assert (k["f"], k["L"], k["n"], k["v"], k["c"]) == (
        trade.id,
        trade.id,
        1,
        _q("0.2"),
        _p("60000"),
    )
    assert k["q"] == BTC.format_quote(trade.quote) and k["B"] == "0"
    market.tick(2000)
    assert len(sink.of("btcusdt@kline_1m")) == 2
    market.clock.ms = NOW + 60_000 + 50
    market.tick(0)
    closing, opening = sink.of("btcusdt@kline_1m")[2:]
    assert (closing["k"]["t"], closing["k"]["x"], closing["k"]["n"]) == (NOW, True, 1)
    assert (opening["k"]["t"], opening["k"]["x"], opening["k"]["n"]) == (NOW + 60_000, False, 0)
    assert (opening["k"]["f"], opening["k"]["L"]) == (-1, -1)


def test_one_second_klines_close_every_second(market: Market) -> None:
    sink = Sink()
    market.place(sell("0.5", "60000", account=BOB), buy("0.2", "60000", account=ALICE))
    market.subscribe(sink, "btcusdt@kline_1s")
    for _ in range(25):
        market.tick(100)
    closed = [m["k"]["t"] for m in sink.of("btcusdt@kline_1s") if m["k"]["x"]]
    assert closed == [NOW, NOW + 1000]


# -- tickers and the average price ------------------------------------------------------


def test_tickers_and_the_average_price_every_second(market: Market) -> None:
    sink = Sink()
    market.subscribe(
        sink, "btcusdt@ticker", "btcusdt@miniTicker", "!miniTicker@arr", "btcusdt@avgPrice"
    )
    market.place(sell("0.5", "60000", account=BOB), buy("0.2", "60000", account=ALICE))
    market.place(buy("0.1", "59000", account=ALICE))
    market.tick(100)
    assert sink.got == []
    market.tick(1000)
    now = market.clock.ms
    [full] = sink.of("btcusdt@ticker")
    assert list(full) == [
        "e", "E", "s", "p", "P", "w", "x", "c", "Q", "b", "B", "a", "A", "o", "h", "l", "v",
        "q", "O", "C", "F", "L", "n",
    ]  # fmt: skip
    assert (full["e"], full["E"], full["s"], full["c"], full["Q"]) == (
        "24hrTicker", now, "BTCUSDT", _p("60000"), _q("0.2"),
    )  # fmt: skip
    assert (full["b"], full["B"], full["a"], full["A"]) == (
        _p("59000"),
        _q("0.1"),
        _p("60000"),
        _q("0.3"),
    )
    assert full["n"] == 1 and full["F"] == full["L"] and full["C"] == now
    [mini] = sink.of("btcusdt@miniTicker")
    assert mini == {
        "e": "24hrMiniTicker", "E": now, "s": "BTCUSDT", "c": full["c"], "o": full["o"],
        "h": full["h"], "l": full["l"], "v": full["v"], "q": full["q"],
    }  # fmt: skip
    [every] = sink.of("!miniTicker@arr")
    assert [m["s"] for m in every] == list(SYMBOLS)  # the first time: all
    [avg] = sink.of("btcusdt@avgPrice")
    assert avg == {
        "e": "avgPrice", "E": now, "s": "BTCUSDT", "i": f"{BTC.notional.avg_price_mins}m",
        "w": _p("60000"), "T": NOW,
    }  # fmt: skip
    market.place(sell("0.1", "59000", account=BOB))
    market.tick(1000)
    [changed] = sink.of("!miniTicker@arr")[1:]
    assert [m["s"] for m in changed] == ["BTCUSDT"]  # only the symbols that changed
    market.tick(1000)
    assert len(sink.of("!miniTicker@arr")) == 2  # nothing changed: nothing sent
    assert len(sink.of("btcusdt@ticker")) == 3


# -- subscribers ------------------------------------------------------------------------


def test_unsubscribing_stops_delivery(market: Market) -> None:
    kept, left = Sink(), Sink()
    market.subscribe(kept, "btcusdt@trade", "btcusdt@depth@100ms")
    market.subscribe(left, "btcusdt@trade", "btcusdt@depth@100ms", "btcusdt@kline_1m")
    market.place(sell("0.5", "60000", account=BOB), buy("0.1", "60000", account=ALICE))
    market.tick()
    market.streams.unsubscribe("btcusdt@trade", left)
    market.place(buy("0.1", "60000", account=ALICE))
    market.tick()
    assert len(left.of("btcusdt@trade")) == 1 and len(left.of("btcusdt@depth@100ms")) == 2
    market.streams.unsubscribe_all(left)
    market.place(buy("0.1", "60000", account=ALICE))
    market.tick(3000)
    assert len(left.of("btcusdt@depth@100ms")) == 2 and len(left.of("btcusdt@kline_1m")) == 1
    assert len(kept.of("btcusdt@trade")) == 3 and len(kept.of("btcusdt@depth@100ms")) == 3
    assert market.streams.subscribers("btcusdt@kline_1m") == 0


def test_a_failing_subscriber_is_dropped_with_one_line_and_the_others_go_on(
    market: Market, caplog: pytest.LogCaptureFixture
) -> None:
    before, broken, after = Sink(), Broken(), Sink()
    market.subscribe(before, "btcusdt@trade", "btcusdt@depth@100ms")
    for stream in ("btcusdt@trade", "btcusdt@depth@100ms"):
        market.streams.subscribe(stream, broken)
    market.subscribe(after, "btcusdt@trade", "btcusdt@depth@100ms")
    with caplog.at_level(logging.WARNING):
        market.place(sell("0.5", "60000", account=BOB), buy("0.1", "60000", account=ALICE))
        market.tick()
        market.place(buy("0.1", "60000", account=ALICE))
        market.tick()
    for sink in (before, after):
        assert len(sink.of("btcusdt@trade")) == 2 and len(sink.of("btcusdt@depth@100ms")) == 2
    assert market.streams.subscribers("btcusdt@trade") == 2
    lines = [r for r in caplog.records if r.name == "sandex.service.market_streams"]
    assert len(lines) == 1 and "the peer went away" in lines[0].getMessage()
    assert lines[0].exc_info is None


def test_the_embedded_depth_route_and_the_streams_count_the_same_updates(market: Market) -> None:
    """``GET /api/v3/depth`` reads the model the diffs come from: right after an order is
    acknowledged its level is in the snapshot, and the next diff follows on from it."""
    sink = Sink()
    market.subscribe(sink, "btcusdt@depth@100ms")
    market.place(sell("0.5", "60100", account=BOB))
    snapshot = market.rest_depth()
    assert snapshot["asks"] == [[_p("60100"), _q("0.5")]]
    market.place(sell("0.5", "60200", account=BOB))
    market.tick()
    [diff] = sink.of("btcusdt@depth@100ms")
    assert diff["U"] - 1 <= snapshot["lastUpdateId"] <= diff["u"] - 1


def test_what_the_market_steps_commit_reaches_the_model_without_a_command(
    sandex: Sandex,
) -> None:
    exchange = new_exchange(sandex, simulate=True)
    exchange.start(NOW)
    model = exchange.market.model
    assert model.depth(SYMBOL, 5000) == exchange.engine.depth(SYMBOL, 5000)  # from the start

    async def main() -> tuple[int, int]:
        exchange.market.run_background()
        before = model.update_id(SYMBOL)
        exchange.shock(SYMBOL, 0.8, 60_000, NOW + 1000)
        exchange.tick(NOW + 2000, SYMBOL)
        await exchange.core.journal.durable()
        for _ in range(100):
            if model.update_id(SYMBOL) > before:
                break
            await asyncio.sleep(0.005)
        exchange.market.stop()
        return before, model.update_id(SYMBOL)

    try:
        before, after = asyncio.run(main())
        assert after > before
        assert model.depth(SYMBOL, 5000) == exchange.engine.depth(SYMBOL, 5000)
    finally:
        exchange.close()


def test_an_event_the_model_cannot_apply_is_one_log_line_and_the_model_reloads(
    sandex: Sandex, caplog: pytest.LogCaptureFixture
) -> None:
    """A committed event the read model fails to apply is reported once, and the model
    reloads the books from the engine's feed: it ends equal to the engine."""
    exchange = new_exchange(sandex, simulate=True)
    exchange.start(NOW)
    model = exchange.market.model
    apply = model.apply
    failures = [RuntimeError("disk on fire")]

    def flaky(event: Any) -> None:
        if failures:
            raise failures.pop()
        apply(event)

    async def main() -> None:
        model.apply = flaky  # type: ignore[method-assign]
        exchange.market.run_background()
        exchange.shock(SYMBOL, 0.8, 60_000, NOW + 1000)
        exchange.tick(NOW + 2000, SYMBOL)
        await exchange.core.journal.durable()
        for _ in range(200):
            if not failures and not exchange.core.journal.committed:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)
        exchange.market.stop()

    try:
        with caplog.at_level(logging.WARNING, logger="sandex.service.local_market"):
            asyncio.run(main())
        assert not failures
        assert model.depth(SYMBOL, 5000) == exchange.engine.depth(SYMBOL, 5000)
        lines = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(lines) == 1 and "disk on fire" in lines[0].getMessage()
        assert lines[0].exc_info is None
    finally:
        exchange.close()

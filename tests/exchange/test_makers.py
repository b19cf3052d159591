"""The market makers' ladder: deep (50 levels a side), sizes growing away from the touch,
requoted by difference (only what changed), walked by a large market order with the
slippage of a real book, and thinned or thickened on command for a while.

The simulation runs against a real venue (engine and ledger), funded as the trading
service funds it, its commands applied as the service applies them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal

import pytest

from sandex.exchange import (
    CancelAll,
    CancelOrder,
    Command,
    OrderStatus,
    PlaceOrder,
    Side,
    default_symbols,
)
from sandex.exchange.book import Level, OrderBook, Resting
from sandex.exchange.makers import MakerConfig, MarketMakers
from sandex.exchange.orders import OrderType
from sandex.exchange.symbols import Symbol
from sandex.exchange.venue import MAKER, TAKER, Venue

NOW = 1_800_000_000_000
STEP_MS = 500
USER = 1
SYMBOLS = {s.name: s for s in default_symbols()}


class Market:
    """A venue with the simulated market on it, stepped as the server steps it."""

    def __init__(self, *, seed: int = 7, config: MakerConfig | None = None) -> None:
        self.venue = Venue(default_symbols())
        self.sim = MarketMakers(default_symbols(), NOW, seed=seed, config=config)
        for account in (MAKER, TAKER):
            for asset in ("BTC", "ETH", "SOL", "USDT"):
                self.venue.credit(account, asset, 10**17)
        self.now = NOW
        self.sent: list[Command] = []
        self.step()

    def step(self, ms: int = STEP_MS) -> list[Command]:
        self.now += ms
        engine = self.venue.engine
        commands: list[Command] = []
        for name in self.sim.symbols:
            quotes = engine.resting(name, MAKER)
            commands += self.sim.step_symbol(name, self.now, engine.last_price(name), quotes)
        for command in commands:
            if isinstance(command, PlaceOrder):
                assert self.venue.place(command, self.now).rejected is None, command
            elif isinstance(command, CancelOrder):
                assert self.venue.cancel(command, self.now).rejected is None, command
            else:
                raise AssertionError(f"the makers sent {command}")
        self.venue.drain()
        self.sent += commands
        return commands

    def depth(self, name: str) -> tuple[list[Level], list[Level]]:
        return self.venue.engine.depth(name, 1000)


def notional(symbol: Symbol, level: Level) -> Decimal:
    return Decimal(level.price * level.quantity).scaleb(-symbol.quote_scale)


def within(symbol: Symbol, levels: Sequence[Level], mid: Decimal, band: Decimal) -> Decimal:
    """What ``levels`` hold (quote asset) within ``band`` of ``mid`` (price units)."""
    return sum(
        (notional(symbol, lv) for lv in levels if abs(lv.price - mid) <= mid * band),
        Decimal(0),
    )


def mid_of(m: Market, name: str) -> Decimal:
    bid, ask = m.venue.engine.best_bid(name), m.venue.engine.best_ask(name)
    assert bid is not None and ask is not None
    return Decimal(bid.price + ask.price) / 2


# -- the ladder -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SYMBOLS))
def test_every_symbol_shows_at_least_50_levels_a_side_on_a_sensible_grid(name: str) -> None:
    m = Market()
    bids, asks = m.depth(name)
    assert len(bids) >= 50 and len(asks) >= 50
    symbol = SYMBOLS[name]
    tick = symbol.rules.prices.step
    grid = asks[0].price - bids[0].price
    assert grid % tick == 0 and grid > 0
    # levels one grid step apart, a few basis points of the price
    assert all(a.price - b.price == grid for a, b in itertools.pairwise(bids))
    assert all(b.price - a.price == grid for a, b in itertools.pairwise(asks))
    mid = mid_of(m, name)
    assert Decimal("0.0001") <= grid / mid <= Decimal("0.0008"), grid / mid
    # the ladder reaches out about 1.5-2.5 % from the price
    assert Decimal("0.01") <= (mid - bids[-1].price) / mid <= Decimal("0.025")
    assert Decimal("0.01") <= (asks[-1].price - mid) / mid <= Decimal("0.025")


@pytest.mark.parametrize("name", sorted(SYMBOLS))
def test_sizes_grow_away_from_the_touch(name: str) -> None:
    m = Market()
    symbol = SYMBOLS[name]
    for side in m.depth(name):
        values = [notional(symbol, lv) for lv in side]
        assert all(b >= a for a, b in itertools.pairwise(values)), values
        assert values[49] >= 10 * values[0]


def test_the_depth_within_2_percent_is_a_mid_size_pairs() -> None:
    """BTCUSDT within 2 % of the price: about half a million USDT a side, as on a mid-size
    Binance pair (the touch about 2,000 USDT, so a 10,000 USDT bot order walks a few
    levels)."""
    m = Market()
    symbol = SYMBOLS["BTCUSDT"]
    bids, asks = m.depth("BTCUSDT")
    mid = mid_of(m, "BTCUSDT")
    for side in (bids, asks):
        assert Decimal(300_000) <= within(symbol, side, mid, Decimal("0.02")) <= Decimal(2_000_000)
        assert Decimal(1_000) <= notional(symbol, side[0]) <= Decimal(5_000)


# -- requoting by difference ------------------------------------------------------------------


def test_requoting_sends_only_what_changed() -> None:
    m = Market()
    first = len(m.sent)
    assert first >= 4 * 100  # the whole ladder, once
    steps = 200
    for _ in range(steps):
        m.step()
        for name in SYMBOLS:
            bids, asks = m.depth(name)
            assert len(bids) >= 50 and len(asks) >= 50
    later = m.sent[first:]
    assert not any(isinstance(c, CancelAll) for c in later)
    makers = [c for c in later if getattr(c, "account", None) == MAKER]
    # a full cancel-and-replace would be 200 commands per symbol step
    assert len(makers) / (steps * len(SYMBOLS)) < 10


def test_a_large_market_order_walks_the_book_with_realistic_slippage() -> None:
    m = Market()
    symbol = SYMBOLS["BTCUSDT"]
    m.venue.credit(USER, "USDT", 10**6 * 10**8)
    _, asks = m.depth("BTCUSDT")
    best = asks[0].price
    spend = 100_000  # USDT: 50 times the touch
    result = m.venue.place(
        PlaceOrder(
            "BTCUSDT",
            USER,
            Side.BUY,
            OrderType.MARKET,
            quote_quantity=symbol.quote_units(str(spend)),
        ),
        m.now,
    )
    order = result.orders[0]
    assert order.status is OrderStatus.FILLED
    prices = [f.price for f in order.fills]
    assert prices == sorted(prices) and len(set(prices)) >= 5  # it walked several levels
    average = Decimal(order.cumulative_quote) / order.executed
    slippage = average / best - 1
    assert Decimal("0.0003") < slippage < Decimal("0.01"), slippage
    worst = Decimal(prices[-1]) / best - 1
    assert worst < Decimal("0.02")
    # the makers put the eaten levels back at the next step
    m.step()
    _, asks = m.depth("BTCUSDT")
    assert len(asks) >= 50


def test_a_market_order_of_the_touchs_size_barely_moves_the_price() -> None:
    m = Market()
    symbol = SYMBOLS["BTCUSDT"]
    m.venue.credit(USER, "USDT", 10**6 * 10**8)
    best = m.depth("BTCUSDT")[1][0].price
    result = m.venue.place(
        PlaceOrder(
            "BTCUSDT", USER, Side.BUY, OrderType.MARKET, quote_quantity=symbol.quote_units("1000")
        ),
        m.now,
    )
    assert {f.price for f in result.orders[0].fills} == {best}


# -- liquidity ----------------------------------------------------------------------------------


def test_thinning_a_symbol_scales_its_depth_and_it_recovers_when_the_time_is_up() -> None:
    m = Market()
    symbol = SYMBOLS["BTCUSDT"]

    def depth_2pct() -> tuple[Decimal, Decimal]:
        bids, asks = m.depth("BTCUSDT")
        mid = mid_of(m, "BTCUSDT")
        return within(symbol, bids, mid, Decimal("0.02")), within(
            symbol, asks, mid, Decimal("0.02")
        )

    normal = depth_2pct()
    eth = sum(lv.quantity for lv in m.depth("ETHUSDT")[0])
    m.sim.set_liquidity("BTCUSDT", Decimal("0.1"), m.now, 10_000)
    m.step()
    thin = depth_2pct()
    for before, after in zip(normal, thin, strict=True):
        assert before * Decimal("0.07") < after < before * Decimal("0.13")
    bids, asks = m.depth("BTCUSDT")
    assert len(bids) >= 50 and len(asks) >= 50  # thinner, not shorter
    assert sum(lv.quantity for lv in m.depth("ETHUSDT")[0]) > eth * Decimal("0.8")  # as it was
    for _ in range(18):  # 9.5 s after the order: still thin
        m.step()
    assert depth_2pct()[0] < normal[0] * Decimal("0.13")
    m.step(1000)  # 10 s are up
    recovered = depth_2pct()
    for before, after in zip(normal, recovered, strict=True):
        assert before * Decimal("0.8") < after < before * Decimal("1.25")
    assert m.sim.liquidity("BTCUSDT") == 1


def test_a_thin_book_slips_a_market_order_further() -> None:
    slips = []
    for factor in (Decimal(1), Decimal("0.1")):
        m = Market()
        symbol = SYMBOLS["BTCUSDT"]
        m.sim.set_liquidity("BTCUSDT", factor, m.now)
        m.step()
        m.venue.credit(USER, "USDT", 10**6 * 10**8)
        best = m.depth("BTCUSDT")[1][0].price
        order = m.venue.place(
            PlaceOrder(
                "BTCUSDT",
                USER,
                Side.BUY,
                OrderType.MARKET,
                quote_quantity=symbol.quote_units("20000"),
            ),
            m.now,
        ).orders[0]
        slips.append(Decimal(order.cumulative_quote) / order.executed / best - 1)
    assert slips[1] > 3 * slips[0]


def test_the_thinnest_book_still_quotes_orders_the_filters_accept() -> None:
    m = Market()
    for name in SYMBOLS:
        m.sim.set_liquidity(name, Decimal("0.01"), m.now)
    m.step()  # every PlaceOrder accepted (Market.step asserts it)
    for name in SYMBOLS:
        bids, asks = m.depth(name)
        assert len(bids) >= 50 and len(asks) >= 50


@pytest.mark.parametrize("factor", ["0", "0.001", "101", "-1"])
def test_a_liquidity_factor_out_of_range_is_refused(factor: str) -> None:
    m = Market()
    with pytest.raises(ValueError, match="liquidity factor"):
        m.sim.set_liquidity("BTCUSDT", Decimal(factor), m.now)
    with pytest.raises(ValueError, match="unknown symbol"):
        m.sim.set_liquidity("DOGEUSDT", Decimal(1), m.now)


def test_the_ladder_follows_a_crash() -> None:
    m = Market(seed=11)
    start = mid_of(m, "BTCUSDT")
    m.sim.shock("BTCUSDT", 0.7, 5_000, m.now)
    for _ in range(12):
        m.step()
    bids, asks = m.depth("BTCUSDT")
    assert len(bids) >= 50 and len(asks) >= 50
    assert abs(mid_of(m, "BTCUSDT") / start - Decimal("0.7")) < Decimal("0.01")


# -- the book under a moving ladder ---------------------------------------------------------------


def test_levels_emptied_deep_in_the_book_do_not_pile_up() -> None:
    """A maker moving its far quotes empties levels below the top; the book sweeps them
    out instead of keeping every price the ladder ever reached."""
    book = OrderBook()
    for i in range(1000):  # a bid ladder walking down, each far quote canceled in turn
        best = Resting(1, 2 * i + 1, MAKER, 10_000, 1, True)
        far = Resting(1, 2 * i + 2, MAKER, 5_000 - i, 1, True)
        book.rest(best)
        book.rest(far)
        book.remove(far)
        if i < 999:
            book.remove(best)
    assert len(book.bids) <= 64 + 1 and len(book.bid_keys) == len(book.bids)
    assert book.best_bid() == Level(10_000, 1)
    assert book.depth(1000) == ([Level(10_000, 1)], [])
    book.rest(Resting(3, 5000, USER, 4_500, 3, True))  # a swept price rests again
    assert book.depth(1000)[0] == [Level(10_000, 1), Level(4_500, 3)]


def test_a_long_run_keeps_the_book_to_the_ladder() -> None:
    m = Market()
    for _ in range(3000):
        m.step()
    bids, asks = m.depth("BTCUSDT")
    assert len(bids) >= 50 and len(asks) >= 50
    snapshot = m.venue.engine.snapshot("BTCUSDT")
    assert len(snapshot.resting) <= 2 * 50 + 5

"""The simulated market: market makers quoting around a moving reference price, and a
trickle of takers that trade with them so the last price (and the klines) follow it.

The makers quote a ladder: :attr:`MakerConfig.levels` price levels a side on a grid
of whole ticks (about 3 basis points apart, rounded to 1, 2 or 5 times a power of ten
ticks), the best bid and ask one grid step apart around the reference, each level
deeper a fixed ratio bigger than the one before, so that a large market order walks
the book and pays the slippage it would on a real one. The grid stays put while the
reference moves, so each :meth:`MarketMakers.step` sends only what changed: a cancel
for a quote that is no longer on the ladder (or was eaten into), an order for a level
that has no quote. Crashes and pumps are shocks on the model
(:meth:`MarketMakers.shock`): the quotes follow the reference down or up, takers hit
them, the last price moves, and stops trigger, as on a real flash crash. A symbol's
liquidity can be scaled for a while (:meth:`MarketMakers.set_liquidity`), to see how a
bot fares in a thin market.

Pure and seeded: the same seed, prices, times and quotes give the same commands.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from sandex.exchange.market import OpenOrder
from sandex.exchange.orders import (
    CancelOrder,
    Command,
    OrderType,
    PlaceOrder,
    Side,
)
from sandex.exchange.price_model import PriceModel, Shock
from sandex.exchange.symbols import Rules, Symbol
from sandex.exchange.units import PriceUnits, QuantityUnits
from sandex.exchange.venue import MAKER, TAKER

__all__ = [
    "MakerConfig",
    "MarketMakers",
    "DEFAULT_PRICES",
    "MIN_LIQUIDITY",
    "MAX_LIQUIDITY",
]

DEFAULT_PRICES: Final = {
    "BTCUSDT": Decimal("60000"),
    "ETHUSDT": Decimal("3000"),
    "SOLUSDT": Decimal("150"),
    "ETHBTC": Decimal("0.05"),
}
"""Starting reference prices of the default markets (any other symbol needs one given)."""

MIN_LIQUIDITY: Final = Decimal("0.01")
MAX_LIQUIDITY: Final = Decimal(100)
"""The range of :meth:`MarketMakers.set_liquidity`'s factor."""

_PER_MILLE: Final = 1000
_GRID_BAND: Final = (0.4, 2.5)
"""The grid is chosen again when it drifts this far from ``step`` times the reference."""


@dataclass(frozen=True)
class MakerConfig:
    levels: int = 50
    """Quote levels per side."""
    step: Decimal = Decimal("0.0003")
    """Distance between levels, and between the best bid and ask, as a fraction of the
    reference; rounded to 1, 2 or 5 times a power of ten ticks (at least one tick)."""
    level_notional: Decimal = Decimal("2000")
    """Value of the level at the touch, in USDT terms."""
    growth: Decimal = Decimal("1.06")
    """How much bigger each level is than the one before (the 50th: 17 times the first;
    BTCUSDT then holds about 580,000 USDT a side within 2 % of the price)."""
    tolerance: Decimal = Decimal("0.25")
    """A resting quote stays while its size is within this fraction of its level's size
    (each way); otherwise it is replaced."""
    taker_probability: float = 0.6
    """Chance per symbol per step of a taker order."""
    taker_notional: Decimal = Decimal("300")
    """Typical value of a taker order, in the same terms as ``level_notional``."""


@dataclass
class _Ladder:
    """One symbol's quoting state: its grid, its liquidity and its level sizes."""

    grid: int = 0
    """Price units between levels; 0 until the first step."""
    factor: Decimal = Decimal(1)
    until: int | None = None
    """When the liquidity ``factor`` lapses (back to 1); None: it stays."""
    sizes: list[int] = field(default_factory=list)
    """Per level, its notional in quote units times a price unit: ``size // price`` is
    the level's quantity in quantity units."""
    anchor: tuple[int, int] = (0, 0)
    """The best bid and the grid ``wanted`` was worked out for."""
    wanted: dict[tuple[bool, int], int] = field(default_factory=dict)
    """The ladder: quantity per (buy, price)."""


class MarketMakers:
    """Reference prices, maker quotes and taker flow for a set of symbols."""

    def __init__(
        self,
        symbols: Iterable[Symbol],
        now: int,
        *,
        seed: int = 7,
        prices: dict[str, Decimal] | None = None,
        config: MakerConfig | None = None,
        value_in_usdt: dict[str, Decimal] | None = None,
    ) -> None:
        self.config = config or MakerConfig()
        self._symbols = {s.name: s for s in symbols}
        start = dict(DEFAULT_PRICES)
        start.update(prices or {})
        missing = sorted(n for n in self._symbols if n not in start)
        if missing:
            raise ValueError(f"no starting price for {', '.join(missing)}")
        self._models = {
            name: PriceModel(float(start[name]), now, seed=seed * 1000 + i)
            for i, name in enumerate(sorted(self._symbols))
        }
        self._rng = random.Random(seed)
        # what one unit of each quote asset is worth in USDT, to size orders alike
        self._usdt = value_in_usdt or {
            "USDT": Decimal(1),
            "BTC": start.get("BTCUSDT", DEFAULT_PRICES["BTCUSDT"]),
        }
        self._ladders = {name: _Ladder() for name in self._symbols}
        for name in self._symbols:
            self._size_levels(name)

    @property
    def symbols(self) -> list[str]:
        return sorted(self._symbols)

    def reference(self, symbol: str) -> Decimal:
        """The reference price, snapped to the symbol's tick."""
        s = self._symbols[symbol]
        return _snap(Decimal(repr(self._models[symbol].price)), s.price_filter.tick_size)

    def shock(self, symbol: str, factor: float, duration_ms: int, now: int) -> None:
        """Move ``symbol``'s reference by ``factor`` (0.7: -30 %) over ``duration_ms``."""
        if symbol not in self._models:
            raise ValueError(f"unknown symbol {symbol}")
        if not 0 < factor:
            raise ValueError("a shock factor must be positive")
        self._models[symbol].shock(Shock(now, max(0, duration_ms), factor))

    def liquidity(self, symbol: str) -> Decimal:
        """The factor ``symbol``'s quote sizes are scaled by (1: the configured book)."""
        return self._ladders[symbol].factor

    def set_liquidity(
        self, symbol: str, factor: Decimal, now: int, duration_ms: int | None = None
    ) -> None:
        """Scale ``symbol``'s quote sizes by ``factor`` (0.1: a tenth of the depth) from the
        next step on, for ``duration_ms`` (then back to 1) or until set again."""
        if symbol not in self._ladders:
            raise ValueError(f"unknown symbol {symbol}")
        if not MIN_LIQUIDITY <= factor <= MAX_LIQUIDITY:
            raise ValueError(f"a liquidity factor is from {MIN_LIQUIDITY} to {MAX_LIQUIDITY}")
        ladder = self._ladders[symbol]
        ladder.factor = factor
        ladder.until = None if not duration_ms else now + duration_ms
        self._size_levels(symbol)

    def step(
        self,
        now: int,
        last_prices: Mapping[str, int | None],
        quotes: Mapping[str, Sequence[OpenOrder]],
    ) -> list[Command]:
        """The commands for ``now``: fresh quotes per symbol, and maybe a taker order.

        ``last_prices`` are the symbols' last trade prices (price units), to steer takers;
        ``quotes`` the makers' resting orders per symbol (see :meth:`step_symbol`).
        """
        commands: list[Command] = []
        for name in self.symbols:
            commands.extend(
                self.step_symbol(name, now, last_prices.get(name), quotes.get(name, ()))
            )
        return commands

    def step_symbol(
        self, name: str, now: int, last_price: int | None, quotes: Sequence[OpenOrder]
    ) -> list[Command]:
        """:meth:`step` for one symbol (a server interleaves symbols with requests).

        ``quotes`` are the makers' orders resting on the symbol now: those still on the
        ladder at about their level's size stay; the others are canceled, and the levels
        without a quote get one.
        """
        symbol = self._symbols[name]
        self._models[name].advance(now)
        ref = self.reference(name)
        if ref <= 0:
            return []
        commands = self._requote(symbol, symbol.price_units(str(ref)), quotes, now)
        if self._rng.random() < self.config.taker_probability:
            taker = self._taker(symbol, ref, last_price)
            if taker is not None:
                commands.append(taker)
        return commands

    def _worth(self, symbol: Symbol) -> Decimal:
        return self._usdt.get(symbol.quote_asset, Decimal(1))

    def _size_levels(self, name: str) -> None:
        cfg = self.config
        symbol = self._symbols[name]
        ladder = self._ladders[name]
        scale = Decimal(10) ** symbol.quote_scale
        first = cfg.level_notional * ladder.factor / self._worth(symbol) * scale
        ladder.sizes = [int(first * cfg.growth**level) for level in range(cfg.levels)]
        ladder.anchor = (0, 0)

    def _requote(
        self, symbol: Symbol, ref: int, quotes: Sequence[OpenOrder], now: int
    ) -> list[Command]:
        name = symbol.name
        ladder = self._ladders[name]
        if ladder.until is not None and now >= ladder.until:
            ladder.factor, ladder.until = Decimal(1), None
            self._size_levels(name)
        rules = symbol.rules
        prices = rules.prices
        ideal = ref * float(self.config.step)
        if not ladder.grid or not _GRID_BAND[0] <= ladder.grid / ideal <= _GRID_BAND[1]:
            ladder.grid = _nice(ideal / prices.step) * prices.step
        grid = ladder.grid
        best_bid = ref // grid * grid
        if ladder.anchor != (best_bid, grid):  # else the ladder of the last step stands
            ladder.anchor = (best_bid, grid)
            ladder.wanted = {}
            for level, size in enumerate(ladder.sizes):
                bid, ask = best_bid - level * grid, best_bid + (level + 1) * grid
                for buy, price in ((True, bid), (False, ask)):
                    if price in prices:
                        quantity = _quantity(rules, size, price)
                        if quantity:
                            ladder.wanted[(buy, price)] = quantity
        wanted = dict(ladder.wanted)
        slack = _PER_MILLE + int(self.config.tolerance * _PER_MILLE)
        commands: list[Command] = []
        for quote in quotes:
            key = (quote.side is Side.BUY, quote.price)
            target = wanted.get(key)
            left = quote.remaining
            near = (
                target is not None
                and left * _PER_MILLE <= target * slack
                and left * slack >= target * _PER_MILLE
            )
            if near:
                del wanted[key]  # it stays
            else:
                commands.append(CancelOrder(name, MAKER, quote.order_id))
        for (buy, price), quantity in wanted.items():
            side = Side.BUY if buy else Side.SELL
            units = QuantityUnits(quantity)
            commands.append(PlaceOrder.limit(name, MAKER, side, units, PriceUnits(price)))
        return commands

    def _taker(self, symbol: Symbol, ref: Decimal, last: int | None) -> PlaceOrder | None:
        cfg = self.config
        ref_units = symbol.price_units(str(ref))
        if last is None or last == ref_units:
            side = Side.BUY if self._rng.random() < 0.5 else Side.SELL
        else:
            side = Side.BUY if last < ref_units else Side.SELL
        size = cfg.taker_notional * self._ladders[symbol.name].factor / self._worth(symbol)
        size *= Decimal(repr(self._rng.lognormvariate(0.0, 0.6)))
        rules = symbol.rules
        quantity = _quantity(rules, int(size.scaleb(symbol.quote_scale)), ref_units)
        market = rules.market_quantities
        if quantity > market[-1]:
            quantity = market[-1] // rules.quantities.step * rules.quantities.step
        if not quantity:
            return None
        units = QuantityUnits(quantity)
        return PlaceOrder(symbol.name, TAKER, side, OrderType.MARKET, quantity=units)


def _snap(value: Decimal, step: Decimal, rounding: str = ROUND_FLOOR) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


def _quantity(rules: Rules, size: int, price: int) -> int:
    """A level's quantity at ``price`` (``size // price`` on the lot grid, at least the
    minimum quantity and notional, at most the maximum); 0 when none fits."""
    quantities = rules.quantities
    lowest, step = quantities.start, quantities.step
    quantity = max(size // price, -(-rules.notionals.start // price), lowest)
    quantity = lowest + -(-(quantity - lowest) // step) * step  # up to the lot grid
    most = min(quantities[-1], (rules.notionals.stop - 1) // price)
    if quantity > most:
        quantity = lowest + (most - lowest) // step * step
    return quantity if quantity in quantities and quantity * price in rules.notionals else 0


def _nice(ticks: float) -> int:
    """The whole number of ticks nearest ``ticks`` (on a log scale) among 1, 2 and 5
    times a power of ten."""
    if ticks <= 1:
        return 1
    power: int = 10 ** math.floor(math.log10(ticks))
    return min(
        (c * power for c in (1, 2, 5, 10)), key=lambda candidate: abs(math.log(candidate / ticks))
    )

"""The simulated market: market makers quoting around a moving reference price, and a
trickle of takers that trade with them so the last price (and the klines) follow it.

Each :meth:`Simulation.step` advances every symbol's :class:`PriceModel` to ``now`` and
returns the commands for that moment: the makers pull their quotes and post fresh ones
(a few levels each side), and now and then a small MARKET order takes the side that
moves the last trade price toward the reference. Crashes and pumps are shocks on the
model (:meth:`Simulation.shock`): the quotes follow the reference down or up, takers
hit them, the last price moves, and stops trigger, as on a real flash crash.

Pure and seeded: the same seed, prices and times give the same commands.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final

from sandex.exchange.orders import CancelAll, Command, OrderType, PlaceOrder, Side, TimeInForce
from sandex.exchange.simulation import PriceModel, Shock
from sandex.exchange.symbols import Symbol
from sandex.exchange.venue import MAKER, TAKER

__all__ = ["MakerConfig", "Simulation", "DEFAULT_PRICES"]

DEFAULT_PRICES: Final = {
    "BTCUSDT": Decimal("60000"),
    "ETHUSDT": Decimal("3000"),
    "SOLUSDT": Decimal("150"),
    "ETHBTC": Decimal("0.05"),
}
"""Starting reference prices of the default markets (any other symbol needs one given)."""


@dataclass(frozen=True)
class MakerConfig:
    levels: int = 5
    """Quote levels per side."""
    spread: Decimal = Decimal("0.0005")
    """Half the distance between best bid and best ask, as a fraction of the reference."""
    step: Decimal = Decimal("0.0005")
    """Distance between levels, as a fraction of the reference."""
    level_notional: Decimal = Decimal("25000")
    """Value of the first level, in USDT terms (deeper levels grow by half each)."""
    taker_probability: float = 0.6
    """Chance per symbol per step of a taker order."""
    taker_notional: Decimal = Decimal("300")
    """Typical value of a taker order, in the same terms as ``level_notional``."""


class Simulation:
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

    def step(self, now: int, last_prices: dict[str, int | None]) -> list[Command]:
        """The commands for ``now``: fresh quotes per symbol, and maybe a taker order.

        ``last_prices`` are the symbols' last trade prices (price units), to steer takers.
        """
        commands: list[Command] = []
        for name in self.symbols:
            commands.extend(self.step_symbol(name, now, last_prices.get(name)))
        return commands

    def step_symbol(self, name: str, now: int, last_price: int | None) -> list[Command]:
        """:meth:`step` for one symbol (a server interleaves symbols with requests)."""
        symbol = self._symbols[name]
        self._models[name].advance(now)
        ref = self.reference(name)
        if ref <= 0:
            return []
        commands: list[Command] = [CancelAll(name, MAKER), *self._quotes(symbol, ref)]
        if self._rng.random() < self.config.taker_probability:
            taker = self._taker(symbol, ref, last_price)
            if taker is not None:
                commands.append(taker)
        return commands

    def _worth(self, symbol: Symbol) -> Decimal:
        return self._usdt.get(symbol.quote_asset, Decimal(1))

    def _quotes(self, symbol: Symbol, ref: Decimal) -> list[PlaceOrder]:
        cfg = self.config
        tick = symbol.price_filter.tick_size
        out: list[PlaceOrder] = []
        worth = self._worth(symbol)
        for level in range(cfg.levels):
            distance = cfg.spread + cfg.step * level
            notional = cfg.level_notional * (1 + Decimal(level) / 2) / worth
            for side, raw, rounding in (
                (Side.BUY, ref * (1 - distance), ROUND_FLOOR),
                (Side.SELL, ref * (1 + distance), ROUND_CEILING),
            ):
                price = _snap(raw, tick, rounding)
                if price < symbol.price_filter.min_price or price <= 0:
                    continue
                quantity = self._lot(symbol, notional / price)
                if quantity is None:
                    continue
                out.append(
                    PlaceOrder(
                        symbol.name,
                        MAKER,
                        side,
                        OrderType.LIMIT,
                        quantity=symbol.quantity_units(str(quantity)),
                        price=symbol.price_units(str(price)),
                        time_in_force=TimeInForce.GTC,
                    )
                )
        return out

    def _taker(self, symbol: Symbol, ref: Decimal, last: int | None) -> PlaceOrder | None:
        cfg = self.config
        ref_units = symbol.price_units(str(ref))
        if last is None or last == ref_units:
            side = Side.BUY if self._rng.random() < 0.5 else Side.SELL
        else:
            side = Side.BUY if last < ref_units else Side.SELL
        size = cfg.taker_notional * Decimal(repr(self._rng.lognormvariate(0.0, 0.6)))
        quantity = self._lot(symbol, size / self._worth(symbol) / ref)
        if quantity is None:
            return None
        return PlaceOrder(
            symbol.name,
            TAKER,
            side,
            OrderType.MARKET,
            quantity=symbol.quantity_units(str(quantity)),
        )

    @staticmethod
    def _lot(symbol: Symbol, raw: Decimal) -> Decimal | None:
        lot = symbol.lot_size
        quantity = _snap(raw, lot.step_size)
        if symbol.market_lot_size is not None and symbol.market_lot_size.max_qty > 0:
            quantity = min(quantity, symbol.market_lot_size.max_qty)
        quantity = min(quantity, lot.max_qty)
        if quantity < lot.min_qty or quantity <= 0:
            return None
        return quantity


def _snap(value: Decimal, step: Decimal, rounding: str = ROUND_FLOOR) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step

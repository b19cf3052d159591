"""The simulated market's reference price: geometric Brownian motion with occasional
jumps, seeded, plus operator-ordered crashes and pumps (back-filled candle history is
:mod:`sandex.exchange.pricepath`'s).

Pure and deterministic: a model with the same seed, fed the same times, gives the same
prices. Prices here are floats (a model, not money); callers snap them to the
symbol's tick before they become orders or candles.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["PriceModel", "Shock"]

_YEAR_MS = 365 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Shock:
    """Move the price by ``factor`` (0.7: a 30 % crash; 1.5: a 50 % pump) over
    ``start``..``start + duration`` (ms), on top of the random walk."""

    start: int
    duration: int
    factor: float

    def progress(self, ts: int) -> float:
        if ts <= self.start:
            return 0.0
        if self.duration <= 0 or ts >= self.start + self.duration:
            return 1.0
        return (ts - self.start) / self.duration


class PriceModel:
    """A reference price that moves by GBM (annual ``volatility``, ``drift``) with Poisson
    jumps (``jumps_per_day`` of lognormal size ``jump_sigma``)."""

    def __init__(
        self,
        price: float,
        now: int,
        *,
        seed: int,
        volatility: float = 0.6,
        drift: float = 0.0,
        jumps_per_day: float = 2.0,
        jump_sigma: float = 0.01,
    ) -> None:
        if price <= 0:
            raise ValueError("the starting price must be positive")
        self._base = price
        self._at = now
        self._rng = random.Random(seed)
        self.volatility = volatility
        self.drift = drift
        self.jump_rate = jumps_per_day / (24 * 3600 * 1000)
        self.jump_sigma = jump_sigma
        self._shocks: list[Shock] = []

    @property
    def price(self) -> float:
        return self._base * self._shock_factor(self._at)

    def shock(self, shock: Shock) -> None:
        self._shocks.append(shock)

    def _shock_factor(self, ts: int) -> float:
        factor = 1.0
        for s in self._shocks:
            factor *= 1.0 + (s.factor - 1.0) * s.progress(ts)
        return factor

    def advance(self, now: int) -> float:
        """Move the model to ``now`` (ms, not before the last call); the new price."""
        dt = now - self._at
        if dt < 0:
            raise ValueError("time runs forward")
        if dt:
            years = dt / _YEAR_MS
            sigma = self.volatility
            step = (self.drift - sigma * sigma / 2) * years + sigma * math.sqrt(years) * (
                self._rng.gauss(0.0, 1.0)
            )
            if self._rng.random() < 1.0 - math.exp(-self.jump_rate * dt):
                step += self._rng.gauss(0.0, self.jump_sigma)
            self._base *= math.exp(step)
            self._at = now
            done = [s for s in self._shocks if s.progress(now) >= 1.0]
            for s in done:  # a finished shock becomes part of the base price
                self._base *= s.factor
                self._shocks.remove(s)
        return self.price

"""The reference price model."""

from __future__ import annotations

import itertools
import math

import pytest

from sandex.exchange.price_model import PriceModel, Shock

NOW = 1_800_000_000_000


def test_the_same_seed_gives_the_same_path() -> None:
    a = PriceModel(60_000.0, NOW, seed=7)
    b = PriceModel(60_000.0, NOW, seed=7)
    c = PriceModel(60_000.0, NOW, seed=8)
    path_a = [a.advance(NOW + i * 1000) for i in range(1, 200)]
    assert path_a == [b.advance(NOW + i * 1000) for i in range(1, 200)]
    assert path_a != [c.advance(NOW + i * 1000) for i in range(1, 200)]
    assert all(p > 0 for p in path_a)


def test_volatility_is_roughly_what_was_asked() -> None:
    model = PriceModel(100.0, NOW, seed=1, volatility=0.5, jumps_per_day=0.0)
    prices = [model.advance(NOW + i * 60_000) for i in range(1, 20_001)]
    returns = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    mean = sum(returns) / len(returns)
    per_minute = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))
    annual = per_minute * math.sqrt(365 * 24 * 60)
    assert 0.45 < annual < 0.55


def test_a_crash_moves_the_price_by_the_asked_factor_over_its_duration() -> None:
    model = PriceModel(100.0, NOW, seed=3, volatility=0.0, jumps_per_day=0.0)
    model.shock(Shock(start=NOW, duration=10_000, factor=0.7))
    assert model.advance(NOW + 5_000) == pytest.approx(85.0)
    assert model.advance(NOW + 10_000) == pytest.approx(70.0)
    assert model.advance(NOW + 60_000) == pytest.approx(70.0)  # and stays there


def test_time_runs_forward() -> None:
    model = PriceModel(100.0, NOW, seed=3)
    model.advance(NOW + 10)
    with pytest.raises(ValueError):
        model.advance(NOW)

"""The operator's exchange actions: credits wait for the engine, shocks queue for it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandex.bootstrap import Sandex, build_core
from sandex.service.errors import InvalidRequest
from sandex.service.operator import ExchangeOperator
from sandex.service.ports import PendingShock, ShockKind
from sandex.storage.exchange_store import SqlExchangeStore
from support import make_user

NOW = 1_700_000_000_000
UNIT = 10**8


class FakeTime:
    """``sleep`` and ``monotonic`` that only move when slept."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.t += seconds

    def monotonic(self) -> float:
        return self.t


def test_a_credit_without_an_engine_waits_its_time_then_applies_at_the_next_start(
    sandex: Sandex,
) -> None:
    alice = make_user(sandex, now=NOW)
    clock = FakeTime()
    operator = ExchangeOperator(
        SqlExchangeStore(sandex.db), sleep=clock.sleep, monotonic=clock.monotonic
    )
    assert operator.credit(alice.id, "BTC", UNIT // 2, now=NOW, wait_s=0.35) is False
    assert clock.sleeps == 4  # polled every 0.1 s until the wait ran out, then gave up
    assert "BTC" not in operator.balances(alice.id)

    core = build_core(sandex)
    core.start(NOW)
    core.close()
    assert operator.balances(alice.id)["BTC"] == (UNIT // 2, 0)


def test_the_sandex_operator_is_wired_to_the_same_database(sandex: Sandex) -> None:
    alice = make_user(sandex, now=NOW)
    assert sandex.operator.credit(alice.id, "ETH", 7 * UNIT, now=NOW) is False
    core = build_core(sandex)
    core.start(NOW)
    core.close()
    assert sandex.operator.balances(alice.id)["ETH"] == (7 * UNIT, 0)


def test_price_moves_and_liquidity_changes_queue_for_the_next_market_step(
    sandex: Sandex,
) -> None:
    operator = sandex.operator
    crash = operator.move_price("BTCUSDT", Decimal("0.7"), 10_000, now=NOW)
    thin = operator.set_liquidity("ETHUSDT", Decimal("0.1"), 0, now=NOW)
    assert SqlExchangeStore(sandex.db).pending_shocks(NOW + 1) == [
        PendingShock(crash, "BTCUSDT", "0.7", 10_000, ShockKind.PRICE),
        PendingShock(thin, "ETHUSDT", "0.1", 0, ShockKind.LIQUIDITY),
    ]


@pytest.mark.parametrize("amount", [0, -1])
def test_a_credit_must_be_positive(sandex: Sandex, amount: int) -> None:
    alice = make_user(sandex, now=NOW)
    with pytest.raises(InvalidRequest, match="positive"):
        sandex.operator.credit(alice.id, "BTC", amount, now=NOW)


def test_a_shock_needs_a_factor_that_moves_something(sandex: Sandex) -> None:
    with pytest.raises(InvalidRequest):
        sandex.operator.move_price("BTCUSDT", Decimal(1), 1000, now=NOW)
    with pytest.raises(InvalidRequest):
        sandex.operator.move_price("BTCUSDT", Decimal(0), 1000, now=NOW)
    with pytest.raises(InvalidRequest):
        sandex.operator.set_liquidity("BTCUSDT", Decimal(0), 0, now=NOW)
    with pytest.raises(InvalidRequest):
        sandex.operator.set_liquidity("BTCUSDT", Decimal(1), -1, now=NOW)

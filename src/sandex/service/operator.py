"""The operator's hand on the exchange: fund an account, move the simulated market.

Both reach a running engine through storage: the engine applies a credit (and marks it
applied in the same transaction as the balance) within about half a second, and a
crash, pump or change of liquidity on its next market step. With no engine running,
they wait in storage and apply when one starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from sandex.service.errors import InvalidRequest
from sandex.service.ports import ExchangeStore, ShockKind

__all__ = ["ExchangeOperator", "OPERATOR_CREDIT"]

OPERATOR_CREDIT: Final = "operator credit"
"""The reason recorded with a credit from the operator."""
_POLL_S: Final = 0.1


class ExchangeOperator:
    """Operator actions on the exchange, over the exchange's storage port."""

    def __init__(
        self,
        store: ExchangeStore,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._sleep = sleep
        self._monotonic = monotonic

    def credit(
        self, account: int, asset: str, amount: int, *, now: int, wait_s: float = 0.0
    ) -> bool:
        """Credit ``amount`` units of ``asset`` to ``account``'s free balance (paper money,
        from the exchange's funding account), then wait up to ``wait_s`` seconds for a
        running engine to apply it. True when it was applied; False when it is queued
        for the next engine start."""
        if amount <= 0:
            raise InvalidRequest("a credit must be a positive amount")
        credit_id = self._store.add_credit(account, asset, amount, OPERATOR_CREDIT, now)
        deadline = self._monotonic() + wait_s
        applied = self._store.credit_applied(credit_id)
        while not applied and self._monotonic() < deadline:
            self._sleep(_POLL_S)
            applied = self._store.credit_applied(credit_id)
        return applied

    def move_price(self, symbol: str, factor: Decimal, duration_ms: int, *, now: int) -> int:
        """Order a crash (``factor`` below 1) or a pump (above 1) of ``symbol``'s reference
        price over ``duration_ms``, for the engine's next market step; returns its id."""
        if factor <= 0 or factor == 1:
            raise InvalidRequest("a price move needs a positive factor other than 1")
        if duration_ms < 0:
            raise InvalidRequest("a price move cannot last a negative time")
        return self._store.add_shock(symbol, str(factor), duration_ms, now, ShockKind.PRICE)

    def set_liquidity(self, symbol: str, factor: Decimal, duration_ms: int, *, now: int) -> int:
        """Scale the market makers' quote sizes on ``symbol`` by ``factor`` for
        ``duration_ms`` (0: until changed again), from the next market step."""
        if factor <= 0:
            raise InvalidRequest("a liquidity factor must be positive")
        if duration_ms < 0:
            raise InvalidRequest("a liquidity change cannot last a negative time")
        return self._store.add_shock(symbol, str(factor), duration_ms, now, ShockKind.LIQUIDITY)

    def balances(self, account: int) -> dict[str, tuple[int, int]]:
        """``account``'s stored balances: asset → (free, locked) in asset units."""
        return self._store.balances(account)

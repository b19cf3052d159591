"""Per-key risk policy: symbol allowlist, order-size and open-order caps, and a mode.

None of the big exchanges offers these; they are the guardrails traders otherwise
build proxies for.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from sandex.keys.errors import InvalidPolicy, PolicyViolation

__all__ = ["Mode", "RiskPolicy", "parse_symbols", "parse_notional", "MAX_SYMBOLS"]

MAX_SYMBOLS: Final = 200
_MAX_NOTIONAL: Final = Decimal(10) ** 18
_MAX_DIGITS: Final = 28
_SYMBOL_RE: Final = re.compile(r"^[A-Z0-9]{2,20}$")


class Mode(enum.Enum):
    """How much a key may still do.

    NORMAL: everything its permissions allow. CANCEL_ONLY: no new orders; reads,
    cancels and fund movements its permissions allow. FROZEN (quarantine after a
    suspected leak): reads and cancels only, so a bot's open orders can be pulled.
    """

    NORMAL = "NORMAL"
    CANCEL_ONLY = "CANCEL_ONLY"
    FROZEN = "FROZEN"

    @property
    def strictness(self) -> int:
        return {"NORMAL": 0, "CANCEL_ONLY": 1, "FROZEN": 2}[self.value]

    @classmethod
    def parse(cls, text: str) -> Mode:
        try:
            return cls(text.strip().upper())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise InvalidPolicy(f"unknown mode {text!r} (known: {names})") from None


def parse_symbols(items: Iterable[str] | str) -> frozenset[str] | None:
    """Parse ``"BTCUSDT,ETHUSDT"``; an empty input means "no symbol restriction" (None)."""
    raw = items.split(",") if isinstance(items, str) else list(items)
    symbols = {s.strip().upper() for s in raw if s.strip()}
    if not symbols:
        return None
    bad = sorted(s for s in symbols if not _SYMBOL_RE.match(s))
    if bad:
        raise InvalidPolicy(f"invalid symbol {', '.join(bad)} (expected like BTCUSDT)")
    if len(symbols) > MAX_SYMBOLS:
        raise InvalidPolicy(f"{len(symbols)} symbols; at most {MAX_SYMBOLS} are allowed")
    return frozenset(symbols)


def parse_notional(text: str | Decimal | None) -> Decimal | None:
    """Parse a positive order-notional cap (in the quote asset); None means no cap.

    The value is kept exactly as typed (no rounding): more than 28 significant digits,
    or more than 10^18, is refused rather than silently changed.
    """
    if text is None:
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise InvalidPolicy(f"max notional {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise InvalidPolicy(f"max notional must be a positive number, not {text!r}")
    if value > _MAX_NOTIONAL or len(value.as_tuple().digits) > _MAX_DIGITS:
        raise InvalidPolicy(f"max notional {text!r} is too large or too precise")
    normalized = value.normalize()  # 500.00 -> 5E+2: put integers back in plain form
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return normalized.quantize(Decimal(1))
    return normalized


@dataclass(frozen=True)
class RiskPolicy:
    """Guardrails checked on every order a key places."""

    symbols: frozenset[str] | None = None
    max_notional: Decimal | None = None
    max_open_orders: int | None = None
    mode: Mode = Mode.NORMAL

    def __post_init__(self) -> None:
        if self.max_open_orders is not None and not 1 <= self.max_open_orders <= 100_000:
            raise InvalidPolicy("max open orders must be between 1 and 100000")
        if self.max_notional is not None and (
            not self.max_notional.is_finite() or self.max_notional <= 0
        ):
            raise InvalidPolicy("max notional must be a positive number")

    def check_order(self, *, symbol: str, notional: Decimal, open_orders: int) -> None:
        """Raise :class:`PolicyViolation` if a new order of ``notional`` on ``symbol`` breaks
        the policy, given the key's ``open_orders`` already resting."""
        if self.mode is not Mode.NORMAL:
            raise PolicyViolation(
                "This API key has no operation privilege to place orders:"
                f" it is {self.mode.value}.",
                limit="mode",
            )
        if self.symbols is not None and symbol not in self.symbols:
            raise PolicyViolation(
                f"This API key has no operation privilege for symbol {symbol}"
                " (not in its symbol allowlist).",
                limit="symbols",
            )
        if self.max_notional is not None and notional > self.max_notional:
            raise PolicyViolation(
                f"Order notional {notional} exceeds this API key's max order notional"
                f" {self.max_notional}.",
                limit="max_notional",
            )
        if self.max_open_orders is not None and open_orders >= self.max_open_orders:
            raise PolicyViolation(
                f"This API key already has {open_orders} open orders; its limit is"
                f" {self.max_open_orders}.",
                limit="max_open_orders",
            )

    def loosened_in(self, new: RiskPolicy) -> list[str]:
        """What ``new`` allows that this policy did not (empty when ``new`` is as strict)."""
        looser = []
        if self.symbols is not None and (new.symbols is None or not new.symbols <= self.symbols):
            looser.append("symbol allowlist")
        if self.max_notional is not None and (
            new.max_notional is None or new.max_notional > self.max_notional
        ):
            looser.append("max notional")
        if self.max_open_orders is not None and (
            new.max_open_orders is None or new.max_open_orders > self.max_open_orders
        ):
            looser.append("max open orders")
        if new.mode.strictness < self.mode.strictness:
            looser.append("mode")
        return looser

"""Fixed-point money: prices and quantities as ints in a per-symbol scale.

The engine never sees a ``Decimal`` or a string. A symbol whose ``tickSize`` is
``0.01`` keeps prices in hundredths (``price_scale == 2``: ``"60000.50"`` is
``6000050``), one whose ``stepSize`` is ``0.00001`` keeps quantities in units of
``10**-5``, and a notional (``price * quantity``) is then exact in units of
``10**-(price_scale + quantity_scale)``. Strings from requests are turned into
units at the edge (:meth:`sandex.exchange.symbols.Symbol.price_units` and friends)
and units back into Binance's eight-decimal strings for responses.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

from sandex.exchange.rejections import illegal, refuse, too_precise

__all__ = [
    "ASSET_DECIMALS",
    "NUMBER_PATTERN",
    "parse_number",
    "decimals",
    "to_units",
    "from_units",
    "format_units",
]

ASSET_DECIMALS: Final = 8
"""Binance shows every price, quantity and amount with eight decimals."""

NUMBER_PATTERN: Final = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
"""The legal range Binance quotes for a decimal parameter (in its -1100 message)."""

_NUMBER: Final = re.compile(NUMBER_PATTERN)


def parse_number(text: str, name: str) -> Decimal:
    """Parse a request parameter such as ``"0.00100000"`` into an exact ``Decimal``.

    Raises :class:`~sandex.exchange.errors.OrderRejected` with Binance's -1100 (illegal
    characters: signs, exponents, spaces) or -1111 (more than eight significant decimals).
    """
    if not _NUMBER.match(text):
        refuse(illegal(name, NUMBER_PATTERN))
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal digits
        refuse(illegal(name))
    if decimals(value) > ASSET_DECIMALS:
        refuse(too_precise(name))
    return value


def decimals(value: Decimal) -> int:
    """Significant decimal places of ``value``: 0 for ``10``, 3 for ``0.00100000``."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int), "finite decimals only"
    return max(0, -exponent)


def to_units(value: Decimal, scale: int) -> int | None:
    """``value`` as an int count of ``10**-scale``, or None when it is not a whole count."""
    scaled = value.scaleb(scale)
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def from_units(units: int, scale: int) -> Decimal:
    """The exact ``Decimal`` that ``units`` of ``10**-scale`` make."""
    return Decimal(units).scaleb(-scale)


def format_units(units: int, scale: int, places: int = ASSET_DECIMALS) -> str:
    """Render ``units`` of ``10**-scale`` with exactly ``places`` decimals, as Binance does.

    ``format_units(100, 5) == "0.00100000"``. Digits beyond ``places`` are cut (toward
    zero), as Binance truncates a quote amount of nine decimals to eight.
    """
    sign = "-" if units < 0 else ""
    units = abs(units)
    if scale > places:
        units //= 10 ** (scale - places)
    else:
        units *= 10 ** (places - scale)
    if places == 0:
        return f"{sign}{units}"
    whole, frac = divmod(units, 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"

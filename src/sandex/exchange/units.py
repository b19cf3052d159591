"""The four integer scales money is counted in, as distinct types.

Each is an ``int`` at run time (``typing.NewType``: mypyc compiles the wrapping away),
but mypy tells them apart, so a price cannot be passed where a quantity is expected:

- :data:`PriceUnits`: a symbol's price in units of its tick decimals
  (``price_scale``: ``"60000.50"`` is ``6000050`` when ``tickSize`` is ``0.01``);
- :data:`QuantityUnits`: a symbol's base quantity in units of its step decimals
  (``quantity_scale``);
- :data:`QuoteUnits`: a symbol's notional, ``price * quantity``, exact in units of
  ``10**-(price_scale + quantity_scale)`` (``quote_scale``);
- :data:`AssetUnits`: a balance of any asset in units of ``10**-8``, Binance's eight
  decimals (:data:`sandex.exchange.money.ASSET_DECIMALS`): what the ledger keeps.

The product of a price and a quantity is a plain ``int``: say what it is
(``QuoteUnits(price * quantity)``) where it becomes one.
"""

from __future__ import annotations

from typing import NewType

__all__ = ["PriceUnits", "QuantityUnits", "QuoteUnits", "AssetUnits"]

PriceUnits = NewType("PriceUnits", int)
QuantityUnits = NewType("QuantityUnits", int)
QuoteUnits = NewType("QuoteUnits", int)
AssetUnits = NewType("AssetUnits", int)

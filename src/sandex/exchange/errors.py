"""Errors of the exchange domain.

Our exception hierarchy::

    ExchangeError
      InvalidMarket          a symbol or filter definition is inconsistent (configuration)
      OrderRejected          a request value is refused; carries Binance's ``code`` and ``msg``
        InsufficientBalance    -2010: not enough free balance to hold for an order
      LedgerError            a ledger operation that can only be a programming error

The matching engine itself never raises for a client's mistake: it answers a command
with a :class:`~sandex.exchange.events.Rejected` event carrying the same code and
message. :class:`OrderRejected` is what the edge helpers raise while turning request
strings into engine values (``"0.00100000"`` into fixed-point units), so that a
gateway reports the same Binance error either way.
"""

from __future__ import annotations

__all__ = [
    "ExchangeError",
    "InvalidMarket",
    "OrderRejected",
    "InsufficientBalance",
    "LedgerError",
]


class ExchangeError(Exception):
    """Base of every error raised by :mod:`sandex.exchange`."""


class InvalidMarket(ExchangeError):
    """A symbol or filter definition is inconsistent; the message says what is wrong."""


class OrderRejected(ExchangeError):
    """A request value is refused with Binance's error ``code`` and ``msg``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class InsufficientBalance(OrderRejected):
    """Not enough free balance; the message makes ccxt raise ``InsufficientFunds``."""

    def __init__(self) -> None:
        super().__init__(-2010, "Account has insufficient balance for requested action.")


class LedgerError(ExchangeError):
    """A ledger operation that breaks its own rules (an unknown hold, a negative amount)."""

"""Binance's refusals, in one table: the code and message of each -1xxx/-2xxx the
engine answers with (filter failures sit with their filters, in
:mod:`sandex.exchange.symbols`). Messages are Binance's own, word for word, because
clients match on them: ccxt maps "Order would immediately match and take." to
OrderImmediatelyFillable, "Unknown order sent." to OrderNotFound, and so on.
"""

from __future__ import annotations

from typing import Final

from sandex.exchange.events import Rejected
from sandex.exchange.orders import OrderType

__all__ = [
    "INVALID_SYMBOL",
    "UNKNOWN_ORDER",
    "DUPLICATE_ORDER",
    "WOULD_TAKE",
    "WOULD_TRIGGER",
    "CANCEL_RESTRICTED",
    "NO_CANCEL_TARGET",
    "STP_NOT_ALLOWED",
    "NO_LIQUIDITY",
    "NO_LOT_LIQUIDITY",
    "QUOTE_MARKET_NOT_ALLOWED",
    "REPLACE_NOT_ALLOWED",
    "REPLACE_MISMATCH",
    "REPLACE_FAILED",
    "REPLACE_PARTLY_FAILED",
    "UNSUPPORTED",
    "NOT_SUPPORTED_MSG",
    "CLOSED",
    "ILLEGAL_VALUE",
    "INVALID_SIDE",
    "INVALID_TYPE",
    "INVALID_TIF",
    "INVALID_STP",
    "BOTH_QUANTITIES_EMPTY",
    "missing",
    "not_required",
]

INVALID_SYMBOL: Final = Rejected(-1121, "Invalid symbol.")
UNKNOWN_ORDER: Final = Rejected(-2011, "Unknown order sent.")
DUPLICATE_ORDER: Final = Rejected(-2010, "Duplicate order sent.")
WOULD_TAKE: Final = Rejected(-2010, "Order would immediately match and take.")
WOULD_TRIGGER: Final = Rejected(-2010, "Stop price would trigger immediately.")
CANCEL_RESTRICTED: Final = Rejected(-2011, "Order was not canceled due to cancel restrictions.")
NO_CANCEL_TARGET: Final = Rejected(
    -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
)
STP_NOT_ALLOWED: Final = Rejected(
    -1013, "This symbol does not allow the specified self-trade prevention mode."
)
NO_LIQUIDITY: Final = Rejected(-2010, "Order book liquidity is less than symbol minimum quantity.")
NO_LOT_LIQUIDITY: Final = Rejected(
    -2010, "Order book liquidity is less than LOT_SIZE filter minimum quantity."
)
QUOTE_MARKET_NOT_ALLOWED: Final = Rejected(  # sic: "not support", as Binance words it
    -2010, "Quote order qty market orders are not support for this symbol."
)
REPLACE_NOT_ALLOWED: Final = Rejected(
    -2010, "Order cancel-replace is not supported for this symbol."
)
REPLACE_MISMATCH: Final = Rejected(-1130, "Data sent for parameter 'symbol' is not valid.")
UNSUPPORTED: Final = Rejected(-1014, "Unsupported order combination.")
NOT_SUPPORTED_MSG: Final = {
    OrderType.MARKET: "Market orders are not supported for this symbol.",
    OrderType.STOP_LOSS: "Stop loss orders are not supported for this symbol.",
    OrderType.STOP_LOSS_LIMIT: "Stop loss limit orders are not supported for this symbol.",
    OrderType.TAKE_PROFIT: "Take profit orders are not supported for this symbol.",
    OrderType.TAKE_PROFIT_LIMIT: "Take profit limit orders are not supported for this symbol.",
}
CLOSED: Final = Rejected(-2010, "Market is closed.")
ILLEGAL_VALUE: Final = Rejected(-1100, "Illegal characters found in a parameter.")
INVALID_SIDE: Final = Rejected(-1117, "Invalid side.")
INVALID_TYPE: Final = Rejected(-1116, "Invalid orderType.")
INVALID_TIF: Final = Rejected(-1115, "Invalid timeInForce.")
INVALID_STP: Final = Rejected(
    -1130, "Data sent for parameter 'selfTradePreventionMode' is not valid."
)
BOTH_QUANTITIES_EMPTY: Final = Rejected(
    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
)
REPLACE_FAILED: Final = (-2022, "Order cancel-replace failed.")
REPLACE_PARTLY_FAILED: Final = (-2021, "Order cancel-replace partially failed.")


def missing(name: str) -> Rejected:
    return Rejected(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def not_required(name: str) -> Rejected:
    if name == "timeInForce":
        return Rejected(-1114, "TimeInForce parameter sent when not required.")
    return Rejected(-1106, f"Parameter '{name}' sent when not required.")

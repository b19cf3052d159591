"""Binance's vocabulary, in one module: the code and message of each -1xxx/-2xxx a
client can get, and the readers of request parameters that answer with them.

The engine, the order-list rules and every HTTP route take their refusals from here
(filter failures sit with their filters, in :mod:`sandex.exchange.symbols`). Messages
are Binance's own, word for word, because clients match on them: ccxt maps "Order
would immediately match and take." to OrderImmediatelyFillable, "Unknown order sent."
to OrderNotFound, and so on.

The readers take a request's parameters (``Mapping[str, str]``) and raise
:class:`~sandex.exchange.errors.OrderRejected`, which the HTTP layer answers with a 400
and the ``{"code", "msg"}`` body. A symbol is read as Binance reads it, on every route:
missing is -1102, anything outside ``^[A-Z0-9-_.]{1,20}$`` (a lowercase ``btcusdt``
too) is -1100, and a well-formed name the exchange does not list is -1121.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from typing import Final, NoReturn, TypeVar

from sandex.exchange.errors import OrderRejected
from sandex.exchange.events import Rejected
from sandex.exchange.orders import OrderType

__all__ = [
    "INVALID_SYMBOL",
    "UNKNOWN_ORDER",
    "NO_SUCH_ORDER",
    "NO_SUCH_ORDER_LIST",
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
    "UNKNOWN_ORDER_LIST",
    "DUPLICATE_ORDER_LIST",
    "OCO_TYPE_REFUSED",
    "OTO_TYPE_REFUSED",
    "OCO_BOTH_LIMIT",
    "OCO_BUY_LIMIT_BELOW",
    "OCO_SELL_LIMIT_ABOVE",
    "OCO_BUY_STOP_ABOVE",
    "OCO_SELL_STOP_BELOW",
    "OCO_BUY_PROFIT_BELOW",
    "OCO_SELL_PROFIT_ABOVE",
    "OCO_PRICES",
    "ILLEGAL_VALUE",
    "INVALID_SIDE",
    "INVALID_TYPE",
    "INVALID_TIF",
    "INVALID_STP",
    "BOTH_QUANTITIES_EMPTY",
    "BAD_COMBINATION",
    "INVALID_INTERVAL",
    "INVALID_TICKER_TYPE",
    "START_AFTER_END",
    "AGG_WINDOW_TOO_LONG",
    "EXCHANGE_NOT_RUNNING",
    "INVALID_TIME_UNIT",
    "SYMBOL_RANGE",
    "SYMBOLS_RANGE",
    "LONG_RANGE",
    "CLIENT_ID_RANGE",
    "missing",
    "neither",
    "illegal",
    "not_valid",
    "empty",
    "too_many_values",
    "too_precise",
    "duplicate",
    "not_utf8",
    "too_many_parameters",
    "not_required",
    "refuse",
    "mandatory",
    "symbol",
    "symbol_list",
    "symbol_name",
    "unsigned",
    "long",
    "limit",
    "capped_limit",
    "window",
    "enum_value",
    "required_enum",
    "client_id",
]

INVALID_SYMBOL: Final = Rejected(-1121, "Invalid symbol.")
UNKNOWN_ORDER: Final = Rejected(-2011, "Unknown order sent.")
NO_SUCH_ORDER: Final = Rejected(-2013, "Order does not exist.")
NO_SUCH_ORDER_LIST: Final = Rejected(-2013, "Order list does not exist.")
DUPLICATE_ORDER: Final = Rejected(-2010, "Duplicate order sent.")
WOULD_TAKE: Final = Rejected(-2010, "Order would immediately match and take.")
WOULD_TRIGGER: Final = Rejected(-2010, "Stop price would trigger immediately.")
CANCEL_RESTRICTED: Final = Rejected(-2011, "Order was not canceled due to cancel restrictions.")
NO_CANCEL_TARGET: Final = Rejected(
    -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
)
"""Binance's -1102 for two alternatives both missing; :func:`neither` spells the rest."""
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
UNKNOWN_ORDER_LIST: Final = Rejected(-2011, "Order list does not exist.")
DUPLICATE_ORDER_LIST: Final = Rejected(-2010, "Order list's listClientOrderId is already in use.")
OCO_TYPE_REFUSED: Final = Rejected(-1158, "Order type not supported in OCO.")
OTO_TYPE_REFUSED: Final = Rejected(-1158, "Order type not supported in OTO.")
OCO_BOTH_LIMIT: Final = Rejected(-1168, "At least one OCO order must be contingent.")
OCO_BUY_LIMIT_BELOW: Final = Rejected(-1165, "A limit order in a buy OCO must be below.")
OCO_SELL_LIMIT_ABOVE: Final = Rejected(-1166, "A limit order in a sell OCO must be above.")
OCO_BUY_STOP_ABOVE: Final = Rejected(-1196, "A stop loss order in a buy OCO must be above.")
OCO_SELL_STOP_BELOW: Final = Rejected(-1197, "A stop loss order in a sell OCO must be below.")
OCO_BUY_PROFIT_BELOW: Final = Rejected(-1198, "A take profit order in a buy OCO must be below.")
OCO_SELL_PROFIT_ABOVE: Final = Rejected(-1199, "A take profit order in a sell OCO must be above.")
OCO_PRICES: Final = Rejected(-2010, "The relationship of the prices for the orders is not correct.")
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
BAD_COMBINATION: Final = Rejected(-1128, "Combination of optional parameters invalid.")
INVALID_INTERVAL: Final = Rejected(-1120, "Invalid interval.")
INVALID_TICKER_TYPE: Final = Rejected(-1139, "Invalid ticker type.")
START_AFTER_END: Final = Rejected(-1023, "Start time is greater than end time.")
AGG_WINDOW_TOO_LONG: Final = Rejected(-1127, "More than 1 hours between startTime and endTime.")
EXCHANGE_NOT_RUNNING: Final = Rejected(-1000, "The exchange is not running.")
INVALID_TIME_UNIT: Final = Rejected(
    -1194, "Invalid value for time unit; expected either MICROSECOND or MILLISECOND."
)

SYMBOL_RANGE: Final = "^[A-Z0-9-_.]{1,20}$"
"""The legal range Binance quotes in its -1100 for ``symbol``."""
SYMBOLS_RANGE: Final = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
"""The legal range Binance quotes in its -1100 for ``symbols`` (a JSON array of names)."""
LONG_RANGE: Final = "^[0-9]{1,20}$"
CLIENT_ID_RANGE: Final = "^[\\.A-Z\\:/a-z0-9_-]{1,36}$"
_SYMBOL: Final = re.compile(r"[A-Z0-9\-_.]{1,20}")
_LONG: Final = re.compile(r"[0-9]{1,20}")
_CLIENT_ID: Final = re.compile(r"[\.A-Z\:/a-z0-9_-]{1,36}")
_MAX_INT: Final = 2**63 - 1
"""The largest id or time a query may carry (a 64-bit column: more would overflow)."""
REPLACE_FAILED: Final = (-2022, "Order cancel-replace failed.")
REPLACE_PARTLY_FAILED: Final = (-2021, "Order cancel-replace partially failed.")


# -- messages that name a parameter ------------------------------------------------------


def missing(name: str) -> Rejected:
    return Rejected(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def neither(first: str, second: str) -> Rejected:
    return Rejected(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


def illegal(name: str, legal: str | None = None) -> Rejected:
    if legal is None:
        return Rejected(-1100, f"Illegal characters found in parameter '{name}'.")
    return Rejected(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def not_valid(name: str, hint: str | None = None) -> Rejected:
    """Binance's -1130; Sandex adds ``hint`` (what is valid) where Binance says nothing."""
    said = f"Data sent for parameter '{name}' is not valid"
    return Rejected(-1130, f"{said}." if hint is None else f"{said}; {hint}.")


def empty(name: str) -> Rejected:
    return Rejected(-1105, f"Parameter '{name}' was empty.")


def too_precise(name: str) -> Rejected:
    return Rejected(-1111, f"Parameter '{name}' has too much precision.")


def duplicate(name: str) -> Rejected:
    return Rejected(-1101, f"Duplicate values for parameter '{name}'.")


def not_utf8(where: str) -> Rejected:
    """Sandex's -1100 for a query string or body that is not URL-encoded UTF-8."""
    return Rejected(
        -1100, f"Illegal characters found in the {where}: it must be URL-encoded UTF-8."
    )


def too_many_parameters(most: int) -> Rejected:
    return Rejected(-1101, f"Too many parameters; the limit is {most}.")


def too_many_values(name: str, most: int) -> Rejected:
    return Rejected(-1101, f"Too many values sent for parameter '{name}', max is {most}.")


def not_required(name: str) -> Rejected:
    if name == "timeInForce":
        return Rejected(-1114, "TimeInForce parameter sent when not required.")
    return Rejected(-1106, f"Parameter '{name}' sent when not required.")


# -- parameter readers -------------------------------------------------------------------

_Listed = TypeVar("_Listed")
_Enum = TypeVar("_Enum", bound=enum.Enum)


def refuse(rejected: Rejected) -> NoReturn:
    """Raise ``rejected`` as the client's error (a 400 over HTTP)."""
    raise OrderRejected(rejected.code, rejected.msg)


def mandatory(params: Mapping[str, str], name: str) -> str:
    """``name``'s value; -1102 when it is missing or empty."""
    value = params.get(name)
    if not value:
        refuse(missing(name))
    return value


def _listed(text: str, known: Mapping[str, _Listed], name: str) -> _Listed:
    if not _SYMBOL.fullmatch(text):
        refuse(illegal(name, SYMBOL_RANGE))
    found = known.get(text)
    if found is None:
        refuse(INVALID_SYMBOL)
    return found


def symbol_name(params: Mapping[str, str]) -> str | None:
    """An optional ``symbol`` where no market is listed (margin, futures): None when
    absent, else checked as :func:`symbol` checks its shape (-1100)."""
    text = params.get("symbol")
    if text is None:
        return None
    if not _SYMBOL.fullmatch(text):
        refuse(illegal("symbol", SYMBOL_RANGE))
    return text


def symbol(params: Mapping[str, str], known: Mapping[str, _Listed]) -> _Listed:
    """The market ``symbol`` names, as Binance reads it on every route: -1102 when
    missing, -1100 outside ``^[A-Z0-9-_.]{1,20}$`` (lowercase included: no route
    upper-cases it), -1121 when ``known`` does not list it."""
    return _listed(mandatory(params, "symbol"), known, "symbol")


def symbol_list(
    params: Mapping[str, str], known: Mapping[str, _Listed], most: int | None = None
) -> list[_Listed]:
    """``symbols=["BTCUSDT","ETHUSDT"]``: a JSON array of names, each read as
    :func:`symbol` reads one (a name sent twice is listed once); at most ``most``."""
    try:
        names = json.loads(mandatory(params, "symbols"))
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(
        isinstance(n, str) and _SYMBOL.fullmatch(n) for n in names
    ):
        refuse(illegal("symbols", SYMBOLS_RANGE))
    if not names:
        refuse(missing("symbols"))
    if most is not None and len(names) > most:
        refuse(too_many_values("symbols", most))
    return [_listed(n, known, "symbols") for n in dict.fromkeys(names)]


def unsigned(params: Mapping[str, str], name: str) -> int | None:
    """An id or a time: None when absent or empty, else at most 2**63-1 (-1100)."""
    value = params.get(name)
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > _MAX_INT:
        refuse(illegal(name))
    return int(value)


def long(params: Mapping[str, str], name: str) -> int | None:
    """A public route's number: None when absent, -1105 when empty, -1100 (with the
    legal range) unless 1 to 20 digits."""
    text = params.get(name)
    if text is None:
        return None
    if not text:
        refuse(empty(name))
    if not _LONG.fullmatch(text):
        refuse(illegal(name, LONG_RANGE))
    return int(text)


def limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    """An account route's ``limit``: ``default`` when absent, else 1 to ``maximum`` (-1130)."""
    value = unsigned(params, "limit")
    if value is None:
        return default
    if not 1 <= value <= maximum:
        refuse(not_valid("limit"))
    return value


def capped_limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    """A public route's ``limit``: ``default`` when absent, at least 1, and cut to
    ``maximum`` (Binance answers a larger limit with ``maximum`` entries)."""
    value = long(params, "limit")
    if value is None:
        return default
    if value < 1:
        refuse(not_valid("limit"))
    return min(value, maximum)


def window(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    """A public route's ``startTime`` and ``endTime``; -1023 when start is after end."""
    start, end = long(params, "startTime"), long(params, "endTime")
    if start is not None and end is not None and start > end:
        refuse(START_AFTER_END)
    return start, end


def enum_value(
    params: Mapping[str, str], name: str, kind: type[_Enum], error: Rejected
) -> _Enum | None:
    """``name``'s value as a member of ``kind`` (case-insensitive), None when absent;
    ``error`` when it names no member."""
    value = params.get(name)
    if not value:
        return None
    try:
        return kind(value.upper())
    except ValueError:
        refuse(error)


def required_enum(
    params: Mapping[str, str], name: str, kind: type[_Enum], error: Rejected
) -> _Enum:
    """:func:`enum_value`, and -1102 when ``name`` is missing."""
    value = enum_value(params, name, kind, error)
    if value is None:
        refuse(missing(name))
    return value


def client_id(params: Mapping[str, str], name: str) -> str | None:
    """A client order or list id: None when absent, -1100 outside Binance's range."""
    value = params.get(name)
    if not value:
        return None
    if not _CLIENT_ID.fullmatch(value):  # match() would let a trailing newline through
        refuse(illegal(name, CLIENT_ID_RANGE))
    return value

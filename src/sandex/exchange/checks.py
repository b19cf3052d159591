"""The static checks of an order, in Binance's order: the symbol takes it, its
parameters fit its type, its values are well-typed, and it passes the filters.

"Static" means the book does not matter (but for valuing a MARKET order at the
average price): ``POST /api/v3/order/test`` runs exactly these, and a cancel-replace
runs them before it cancels anything.
"""

from __future__ import annotations

from collections.abc import Callable

from sandex.exchange.events import Rejected
from sandex.exchange.orders import (
    LIMIT_TYPES,
    STOP_TYPES,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from sandex.exchange.rejections import (
    BOTH_QUANTITIES_EMPTY,
    CLOSED,
    ILLEGAL_VALUE,
    INVALID_SIDE,
    INVALID_STP,
    INVALID_TIF,
    INVALID_TYPE,
    NOT_SUPPORTED_MSG,
    QUOTE_MARKET_NOT_ALLOWED,
    STP_NOT_ALLOWED,
    UNSUPPORTED,
    missing,
    not_required,
)
from sandex.exchange.symbols import PRICE_FILTER_FAILURE, Symbol
from sandex.exchange.units import PriceUnits, QuoteUnits

__all__ = ["check_order", "shape_error", "filter_error", "MARKET_TYPES"]

MARKET_TYPES = frozenset({OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT})
"""Order types that execute as MARKET orders (now, or once triggered)."""


def check_order(
    symbol: Symbol, cmd: PlaceOrder, average_price: Callable[[], PriceUnits | None]
) -> Rejected | None:
    """The first reason ``symbol`` refuses ``cmd`` before looking at the book, or None.

    ``average_price`` values a MARKET order by quantity for the NOTIONAL filter; it is
    called only for such an order.
    """
    if symbol.status != "TRADING":
        return CLOSED
    kind = cmd.type
    if type(cmd.side) is not Side:
        return INVALID_SIDE
    if type(kind) is not OrderType:
        return INVALID_TYPE
    if cmd.time_in_force is not None and type(cmd.time_in_force) is not TimeInForce:
        return INVALID_TIF
    if cmd.stp_mode is not None and type(cmd.stp_mode) is not SelfTradePrevention:
        return INVALID_STP
    if kind not in symbol.order_types:
        msg = NOT_SUPPORTED_MSG.get(kind)
        return UNSUPPORTED if msg is None else Rejected(-2010, msg)
    error = shape_error(cmd)
    if error is not None:
        return error
    for value in (cmd.quantity, cmd.price, cmd.quote_quantity, cmd.stop_price):
        if value is not None and type(value) is not int:  # a float would crawl a range
            return ILLEGAL_VALUE
    if kind in MARKET_TYPES and cmd.quote_quantity is not None:
        if not symbol.quote_order_qty_market_allowed:
            return QUOTE_MARKET_NOT_ALLOWED
    if cmd.stp_mode is not None and cmd.stp_mode not in symbol.allowed_stp_modes:
        return STP_NOT_ALLOWED
    return filter_error(symbol, cmd, average_price)


def shape_error(cmd: PlaceOrder) -> Rejected | None:
    """Binance's -1102/-1106/-1114 for a parameter missing or sent without need."""
    kind = cmd.type
    limit = kind in LIMIT_TYPES
    needs_tif = limit and kind is not OrderType.LIMIT_MAKER
    if needs_tif and cmd.time_in_force is None:
        return missing("timeInForce")
    if limit:
        if cmd.quantity is None:
            return missing("quantity")
        if cmd.price is None:
            return missing("price")
        if cmd.quote_quantity is not None:
            return not_required("quoteOrderQty")
    else:
        if cmd.quantity is None and cmd.quote_quantity is None:
            return BOTH_QUANTITIES_EMPTY
        if cmd.quantity is not None and cmd.quote_quantity is not None:
            return not_required("quantity")
        if cmd.price is not None:
            return not_required("price")
    if kind in STOP_TYPES:
        if cmd.stop_price is None:
            return missing("stopPrice")
    elif cmd.stop_price is not None:
        return not_required("stopPrice")
    if cmd.time_in_force is not None and not needs_tif:
        return not_required("timeInForce")
    return None


def filter_error(
    symbol: Symbol, cmd: PlaceOrder, average_price: Callable[[], PriceUnits | None]
) -> Rejected | None:
    """The first filter ``cmd`` fails, in exchangeInfo's filter order (shape checked)."""
    rules = symbol.rules
    market = cmd.type in MARKET_TYPES
    for price in (cmd.price, cmd.stop_price):
        if price is not None and price not in rules.prices:
            return PRICE_FILTER_FAILURE
    if cmd.quantity is not None:
        error = rules.check_quantity(cmd.quantity, market=market)
        if error is not None:
            return error
    if not market:
        assert cmd.price is not None and cmd.quantity is not None
        return rules.check_notional(QuoteUnits(cmd.price * cmd.quantity))
    if cmd.quote_quantity is not None:
        return rules.check_market_notional(cmd.quote_quantity)
    assert cmd.quantity is not None
    # a stop is valued at its stop price, a MARKET order at the average trade price
    reference = cmd.stop_price if cmd.stop_price is not None else average_price()
    if reference is None:  # no trade yet: nothing to value the order at
        return None
    return rules.check_market_notional(QuoteUnits(cmd.quantity * reference))

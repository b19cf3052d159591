"""The spot exchange domain: money, symbols and filters, orders, the book and matching.

Pure: no I/O, no clock reads (time is the ``now`` of every engine call, in epoch
milliseconds). The engine's interface is a command in, events out::

    events = engine.submit(PlaceOrder(...), now)
"""

from sandex.exchange.book import Level, OrderBook
from sandex.exchange.engine import Engine
from sandex.exchange.errors import ExchangeError, InvalidMarket, OrderRejected
from sandex.exchange.events import (
    Accepted,
    Canceled,
    Event,
    Expired,
    Outcome,
    Rejected,
    ReplaceFailed,
    SelfTradePrevented,
    Trade,
    Triggered,
    outcome,
)
from sandex.exchange.market import BookSnapshot, OpenOrder, PendingStop
from sandex.exchange.marketdata import AggTrade, MarketData, PublicTrade, Ticker
from sandex.exchange.money import format_units, from_units, parse_number, to_units
from sandex.exchange.orders import (
    CancelAll,
    CancelOrder,
    CancelReplace,
    CancelReplaceMode,
    CancelRestriction,
    Command,
    OrderStatus,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from sandex.exchange.symbols import (
    LotSize,
    Notional,
    PriceFilter,
    Rules,
    Symbol,
    default_symbols,
)

__all__ = [
    "Accepted",
    "AggTrade",
    "BookSnapshot",
    "CancelAll",
    "CancelOrder",
    "CancelReplace",
    "CancelReplaceMode",
    "CancelRestriction",
    "Canceled",
    "Command",
    "Engine",
    "Event",
    "ExchangeError",
    "Expired",
    "InvalidMarket",
    "Level",
    "LotSize",
    "MarketData",
    "Notional",
    "OpenOrder",
    "OrderBook",
    "OrderRejected",
    "OrderStatus",
    "OrderType",
    "Outcome",
    "PendingStop",
    "PlaceOrder",
    "PriceFilter",
    "PublicTrade",
    "Rejected",
    "ReplaceFailed",
    "Rules",
    "SelfTradePrevented",
    "SelfTradePrevention",
    "Side",
    "Symbol",
    "Ticker",
    "TimeInForce",
    "Trade",
    "Triggered",
    "default_symbols",
    "format_units",
    "from_units",
    "outcome",
    "parse_number",
    "to_units",
]

"""Order vocabulary and the commands the matching engine accepts.

Commands are immutable tuples: cheap to build on the hot path, and plain data that
a socket transport can carry unchanged (DESIGN §7: a command in, events out).
Prices, quantities and amounts are ints in the symbol's fixed-point units (see
:mod:`sandex.exchange.money`); the edge converts request strings with
:meth:`sandex.exchange.symbols.Symbol.price_units` and friends.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, TypeAlias

from sandex.exchange.units import PriceUnits, QuantityUnits, QuoteUnits

__all__ = [
    "Side",
    "OrderType",
    "TimeInForce",
    "SelfTradePrevention",
    "OrderStatus",
    "CancelRestriction",
    "CancelReplaceMode",
    "PlaceOrder",
    "CancelOrder",
    "CancelAll",
    "CancelReplace",
    "Command",
    "STOP_TYPES",
    "LIMIT_TYPES",
]


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    """Good till canceled: the rest goes on the book."""
    IOC = "IOC"
    """Immediate or cancel: fill what can be filled now, expire the rest."""
    FOK = "FOK"
    """Fill or kill: fill everything now, or expire without trading."""


class SelfTradePrevention(enum.StrEnum):
    """What happens when a taker would trade with a resting order of the same account.

    The taker's mode decides (Binance's rule). ``EXPIRE_TAKER`` is Binance's default.
    """

    NONE = "NONE"
    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"


class OrderStatus(enum.StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"
    """Expired by self-trade prevention."""


class CancelRestriction(enum.StrEnum):
    ONLY_NEW = "ONLY_NEW"
    ONLY_PARTIALLY_FILLED = "ONLY_PARTIALLY_FILLED"


class CancelReplaceMode(enum.StrEnum):
    STOP_ON_FAILURE = "STOP_ON_FAILURE"
    """A failed cancel leaves the new order unattempted."""
    ALLOW_FAILURE = "ALLOW_FAILURE"
    """The new order is attempted whatever the cancel's outcome."""


_LIMIT = OrderType.LIMIT
_new = tuple.__new__

STOP_TYPES = frozenset(
    {
        OrderType.STOP_LOSS,
        OrderType.STOP_LOSS_LIMIT,
        OrderType.TAKE_PROFIT,
        OrderType.TAKE_PROFIT_LIMIT,
    }
)
"""Order types that wait for the last trade price to reach ``stop_price``."""

LIMIT_TYPES = frozenset(
    {
        OrderType.LIMIT,
        OrderType.LIMIT_MAKER,
        OrderType.STOP_LOSS_LIMIT,
        OrderType.TAKE_PROFIT_LIMIT,
    }
)
"""Order types that carry a limit ``price``."""


class PlaceOrder(NamedTuple):
    """Place a new order (``POST /api/v3/order``).

    ``account`` is the engine's account number for the owner. ``quantity`` and
    ``quote_quantity`` are in the symbol's quantity and quote units, ``price`` and
    ``stop_price`` in its price units; parameters the type does not take stay None.
    ``stp_mode`` None means the symbol's default. Values are ints and enum members; a
    transport that decodes commands must produce those (the engine refuses a bare
    string or a float rather than guess).
    """

    symbol: str
    account: int
    side: Side
    type: OrderType
    quantity: QuantityUnits | None = None
    price: PriceUnits | None = None
    time_in_force: TimeInForce | None = None
    quote_quantity: QuoteUnits | None = None
    stop_price: PriceUnits | None = None
    client_order_id: str | None = None
    stp_mode: SelfTradePrevention | None = None

    @classmethod
    def limit(
        cls,
        symbol: str,
        account: int,
        side: Side,
        quantity: QuantityUnits,
        price: PriceUnits,
        time_in_force: TimeInForce = TimeInForce.GTC,
        client_order_id: str | None = None,
        stp_mode: SelfTradePrevention | None = None,
    ) -> PlaceOrder:
        """A LIMIT order: the same tuple as the full constructor, about a quarter cheaper."""
        fields = (
            symbol, account, side, _LIMIT, quantity, price, time_in_force,
            None, None, client_order_id, stp_mode,
        )  # fmt: skip
        return _new(cls, fields)


class CancelOrder(NamedTuple):
    """Cancel one open order (``DELETE /api/v3/order``), by id or by client order id.

    When both are given, the order found by ``order_id`` must also carry
    ``client_order_id``, as on Binance.
    """

    symbol: str
    account: int
    order_id: int | None = None
    client_order_id: str | None = None
    restriction: CancelRestriction | None = None


class CancelAll(NamedTuple):
    """Cancel every open order of ``account`` on ``symbol`` (``DELETE /api/v3/openOrders``)."""

    symbol: str
    account: int


class CancelReplace(NamedTuple):
    """Cancel an order and place another in one step (``POST /api/v3/order/cancelReplace``).

    Both parts name the same symbol and account. The new order's static checks
    (parameters and filters) run first: if they fail, nothing is canceled.
    """

    cancel: CancelOrder
    order: PlaceOrder
    mode: CancelReplaceMode = CancelReplaceMode.STOP_ON_FAILURE


Command: TypeAlias = PlaceOrder | CancelOrder | CancelAll | CancelReplace

"""Order lists: Binance's OCO (one-cancels-the-other), the rules of a new one, and
what a list reports.

An OCO is two orders of one account on one symbol, for the same quantity and side:
an *above* order and a *below* order. One is a take-profit (``LIMIT_MAKER``,
``TAKE_PROFIT`` or ``TAKE_PROFIT_LIMIT``), the other a stop-loss (``STOP_LOSS`` or
``STOP_LOSS_LIMIT``); on a sell the take-profit is above the last price and the stop
below it, on a buy the other way round. When one order trades (even partly) or
triggers, the other expires; canceling one cancels both. Both orders sell (or buy)
the same quantity and only one can ever execute, so the list holds its funds once.

The venue (:mod:`sandex.exchange.venue`) places the orders and reacts to their
events; this module holds the vocabulary and the static checks. Pure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, NamedTuple

from sandex.exchange.events import Rejected
from sandex.exchange.orders import OrderType, PlaceOrder, Side
from sandex.exchange.rejections import (
    DUPLICATE_ORDER_LIST,
    UNKNOWN_ORDER_LIST,
)
from sandex.exchange.rejections import OCO_BOTH_LIMIT as _BOTH_LIMIT
from sandex.exchange.rejections import OCO_BUY_LIMIT_BELOW as _BUY_LIMIT_BELOW
from sandex.exchange.rejections import OCO_BUY_PROFIT_BELOW as _BUY_PROFIT_BELOW
from sandex.exchange.rejections import OCO_BUY_STOP_ABOVE as _BUY_STOP_ABOVE
from sandex.exchange.rejections import OCO_PRICES as _PRICES
from sandex.exchange.rejections import OCO_SELL_LIMIT_ABOVE as _SELL_LIMIT_ABOVE
from sandex.exchange.rejections import OCO_SELL_PROFIT_ABOVE as _SELL_PROFIT_ABOVE
from sandex.exchange.rejections import OCO_SELL_STOP_BELOW as _SELL_STOP_BELOW
from sandex.exchange.rejections import OCO_TYPE_REFUSED as _TYPE_REFUSED
from sandex.exchange.rejections import OTO_TYPE_REFUSED as _WORKING_TYPE
from sandex.exchange.rejections import UNSUPPORTED as _PENDING_QUOTE

__all__ = [
    "ContingencyType",
    "ListStatusType",
    "ListOrderStatus",
    "OrderList",
    "NewOco",
    "NewOto",
    "NewOtoco",
    "check_otoco",
    "WORKING_TYPES",
    "check_oto",
    "TAKE_PROFIT_TYPES",
    "STOP_LOSS_TYPES",
    "OCO_TYPES",
    "UNKNOWN_ORDER_LIST",
    "DUPLICATE_ORDER_LIST",
    "check_oco",
    "generated_list_cid",
]


class ContingencyType(enum.StrEnum):
    OCO = "OCO"
    OTO = "OTO"


class ListStatusType(enum.StrEnum):
    EXEC_STARTED = "EXEC_STARTED"
    ALL_DONE = "ALL_DONE"


class ListOrderStatus(enum.StrEnum):
    EXECUTING = "EXECUTING"
    ALL_DONE = "ALL_DONE"


TAKE_PROFIT_TYPES: Final = frozenset(
    {OrderType.LIMIT_MAKER, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT}
)
STOP_LOSS_TYPES: Final = frozenset({OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT})
OCO_TYPES: Final = TAKE_PROFIT_TYPES | STOP_LOSS_TYPES


class NewOco(NamedTuple):
    """``POST /api/v3/orderList/oco``: the above and below orders (same symbol,
    account, side and quantity) and the list's client id (None: generated)."""

    above: PlaceOrder
    below: PlaceOrder
    list_client_order_id: str | None = None


class NewOto(NamedTuple):
    """``POST /api/v3/orderList/oto``: a ``working`` LIMIT or LIMIT_MAKER order, and a
    ``pending`` order placed once the working order is fully filled."""

    working: PlaceOrder
    pending: PlaceOrder
    list_client_order_id: str | None = None


WORKING_TYPES: Final = frozenset({OrderType.LIMIT, OrderType.LIMIT_MAKER})


def check_oto(oto: NewOto) -> Rejected | None:
    """Binance's rules for an OTO: a LIMIT or LIMIT_MAKER working order; any pending
    order but a MARKET one for a quote amount."""
    if oto.working.type not in WORKING_TYPES:
        return _WORKING_TYPE
    if oto.pending.quote_quantity is not None:
        return _PENDING_QUOTE
    return None


class NewOtoco(NamedTuple):
    """``POST /api/v3/orderList/otoco``: a ``working`` order, and a pending OCO pair
    (``above`` and ``below``, one side and quantity) placed once it is fully filled."""

    working: PlaceOrder
    above: PlaceOrder
    below: PlaceOrder
    list_client_order_id: str | None = None


def check_otoco(otoco: NewOtoco) -> Rejected | None:
    """An OTO's rules for the working order and an OCO's for the pending pair (whose
    prices meet the last price only when it is placed)."""
    return check_oto(NewOto(otoco.working, otoco.above)) or check_oco(
        NewOco(otoco.above, otoco.below), None
    )


@dataclass(slots=True)
class OrderList:
    """A list as stored: its orders' ids in the order they were placed (an OTO: the
    working order, then the pending one; an OTOCO, reported as an OTO: the working
    order, then the pending pair, stop-loss first)."""

    list_id: int
    contingency_type: ContingencyType
    symbol: str
    account: int
    list_client_order_id: str
    transaction_time: int
    order_ids: tuple[int, ...]


def check_oco(oco: NewOco, last_price: int | None) -> Rejected | None:
    """Binance's rules for the two orders of an OCO, against the last trade price
    (price units; None before the first trade: then only their order is checked)."""
    above, below = oco.above, oco.below
    if above.type not in OCO_TYPES or below.type not in OCO_TYPES:
        return _TYPE_REFUSED
    if above.type is OrderType.LIMIT_MAKER and below.type is OrderType.LIMIT_MAKER:
        return _BOTH_LIMIT
    sell = above.side is Side.SELL
    if sell:
        if above.type in STOP_LOSS_TYPES:
            return _SELL_STOP_BELOW
        if below.type is OrderType.LIMIT_MAKER:
            return _SELL_LIMIT_ABOVE
        if below.type in TAKE_PROFIT_TYPES:
            return _SELL_PROFIT_ABOVE
        profit, stop = above, below
    else:
        if above.type is OrderType.LIMIT_MAKER:
            return _BUY_LIMIT_BELOW
        if above.type in TAKE_PROFIT_TYPES:
            return _BUY_PROFIT_BELOW
        if below.type in STOP_LOSS_TYPES:
            return _BUY_STOP_ABOVE
        profit, stop = below, above
    target = profit.stop_price if profit.type is OrderType.TAKE_PROFIT else profit.price
    trigger = stop.stop_price
    if target is None or trigger is None:
        return None  # the order's own checks name the missing price
    if last_price is None:
        ordered = target > trigger if sell else target < trigger
    elif sell:
        ordered = target > last_price > trigger
    else:
        ordered = target < last_price < trigger
    return None if ordered else _PRICES


def generated_list_cid(list_id: int) -> str:
    return f"sandex-list-{list_id}"

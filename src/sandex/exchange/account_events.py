"""What happened to one account's orders and balances: the user data stream's source.

The venue tells its order listeners (:meth:`~sandex.exchange.venue.Venue.on_order_update`)
of every execution of a user's order as it happens, one :class:`OrderUpdate` per
execution (a fill of a maker and of a taker of the same trade are two updates, one per
order). The engine gathers them with the balances each batch changed
(:class:`BalancesChanged`) and the credits it applied (:class:`BalanceDelta`), and hands
them out once the batch is committed, with the market's events; a gateway turns each into
Binance's ``executionReport``, ``outboundAccountPosition`` and ``balanceUpdate`` for the
account's WebSocket API subscriptions.

Every record names its ``account`` (the user id); the simulated market's own accounts
(zero and below) never appear.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, TypeAlias

from sandex.exchange.order_lists import OrderList
from sandex.exchange.venue import Fill, OrderRecord, PreventedMatch

__all__ = [
    "Execution",
    "OrderUpdate",
    "ListStatus",
    "BalancesChanged",
    "BalanceDelta",
    "AccountEvent",
]


class Execution(enum.StrEnum):
    """Binance's execution types (``x`` of an ``executionReport``)."""

    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    TRADE_PREVENTION = "TRADE_PREVENTION"


class OrderUpdate(NamedTuple):
    """One execution of ``order`` at ``time``: the order as it stands right after it.

    ``order`` is a copy (its ``fills`` empty) taken at the execution, so its cumulative
    fields (``executed``, ``cumulative_quote``, ``status``) are those of this execution,
    not of the end of the batch. ``fill`` is the trade of a ``TRADE`` execution, from this
    order's side (its commission and whether it was the maker); else None.
    ``prevented`` is the match self-trade prevention stopped, on a ``TRADE_PREVENTION``
    execution. ``expiry_reason`` is Binance's ``eR`` when the venue knows it better than
    the order's type does (an OCO's other order: ``OCO_TRIGGER``; an OTO's pending order:
    ``OTO_PHASE_ONE_EXPIRED`` or ``REJECTED``); else None.
    """

    execution: Execution
    order: OrderRecord
    fill: Fill | None
    time: int
    prevented: PreventedMatch | None = None
    expiry_reason: str | None = None
    execution_id: int = 0
    """Binance's ``I``: unique per execution, given by the engine's account feed (0 as
    the venue makes the update)."""

    @property
    def account(self) -> int:
        return self.order.account


class ListStatus(NamedTuple):
    """An order list of ``account`` a batch changed (placed, one of its orders traded,
    triggered or ended), as it stands after it (Binance's ``listStatus``): ``executing``
    while one of its orders is open; ``client_order_ids`` are its orders', in the order
    of ``order_list.order_ids``."""

    account: int
    time: int
    order_list: OrderList
    executing: bool
    client_order_ids: list[str]


class BalancesChanged(NamedTuple):
    """The balances of ``account`` a batch changed, as they stand after it (Binance's
    ``outboundAccountPosition``): ``(asset, free, locked)`` in asset units (1e-8)."""

    account: int
    time: int
    balances: list[tuple[str, int, int]]


class BalanceDelta(NamedTuple):
    """Funds moved into (or out of, ``delta`` < 0) ``account`` from outside trading: a
    credit, deposit or withdrawal (Binance's ``balanceUpdate``); asset units (1e-8)."""

    account: int
    asset: str
    delta: int
    time: int


AccountEvent: TypeAlias = OrderUpdate | ListStatus | BalancesChanged | BalanceDelta

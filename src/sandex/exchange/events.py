"""What the matching engine answers: an ordered list of events per command.

Every event of one ``submit`` belongs to the command's symbol; order ids and trade
ids are sequences per symbol, as on Binance. The list is complete, so a ledger (or
storage, or a user-data stream) needs nothing else from the engine:

- :class:`Accepted` — lock what the order may spend: a BUY locks ``price * quantity``
  of the quote asset (a MARKET buy its ``quote_quantity``, or what
  :meth:`~sandex.exchange.engine.Engine.market_fill` says), a SELL locks
  ``quantity`` of the base asset. A stop order locks the same at acceptance
  (``working`` is False until it triggers).
- :class:`Trade` — settle both sides at the trade's price, from the locks of
  ``taker_order_id`` and ``maker_order_id``; ``taker_remaining`` /
  ``maker_remaining`` of 0 mean that order is FILLED.
- :class:`Expired`, :class:`Canceled`, or a trade leaving 0 — the order is done:
  release whatever it still holds (a BUY that traded below its limit has some left).
- :class:`Triggered` — a stop of some account started working; its trades follow in
  the same list, with the stop's order id as the taker.

Rejected commands change nothing. Checking a balance before submitting and locking
on :class:`Accepted` happen in one sequenced step (the engine's single writer), so
nothing can slip between them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, TypeAlias

from sandex.exchange.orders import OrderStatus, PlaceOrder, SelfTradePrevention, Side
from sandex.exchange.units import PriceUnits, QuantityUnits, QuoteUnits

__all__ = [
    "Accepted",
    "Rejected",
    "Trade",
    "Expired",
    "Canceled",
    "Triggered",
    "SelfTradePrevented",
    "ReplaceFailed",
    "Event",
    "Outcome",
    "outcome",
]


class Accepted(NamedTuple):
    """The engine took ``order`` and numbered it ``order_id``.

    ``working`` is False for a stop order waiting for its trigger (Binance's
    ``isWorking``); ``stp_mode`` is the mode in force (the symbol's default when the
    order named none).
    """

    order_id: int
    order: PlaceOrder
    stp_mode: SelfTradePrevention
    working: bool
    time: int


class Rejected(NamedTuple):
    """The command was refused with Binance's error ``code`` and ``msg``; nothing changed."""

    code: int
    msg: str


class Trade(NamedTuple):
    """A taker order traded ``quantity`` at ``price`` with a resting maker order.

    ``taker_remaining`` and ``maker_remaining`` are what each order has left after
    this trade (0: that order is filled).
    """

    trade_id: int
    price: PriceUnits
    quantity: QuantityUnits
    taker_order_id: int
    maker_order_id: int
    taker_account: int
    maker_account: int
    taker_side: Side
    taker_remaining: QuantityUnits
    maker_remaining: QuantityUnits
    time: int


class Expired(NamedTuple):
    """An order ended with ``remaining`` unfilled by its own rules.

    ``in_match`` is True when self-trade prevention expired it (status
    ``EXPIRED_IN_MATCH``); otherwise IOC/FOK/MARKET found no more to take (``EXPIRED``).
    """

    order_id: int
    account: int
    remaining: QuantityUnits
    in_match: bool
    time: int


class Canceled(NamedTuple):
    """An open order was canceled with ``remaining`` unfilled."""

    order_id: int
    account: int
    remaining: QuantityUnits
    time: int


class Triggered(NamedTuple):
    """A stop order's trigger was reached; it now works as a LIMIT or MARKET order."""

    order_id: int
    account: int
    time: int


class SelfTradePrevented(NamedTuple):
    """A match between two orders of one account was prevented (Binance's prevented match).

    ``taker_prevented``/``maker_prevented`` are the quantities that expired because of it.
    """

    taker_order_id: int
    maker_order_id: int
    price: PriceUnits
    taker_prevented: QuantityUnits
    maker_prevented: QuantityUnits
    mode: SelfTradePrevention
    time: int


class ReplaceFailed(NamedTuple):
    """A cancel-replace failed in part (-2021) or in whole (-2022).

    It closes the event list; events of the part that succeeded come before it.
    Results are Binance's ``SUCCESS``, ``FAILURE`` or ``NOT_ATTEMPTED``.
    """

    code: int
    msg: str
    cancel_result: str
    new_order_result: str
    cancel_error: Rejected | None
    new_order_error: Rejected | None


Event: TypeAlias = (
    Accepted
    | Rejected
    | Trade
    | Expired
    | Canceled
    | Triggered
    | SelfTradePrevented
    | ReplaceFailed
)


class Outcome(NamedTuple):
    """One order's state after a list of events, in Binance's terms."""

    status: OrderStatus
    executed: QuantityUnits
    """Quantity filled."""
    quote: QuoteUnits
    """Sum of price * quantity over the fills (quote units: Binance's cummulativeQuoteQty)."""
    trades: list[Trade]


def outcome(
    events: Iterable[Event], order_id: int, quantity: QuantityUnits | None = None
) -> Outcome:
    """Fold ``events`` into the status, fills and cost of ``order_id``.

    ``quantity`` is the order's original quantity when known (None for a
    ``quoteOrderQty`` market order, whose status follows its final event alone).
    An order with no final event is ``NEW`` or ``PARTIALLY_FILLED``.
    """
    executed = quote = 0
    trades: list[Trade] = []
    status: OrderStatus | None = None
    for event in events:
        if isinstance(event, Trade):
            if order_id in (event.taker_order_id, event.maker_order_id):
                trades.append(event)
                executed += event.quantity
                quote += event.price * event.quantity
                left = (
                    event.taker_remaining
                    if event.taker_order_id == order_id
                    else event.maker_remaining
                )
                if left == 0:
                    status = OrderStatus.FILLED
        elif isinstance(event, Expired) and event.order_id == order_id:
            status = OrderStatus.EXPIRED_IN_MATCH if event.in_match else OrderStatus.EXPIRED
        elif isinstance(event, Canceled) and event.order_id == order_id:
            status = OrderStatus.CANCELED
    if status is None:
        filled = quantity is not None and executed >= quantity
        if filled:
            status = OrderStatus.FILLED
        else:
            status = OrderStatus.PARTIALLY_FILLED if executed else OrderStatus.NEW
    return Outcome(status, QuantityUnits(executed), QuoteUnits(quote), trades)

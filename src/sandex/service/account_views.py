"""Account events as Binance's user data stream shows them.

:func:`account_payload` turns one :data:`~sandex.exchange.account_events.AccountEvent`
into the ``event`` object of Binance's user data stream: ``executionReport`` (an order
update), ``listStatus`` (an order list), ``outboundAccountPosition`` (a batch's changed
balances) or ``balanceUpdate`` (a credit). Prices and quantities have the symbol's
precision, as the REST routes show them; balances and commissions the asset's 8
decimals.

Two choices where Sandex knows less than Binance: a cancel has no cancel request of its
own, so ``c`` and ``C`` are both the order's client id (clients read the order's id from
``C`` on a cancel, from ``c`` otherwise); self-trade prevention has no trade group, so
``u`` is not there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sandex.exchange import OrderStatus, OrderType, Symbol, TimeInForce
from sandex.exchange.account_events import (
    AccountEvent,
    BalanceDelta,
    BalancesChanged,
    Execution,
    ListStatus,
    OrderUpdate,
)
from sandex.exchange.money import ASSET_DECIMALS, format_units

__all__ = ["account_payload"]

_MARKET_TYPES: Final = frozenset({OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT})
_OFF_BOOK: Final = frozenset({TimeInForce.IOC, TimeInForce.FOK})


def account_payload(
    event: AccountEvent, symbols: Mapping[str, Symbol], event_time: int
) -> dict[str, object]:
    """Binance's event object for ``event`` (``E`` is ``event_time``)."""
    if isinstance(event, OrderUpdate):
        return _execution_report(event, symbols[event.order.symbol], event_time)
    if isinstance(event, ListStatus):
        return _list_status(event, event_time)
    if isinstance(event, BalancesChanged):
        return {
            "e": "outboundAccountPosition",
            "E": event_time,
            "u": event.time,
            "B": [
                {"a": asset, "f": _asset(free), "l": _asset(locked)}
                for asset, free, locked in event.balances
            ],
        }
    assert isinstance(event, BalanceDelta)
    return {
        "e": "balanceUpdate",
        "E": event_time,
        "a": event.asset,
        "d": _asset(event.delta),
        "T": event.time,
    }


def _list_status(event: ListStatus, event_time: int) -> dict[str, object]:
    order_list = event.order_list
    symbol = order_list.symbol
    return {
        "e": "listStatus",
        "E": event_time,
        "s": symbol,
        "g": order_list.list_id,
        "c": order_list.contingency_type.value,
        "l": "EXEC_STARTED" if event.executing else "ALL_DONE",
        "L": "EXECUTING" if event.executing else "ALL_DONE",
        "r": "NONE",
        "C": order_list.list_client_order_id,
        "T": event.time,
        "O": [
            {"s": symbol, "i": order_id, "c": cid}
            for order_id, cid in zip(order_list.order_ids, event.client_order_ids, strict=True)
        ],
    }


def _asset(units: int) -> str:
    return format_units(units, ASSET_DECIMALS)


def _execution_report(update: OrderUpdate, symbol: Symbol, event_time: int) -> dict[str, object]:
    o = update.order
    fill = update.fill
    execution = update.execution
    qty = symbol.format_quantity
    zero_qty = qty(0)
    canceled = execution is Execution.CANCELED
    on_book = (
        o.is_open
        and o.working
        and not o.pending
        and o.type not in _MARKET_TYPES
        and o.time_in_force not in _OFF_BOOK
    )
    report: dict[str, object] = {
        "e": "executionReport",
        "E": event_time,
        "s": o.symbol,
        "c": o.client_order_id,
        "S": o.side.value,
        "o": o.type.value,
        "f": (o.time_in_force or TimeInForce.GTC).value,
        "q": qty(o.quantity if o.quantity is not None else o.executed),
        "p": symbol.format_price(o.price),
        "P": symbol.format_price(o.stop_price or 0),
        "F": zero_qty,
        "g": -1 if o.order_list_id is None else o.order_list_id,
        "C": o.client_order_id if canceled else "",
        "x": execution.value,
        "X": "PENDING_NEW" if o.pending else o.status.value,
        "r": "NONE",
        "i": o.order_id,
        "l": qty(fill.quantity) if fill is not None else zero_qty,
        "z": qty(o.executed),
        "L": symbol.format_price(fill.price) if fill is not None else symbol.format_price(0),
        "n": _asset(fill.commission) if fill is not None else "0",
        "N": fill.commission_asset if fill is not None else None,
        "T": update.time,
        "t": fill.trade_id if fill is not None else -1,
        "I": update.execution_id,
        "w": on_book,
        "m": fill.maker if fill is not None else False,
        "M": False,
        "O": o.time,
        "Z": symbol.format_quote(o.cumulative_quote),
        "Y": symbol.format_quote(fill.price * fill.quantity if fill is not None else 0),
        "Q": symbol.format_quote(o.quote_quantity or 0),
    }
    if (
        o.working
        and o.working_time is not None
        and not o.pending
        and (o.is_open or execution is Execution.TRADE)
    ):  # working on the book (or was, as it traded)
        report["W"] = o.working_time
    report["V"] = o.stp_mode.value
    if execution is Execution.TRADE_PREVENTION:
        report.update(_prevented(update, symbol))
    elif execution is Execution.EXPIRED:
        report["eR"] = update.expiry_reason or _expiry_reason(update)
    return report


def _prevented(update: OrderUpdate, symbol: Symbol) -> dict[str, object]:
    """``v`` ``A`` ``B`` ``U`` ``Cs`` ``pl`` ``pL`` ``pY`` of a self-trade prevention
    expiry (what the update knows of them)."""
    o = update.order
    fields: dict[str, object] = {}
    if o.prevented_match_id is not None:
        fields["v"] = o.prevented_match_id
    fields["A"] = symbol.format_quantity(o.prevented_quantity)
    match = update.prevented
    if match is None:
        return fields
    taker = match.taker_order_id == o.order_id
    last = match.taker_prevented if taker else match.maker_prevented
    fields["v"] = match.prevented_match_id
    fields["B"] = symbol.format_quantity(last)
    fields["U"] = match.maker_order_id if taker else match.taker_order_id
    fields["Cs"] = match.symbol
    fields["pl"] = symbol.format_quantity(last)
    fields["pL"] = symbol.format_price(match.price)
    fields["pY"] = symbol.format_quote(match.price * last)
    return fields


def _expiry_reason(update: OrderUpdate) -> str:
    """Binance's ``eR`` of an order its own terms expired."""
    o = update.order
    if o.time_in_force is TimeInForce.FOK:
        return "UNFILLED_FOK_ORDER_EXPIRED"
    if o.time_in_force is TimeInForce.IOC:
        return "UNFILLED_IOC_QUANTITY_EXPIRED"
    if o.type in _MARKET_TYPES:
        return "INSUFFICIENT_LIQUIDITY"
    if o.status is OrderStatus.EXPIRED:
        return "EXCHANGE_CANCELED"
    return "NONE"

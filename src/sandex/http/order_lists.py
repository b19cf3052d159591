"""Binance's order list endpoints (OCO): place, cancel and query lists.

``POST /api/v3/orderList/oco`` places an above and a below order for one quantity
(a take-profit and a stop-loss); when one trades or triggers the other expires (see
:mod:`sandex.exchange.order_lists`). Each order of a list counts against the
order-rate limits and passes the key's risk policy, as a single order would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from sandex.exchange import (
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    Symbol,
    TimeInForce,
)
from sandex.exchange import rejections as vocabulary
from sandex.exchange.order_lists import (
    ListOrderStatus,
    ListStatusType,
    NewOco,
    NewOto,
    NewOtoco,
    OrderList,
)
from sandex.exchange.rejections import INVALID_SIDE, INVALID_STP, INVALID_TIF, INVALID_TYPE
from sandex.exchange.units import QuantityUnits
from sandex.exchange.venue import OrderRecord
from sandex.http.routes import RouteTable, Security
from sandex.http.spot import (
    _CANCEL,
    _PLACE,
    _cancel_id,
    _canceled_view,
    _exchange,
    _history,
    _placed_view,
    _principal,
    _refused,
    _symbol,
)
from sandex.service import Request
from sandex.service.ports import StoredOrderList

__all__ = ["routes"]

_NewList = TypeVar("_NewList", NewOco, NewOto, NewOtoco)

routes = RouteTable()

_UNSUPPORTED: Final = (
    "IcebergQty",
    "TrailingDelta",
    "StrategyId",
    "StrategyType",
    "PegPriceType",
    "PegOffsetType",
    "PegOffsetValue",
)


def _leg(
    params: Mapping[str, str],
    prefix: str,
    symbol: Symbol,
    account: int,
    side: Side,
    quantity: QuantityUnits,
    stp: SelfTradePrevention | None,
) -> PlaceOrder:
    """The ``above`` or ``below`` order of an OCO from its prefixed parameters."""
    kind = vocabulary.required_enum(params, f"{prefix}Type", OrderType, INVALID_TYPE)
    for name in _UNSUPPORTED:
        if params.get(prefix + name) not in (None, "", "0"):
            vocabulary.refuse(vocabulary.UNSUPPORTED)
    price = params.get(f"{prefix}Price")
    stop = params.get(f"{prefix}StopPrice")
    return PlaceOrder(
        symbol=symbol.name,
        account=account,
        side=side,
        type=kind,
        quantity=quantity,
        price=symbol.price_units(price, f"{prefix}Price") if price else None,
        time_in_force=vocabulary.enum_value(
            params, f"{prefix}TimeInForce", TimeInForce, INVALID_TIF
        ),
        stop_price=symbol.price_units(stop, f"{prefix}StopPrice") if stop else None,
        client_order_id=vocabulary.client_id(params, f"{prefix}ClientOrderId"),
        stp_mode=stp,
    )


def _prefixed_order(
    params: Mapping[str, str],
    prefix: str,
    symbol: Symbol,
    account: int,
    stp: SelfTradePrevention | None,
) -> PlaceOrder:
    """An OTO's ``working`` or ``pending`` order, with its own side and quantity."""
    side = vocabulary.required_enum(params, f"{prefix}Side", Side, INVALID_SIDE)
    quantity = symbol.quantity_units(vocabulary.mandatory(params, f"{prefix}Quantity"))
    return _leg(params, prefix, symbol, account, side, quantity, stp)


def _new_oto(params: Mapping[str, str], symbol: Symbol, account: int) -> NewOto:
    stp = vocabulary.enum_value(params, "selfTradePreventionMode", SelfTradePrevention, INVALID_STP)
    return NewOto(
        _prefixed_order(params, "working", symbol, account, stp),
        _prefixed_order(params, "pending", symbol, account, stp),
        vocabulary.client_id(params, "listClientOrderId"),
    )


def _new_otoco(params: Mapping[str, str], symbol: Symbol, account: int) -> NewOtoco:
    stp = vocabulary.enum_value(params, "selfTradePreventionMode", SelfTradePrevention, INVALID_STP)
    side = vocabulary.required_enum(params, "pendingSide", Side, INVALID_SIDE)
    quantity = symbol.quantity_units(vocabulary.mandatory(params, "pendingQuantity"))
    return NewOtoco(
        _prefixed_order(params, "working", symbol, account, stp),
        _leg(params, "pendingAbove", symbol, account, side, quantity, stp),
        _leg(params, "pendingBelow", symbol, account, side, quantity, stp),
        vocabulary.client_id(params, "listClientOrderId"),
    )


def _new_oco(params: Mapping[str, str], symbol: Symbol, account: int) -> NewOco:
    side = vocabulary.required_enum(params, "side", Side, INVALID_SIDE)
    quantity = symbol.quantity_units(vocabulary.mandatory(params, "quantity"))
    stp = vocabulary.enum_value(params, "selfTradePreventionMode", SelfTradePrevention, INVALID_STP)
    return NewOco(
        _leg(params, "above", symbol, account, side, quantity, stp),
        _leg(params, "below", symbol, account, side, quantity, stp),
        vocabulary.client_id(params, "listClientOrderId"),
    )


def _legacy_oco(params: Mapping[str, str], symbol: Symbol, account: int) -> NewOco:
    """The deprecated ``POST /api/v3/order/oco``'s parameters: a LIMIT_MAKER at
    ``price`` and a STOP_LOSS (STOP_LOSS_LIMIT with ``stopLimitPrice``) at
    ``stopPrice``."""
    side = vocabulary.required_enum(params, "side", Side, INVALID_SIDE)
    for name in ("limitIcebergQty", "stopIcebergQty", "trailingDelta"):
        if params.get(name) not in (None, "", "0"):
            vocabulary.refuse(vocabulary.UNSUPPORTED)
    quantity = symbol.quantity_units(vocabulary.mandatory(params, "quantity"))
    stp = vocabulary.enum_value(params, "selfTradePreventionMode", SelfTradePrevention, INVALID_STP)
    limit = PlaceOrder(
        symbol=symbol.name,
        account=account,
        side=side,
        type=OrderType.LIMIT_MAKER,
        quantity=quantity,
        price=symbol.price_units(vocabulary.mandatory(params, "price")),
        client_order_id=vocabulary.client_id(params, "limitClientOrderId"),
        stp_mode=stp,
    )
    stop_limit = params.get("stopLimitPrice")
    stop = PlaceOrder(
        symbol=symbol.name,
        account=account,
        side=side,
        type=OrderType.STOP_LOSS_LIMIT if stop_limit else OrderType.STOP_LOSS,
        quantity=quantity,
        price=symbol.price_units(stop_limit, "stopLimitPrice") if stop_limit else None,
        time_in_force=vocabulary.enum_value(
            params, "stopLimitTimeInForce", TimeInForce, INVALID_TIF
        ),
        stop_price=symbol.price_units(vocabulary.mandatory(params, "stopPrice"), "stopPrice"),
        client_order_id=vocabulary.client_id(params, "stopClientOrderId"),
        stp_mode=stp,
    )
    above, below = (limit, stop) if side is Side.SELL else (stop, limit)
    return NewOco(above, below, vocabulary.client_id(params, "listClientOrderId"))


def _response_type(params: Mapping[str, str]) -> str:
    value = (params.get("newOrderRespType") or "RESULT").upper()
    if value not in ("ACK", "RESULT", "FULL"):
        vocabulary.refuse(vocabulary.not_valid("newOrderRespType"))
    return value


def _list_view(order_list: OrderList, orders: Sequence[OrderRecord]) -> dict[str, Any]:
    """A list as every order list endpoint shows it (without ``orderReports``)."""
    executing = any(o.is_open for o in orders)
    cids = {o.order_id: o.client_order_id for o in orders}
    return {
        "orderListId": order_list.list_id,
        "contingencyType": order_list.contingency_type.value,
        "listStatusType": (
            ListStatusType.EXEC_STARTED if executing else ListStatusType.ALL_DONE
        ).value,
        "listOrderStatus": (
            ListOrderStatus.EXECUTING if executing else ListOrderStatus.ALL_DONE
        ).value,
        "listClientOrderId": order_list.list_client_order_id,
        "transactionTime": order_list.transaction_time,
        "symbol": order_list.symbol,
        "orders": [
            {"symbol": order_list.symbol, "orderId": oid, "clientOrderId": cids.get(oid, "")}
            for oid in order_list.order_ids
        ],
    }


def _stored_view(stored: StoredOrderList) -> dict[str, Any]:
    return _list_view(stored.order_list, stored.orders)


async def _place_list(
    request: Request, parse: Callable[[Mapping[str, str], Symbol, int], _NewList]
) -> dict[str, Any]:
    """Parse a new list from ``request``, place it for the caller's key, and answer (its
    orders' reports in the asked-for form) once it is durable."""
    p = _principal(request)
    symbol = _symbol(request)
    new = parse(request.params, symbol, p.user_id)
    response = _response_type(request.params)
    result = await _exchange(request).place_list(new, request.now, key_id=p.key_id, policy=p.policy)
    _refused(result)
    assert result.order_list is not None
    view = _list_view(result.order_list, result.orders)
    view["orderReports"] = [_placed_view(symbol, o, response, request.now) for o in result.orders]
    return view


@routes.endpoint(
    "POST",
    "/api/v3/orderList/oco",
    security=Security.TRADE,
    weight=1,
    access=_PLACE,
    counts_order=True,
    orders=2,
)
async def new_oco(request: Request) -> object:
    """Place an OCO: an above and a below order, one of which cancels the other."""
    return await _place_list(request, _new_oco)


@routes.endpoint(
    "POST",
    "/api/v3/order/oco",
    security=Security.TRADE,
    weight=1,
    access=_PLACE,
    counts_order=True,
    orders=2,
)
async def new_legacy_oco(request: Request) -> object:
    """Place an OCO with the deprecated endpoint's parameters (older clients use it)."""
    return await _place_list(request, _legacy_oco)


@routes.endpoint(
    "POST",
    "/api/v3/orderList/oto",
    security=Security.TRADE,
    weight=1,
    access=_PLACE,
    counts_order=True,
    orders=2,
)
async def new_oto(request: Request) -> object:
    """Place an OTO: a working order, and a pending one placed once it is fully filled."""
    return await _place_list(request, _new_oto)


@routes.endpoint(
    "POST",
    "/api/v3/orderList/otoco",
    security=Security.TRADE,
    weight=1,
    access=_PLACE,
    counts_order=True,
    orders=3,
)
async def new_otoco(request: Request) -> object:
    """Place an OTOCO: a working order, and an OCO pair placed once it is fully filled."""
    return await _place_list(request, _new_otoco)


def _list_target(params: Mapping[str, str], cid_name: str) -> tuple[int | None, str | None]:
    list_id = vocabulary.unsigned(params, "orderListId")
    cid = vocabulary.client_id(params, cid_name)
    if list_id is None and cid is None:
        vocabulary.refuse(vocabulary.neither(cid_name, "orderListId"))
    return list_id, cid


@routes.endpoint("DELETE", "/api/v3/orderList", security=Security.TRADE, weight=1, access=_CANCEL)
async def cancel_order_list(request: Request) -> object:
    """Cancel every open order of an order list."""
    p = _principal(request)
    symbol = _symbol(request)
    list_id, cid = _list_target(request.params, "listClientOrderId")
    exchange = _exchange(request)
    result = await exchange.cancel_order_list(symbol.name, p.user_id, list_id, cid, request.now)
    _refused(result)
    assert result.order_list is not None
    cancel_id = _cancel_id(request.params, request.now)
    view = _list_view(result.order_list, result.orders)
    view["orderReports"] = [
        _canceled_view(symbol, o, cancel_id, request.now) for o in result.orders
    ]
    return view


@routes.endpoint("GET", "/api/v3/orderList", security=Security.USER_DATA, weight=4)
async def query_order_list(request: Request) -> object:
    """One order list of the account, open or not."""
    p = _principal(request)
    list_id, cid = _list_target(request.params, "origClientOrderId")
    found = await _exchange(request).find_order_list(p.user_id, list_id, cid)
    if found is None:
        vocabulary.refuse(vocabulary.NO_SUCH_ORDER_LIST)
    return _stored_view(found)


@routes.endpoint("GET", "/api/v3/allOrderList", security=Security.USER_DATA, weight=20)
async def all_order_lists(request: Request) -> object:
    """The account's order lists, from an id or in a time window (oldest first)."""
    p = _principal(request)
    window = _history(request.params, "fromId")
    if window.from_id is not None and (window.start is not None or window.end is not None):
        vocabulary.refuse(vocabulary.not_required("startTime"))
    found = await _exchange(request).all_order_lists(p.user_id, window)
    return [_stored_view(s) for s in found]


@routes.endpoint("GET", "/api/v3/openOrderList", security=Security.USER_DATA, weight=6)
async def open_order_lists(request: Request) -> object:
    """The account's open order lists."""
    p = _principal(request)
    return [_stored_view(s) for s in await _exchange(request).open_order_lists(p.user_id)]

"""Binance's signed spot account endpoints: orders, open orders, history, trades,
balances and fees.

Each route is declared once with its security type, permission and weight. Order
changes need SPOT_TRADE (a key in CANCEL_ONLY or FROZEN mode may still cancel); reads
need READ. A new order also passes the key's risk policy (symbol allowlist, max
notional, max open orders). A request that changed anything answers only once the
change is durable (see :mod:`sandex.service.trading`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from sandex.exchange import (
    CancelAll,
    CancelOrder,
    CancelReplace,
    CancelReplaceMode,
    CancelRestriction,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Rejected,
    SelfTradePrevention,
    Side,
    Symbol,
    TimeInForce,
)
from sandex.exchange import rejections as vocabulary
from sandex.exchange.money import ASSET_DECIMALS, format_units
from sandex.exchange.rejections import INVALID_SIDE, INVALID_STP, INVALID_TIF, INVALID_TYPE
from sandex.exchange.venue import OrderRecord, TradeRecord
from sandex.http.routes import RouteTable, Security
from sandex.keys import Access, Operation, Permission
from sandex.service import Principal, Request
from sandex.service.engine_commands import Reply
from sandex.service.ports import History
from sandex.service.trading import Trading

__all__ = ["routes"]

routes = RouteTable()

_PLACE: Final = Access(Permission.SPOT_TRADE, Operation.PLACE_ORDER)
_CANCEL: Final = Access(Permission.SPOT_TRADE, Operation.CANCEL_ORDER)
_ZERO: Final = "0.00000000"
_DEFAULT_LIMIT: Final = 500
_MAX_LIMIT: Final = 1000


# -- parameters ---------------------------------------------------------------------------


def _exchange(request: Request) -> Trading:
    exchange: Trading | None = request.services.exchange
    if exchange is None:  # pragma: no cover - the gateway is always built with one
        vocabulary.refuse(vocabulary.EXCHANGE_NOT_RUNNING)
    return exchange


def _principal(request: Request) -> Principal:
    assert request.principal is not None
    return request.principal


def _symbol(request: Request) -> Symbol:
    found: Symbol = vocabulary.symbol(request.params, _exchange(request).symbols)
    return found


def _history(params: Mapping[str, str], from_name: str) -> History:
    """The page of history asked for: from an id (``from_name``), or a time window."""
    return History(
        vocabulary.unsigned(params, from_name),
        vocabulary.unsigned(params, "startTime"),
        vocabulary.unsigned(params, "endTime"),
        vocabulary.limit(params, _DEFAULT_LIMIT, _MAX_LIMIT),
    )


def _new_order(params: Mapping[str, str], symbol: Symbol, account: int) -> PlaceOrder:
    side = vocabulary.required_enum(params, "side", Side, INVALID_SIDE)
    kind = vocabulary.required_enum(params, "type", OrderType, INVALID_TYPE)
    for unsupported in ("icebergQty", "trailingDelta", "strategyId", "strategyType"):
        if params.get(unsupported) not in (None, "", "0"):
            vocabulary.refuse(vocabulary.UNSUPPORTED)
    quantity = params.get("quantity")
    price = params.get("price")
    quote = params.get("quoteOrderQty")
    stop = params.get("stopPrice")
    return PlaceOrder(
        symbol=symbol.name,
        account=account,
        side=side,
        type=kind,
        quantity=symbol.quantity_units(quantity) if quantity else None,
        price=symbol.price_units(price) if price else None,
        time_in_force=vocabulary.enum_value(params, "timeInForce", TimeInForce, INVALID_TIF),
        quote_quantity=symbol.quote_units(quote) if quote else None,
        stop_price=symbol.price_units(stop, "stopPrice") if stop else None,
        client_order_id=vocabulary.client_id(params, "newClientOrderId"),
        stp_mode=vocabulary.enum_value(
            params, "selfTradePreventionMode", SelfTradePrevention, INVALID_STP
        ),
    )


def _response_type(params: Mapping[str, str], order: PlaceOrder) -> str:
    value = params.get("newOrderRespType")
    if not value:
        return "FULL" if order.type in (OrderType.MARKET, OrderType.LIMIT) else "ACK"
    value = value.upper()
    if value not in ("ACK", "RESULT", "FULL"):
        vocabulary.refuse(vocabulary.not_valid("newOrderRespType"))
    return value


def _refused(result: Reply) -> None:
    rejected = result.rejected
    if rejected is not None:
        vocabulary.refuse(rejected)


# -- views ---------------------------------------------------------------------------------


def _qty(symbol: Symbol, units: int | None) -> str:
    return _ZERO if units is None else symbol.format_quantity(units)


def _orig_qty(symbol: Symbol, o: OrderRecord) -> str:
    return _qty(symbol, o.quantity if o.quantity is not None else o.executed)


def _order_view(symbol: Symbol, o: OrderRecord) -> dict[str, Any]:
    """``GET /api/v3/order``'s fields."""
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1 if o.order_list_id is None else o.order_list_id,
        "clientOrderId": o.client_order_id,
        "price": symbol.format_price(o.price),
        "origQty": _orig_qty(symbol, o),
        "executedQty": symbol.format_quantity(o.executed),
        "cummulativeQuoteQty": symbol.format_quote(o.cumulative_quote),
        "status": "PENDING_NEW" if o.pending else o.status.value,
        "timeInForce": (o.time_in_force or TimeInForce.GTC).value,
        "type": o.type.value,
        "side": o.side.value,
        "stopPrice": symbol.format_price(o.stop_price or 0),
        "icebergQty": _ZERO,
        "time": o.time,
        "updateTime": o.update_time,
        "isWorking": o.working,
        "workingTime": o.working_time if o.working_time is not None else -1,
        "origQuoteOrderQty": symbol.format_quote(o.quote_quantity or 0),
        "selfTradePreventionMode": o.stp_mode.value,
        **_prevented(symbol, o),
    }


def _prevented(symbol: Symbol, o: OrderRecord) -> dict[str, Any]:
    """``preventedMatchId`` and ``preventedQuantity``, on an order self-trade prevention
    expired only (as Binance shows them)."""
    if o.prevented_match_id is None:
        return {}
    return {
        "preventedMatchId": o.prevented_match_id,
        "preventedQuantity": symbol.format_quantity(o.prevented_quantity),
    }


def _placed_view(symbol: Symbol, o: OrderRecord, response: str, now: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1 if o.order_list_id is None else o.order_list_id,
        "clientOrderId": o.client_order_id,
        "transactTime": now,
    }
    if response == "ACK":
        return body
    body.update(
        {
            "price": symbol.format_price(o.price),
            "origQty": _orig_qty(symbol, o),
            "executedQty": symbol.format_quantity(o.executed),
            "origQuoteOrderQty": symbol.format_quote(o.quote_quantity or 0),
            "cummulativeQuoteQty": symbol.format_quote(o.cumulative_quote),
            "status": "PENDING_NEW" if o.pending else o.status.value,
            "timeInForce": (o.time_in_force or TimeInForce.GTC).value,
            "type": o.type.value,
            "side": o.side.value,
            "workingTime": o.working_time if o.working_time is not None else -1,
            "selfTradePreventionMode": o.stp_mode.value,
            **_prevented(symbol, o),
        }
    )
    if o.stop_price is not None:
        body["stopPrice"] = symbol.format_price(o.stop_price)
    if response == "FULL":
        body["fills"] = [
            {
                "price": symbol.format_price(f.price),
                "qty": symbol.format_quantity(f.quantity),
                "commission": format_units(f.commission, ASSET_DECIMALS),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in o.fills
        ]
    return body


def _canceled_view(symbol: Symbol, o: OrderRecord, cancel_id: str, now: int) -> dict[str, Any]:
    return {
        "symbol": o.symbol,
        "origClientOrderId": o.client_order_id,
        "orderId": o.order_id,
        "orderListId": -1 if o.order_list_id is None else o.order_list_id,
        "clientOrderId": cancel_id,
        "transactTime": now,
        "price": symbol.format_price(o.price),
        "origQty": _orig_qty(symbol, o),
        "executedQty": symbol.format_quantity(o.executed),
        "origQuoteOrderQty": symbol.format_quote(o.quote_quantity or 0),
        "cummulativeQuoteQty": symbol.format_quote(o.cumulative_quote),
        "status": o.status.value,
        "timeInForce": (o.time_in_force or TimeInForce.GTC).value,
        "type": o.type.value,
        "side": o.side.value,
        "selfTradePreventionMode": o.stp_mode.value,
        **({"stopPrice": symbol.format_price(o.stop_price)} if o.stop_price is not None else {}),
    }


def _trade_view(symbol: Symbol, t: TradeRecord, account: int) -> dict[str, Any]:
    buyer = t.buyer == account
    return {
        "symbol": t.symbol,
        "id": t.trade_id,
        "orderId": t.buy_order_id if buyer else t.sell_order_id,
        "orderListId": -1,
        "price": symbol.format_price(t.price),
        "qty": symbol.format_quantity(t.quantity),
        "quoteQty": symbol.format_quote(t.quote),
        "commission": format_units(t.buyer_fee if buyer else t.seller_fee, ASSET_DECIMALS),
        "commissionAsset": symbol.base_asset if buyer else symbol.quote_asset,
        "time": t.time,
        "isBuyer": buyer,
        "isMaker": t.buyer_is_maker == buyer,
        "isBestMatch": True,
    }


def _cancel_id(params: Mapping[str, str], now: int) -> str:
    return vocabulary.client_id(params, "newClientOrderId") or f"sandex-cancel-{now}"


# -- orders -----------------------------------------------------------------------------------


@routes.endpoint(
    "POST", "/api/v3/order", security=Security.TRADE, weight=1, access=_PLACE, counts_order=True
)
async def new_order(request: Request) -> object:
    """Place an order (newOrderRespType ACK, RESULT or FULL with fills)."""
    p = _principal(request)
    symbol = _symbol(request)
    order = _new_order(request.params, symbol, p.user_id)
    response = _response_type(request.params, order)
    exchange = _exchange(request)
    result = await exchange.place(order, request.now, key_id=p.key_id, policy=p.policy)
    _refused(result)
    return _placed_view(symbol, result.orders[0], response, request.now)


@routes.endpoint("POST", "/api/v3/order/test", security=Security.TRADE, weight=1, access=_PLACE)
async def test_order(request: Request) -> object:
    """Check a new order as ``POST /api/v3/order`` would (key, policy, filters); place nothing."""
    p = _principal(request)
    symbol = _symbol(request)
    order = _new_order(request.params, symbol, p.user_id)
    _response_type(request.params, order)
    rejected = await _exchange(request).check(order, request.now, key_id=p.key_id, policy=p.policy)
    if rejected is not None:
        vocabulary.refuse(rejected)
    if request.params.get("computeCommissionRates", "").lower() == "true":
        fees = _exchange(request)
        return {
            "standardCommissionForOrder": {
                "maker": f"{fees.maker_fee:.8f}",
                "taker": f"{fees.taker_fee:.8f}",
            },
            "taxCommissionForOrder": {"maker": _ZERO, "taker": _ZERO},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": _ZERO,
            },
        }
    return {}


def _target(request: Request) -> tuple[int | None, str | None]:
    order_id = vocabulary.unsigned(request.params, "orderId")
    cid = vocabulary.client_id(request.params, "origClientOrderId")
    if order_id is None and cid is None:
        vocabulary.refuse(vocabulary.NO_CANCEL_TARGET)
    return order_id, cid


@routes.endpoint("GET", "/api/v3/order", security=Security.USER_DATA, weight=4)
async def query_order(request: Request) -> object:
    """One order of the account, open or not."""
    p = _principal(request)
    symbol = _symbol(request)
    order_id, cid = _target(request)
    found = await _exchange(request).find_order(p.user_id, symbol.name, order_id, cid)
    if found is None:
        vocabulary.refuse(vocabulary.NO_SUCH_ORDER)
    return _order_view(symbol, found)


@routes.endpoint("DELETE", "/api/v3/order", security=Security.TRADE, weight=1, access=_CANCEL)
async def cancel_order(request: Request) -> object:
    """Cancel an open order."""
    p = _principal(request)
    symbol = _symbol(request)
    order_id, cid = _target(request)
    restriction = vocabulary.enum_value(
        request.params,
        "cancelRestrictions",
        CancelRestriction,
        vocabulary.not_valid("cancelRestrictions"),
    )
    exchange = _exchange(request)
    result = await exchange.cancel(
        CancelOrder(symbol.name, p.user_id, order_id, cid, restriction), request.now
    )
    _refused(result)
    return _canceled_view(
        symbol, result.orders[0], _cancel_id(request.params, request.now), request.now
    )


@routes.endpoint(
    "POST",
    "/api/v3/order/cancelReplace",
    security=Security.TRADE,
    weight=1,
    access=_PLACE,
    counts_order=True,
)
async def cancel_replace(request: Request) -> object:
    """Cancel an order and place a new one (cancelReplaceMode STOP_ON_FAILURE or ALLOW_FAILURE)."""
    p = _principal(request)
    symbol = _symbol(request)
    params = request.params
    mode_text = vocabulary.mandatory(params, "cancelReplaceMode").upper()
    try:
        mode = CancelReplaceMode(mode_text)
    except ValueError:
        vocabulary.refuse(vocabulary.not_valid("cancelReplaceMode"))
    order_id = vocabulary.unsigned(params, "cancelOrderId")
    cid = vocabulary.client_id(params, "cancelOrigClientOrderId")
    if order_id is None and cid is None:
        vocabulary.refuse(vocabulary.neither("cancelOrigClientOrderId", "cancelOrderId"))
    order = _new_order(params, symbol, p.user_id)
    response = _response_type(params, order)
    exchange = _exchange(request)
    result = await exchange.cancel_replace(
        CancelReplace(CancelOrder(symbol.name, p.user_id, order_id, cid), order, mode),
        request.now,
        key_id=p.key_id,
        policy=p.policy,
    )
    if result.rejected is not None and len(result.events) == 1:
        _refused(result)
    failed = result.replace_failed
    view: dict[str, Any] = {}
    if failed is None:
        canceled = next(o for o in result.orders if o.status is OrderStatus.CANCELED)
        placed = next(o for o in result.orders if o is not canceled)
        cancel_id = vocabulary.client_id(params, "cancelNewClientOrderId") or _cancel_id(
            params, request.now
        )
        view = {
            "cancelResult": "SUCCESS",
            "newOrderResult": "SUCCESS",
            "cancelResponse": _canceled_view(symbol, canceled, cancel_id, request.now),
            "newOrderResponse": _placed_view(symbol, placed, response, request.now),
        }
    if failed is not None:
        vocabulary.refuse(Rejected(failed.code, failed.msg))
    return view


@routes.endpoint("GET", "/api/v3/openOrders", security=Security.USER_DATA, weight=6)
async def open_orders(request: Request) -> object:
    """The account's open orders, on one symbol or all."""
    p = _principal(request)
    exchange = _exchange(request)
    name = request.params.get("symbol")
    symbol = _symbol(request) if name else None
    orders = await exchange.open_orders(p.user_id, symbol.name if symbol else None)
    return [_order_view(exchange.symbols[o.symbol], o) for o in orders]


@routes.endpoint("DELETE", "/api/v3/openOrders", security=Security.TRADE, weight=1, access=_CANCEL)
async def cancel_open_orders(request: Request) -> object:
    """Cancel every open order of the account on a symbol."""
    p = _principal(request)
    symbol = _symbol(request)
    exchange = _exchange(request)
    result = await exchange.cancel_all(CancelAll(symbol.name, p.user_id), request.now)
    _refused(result)
    cancel_id = _cancel_id(request.params, request.now)
    return [_canceled_view(symbol, o, cancel_id, request.now) for o in result.orders]


@routes.endpoint("GET", "/api/v3/allOrders", security=Security.USER_DATA, weight=20)
async def all_orders(request: Request) -> object:
    """The account's orders on a symbol: open, canceled or filled."""
    p = _principal(request)
    symbol = _symbol(request)
    window = _history(request.params, "orderId")
    orders = await _exchange(request).all_orders(p.user_id, symbol.name, window)
    return [_order_view(symbol, o) for o in orders]


@routes.endpoint("GET", "/api/v3/myTrades", security=Security.USER_DATA, weight=20)
async def my_trades(request: Request) -> object:
    """The account's trades on a symbol."""
    p = _principal(request)
    symbol = _symbol(request)
    window = _history(request.params, "fromId")
    order_id = vocabulary.unsigned(request.params, "orderId")
    trades = await _exchange(request).my_trades(p.user_id, symbol.name, window, order_id)
    return [_trade_view(symbol, t, p.user_id) for t in trades]


# -- account ----------------------------------------------------------------------------------


_SPOT_TRADE, _WITHDRAW, _DEPOSIT = (
    int(Permission.SPOT_TRADE),
    int(Permission.WITHDRAW),
    int(Permission.DEPOSIT),
)
_COMMISSIONS: dict[tuple[Decimal, Decimal], tuple[int, int, dict[str, str]]] = {}


def _commissions(exchange: Trading) -> tuple[int, int, dict[str, str]]:
    """The fee fields of ``/api/v3/account`` (in basis points, and as rates), made once."""
    fees = (exchange.maker_fee, exchange.taker_fee)
    found = _COMMISSIONS.get(fees)
    if found is None:
        maker, taker = fees
        rates = {"maker": f"{maker:.8f}", "taker": f"{taker:.8f}", "buyer": _ZERO, "seller": _ZERO}
        found = _COMMISSIONS[fees] = (int(maker * 10_000), int(taker * 10_000), rates)
    return found


@routes.endpoint("GET", "/api/v3/account", security=Security.USER_DATA, weight=20)
async def account(request: Request) -> object:
    """Balances (free and locked per asset), commissions and what the key may do."""
    p = _principal(request)
    exchange = _exchange(request)
    omit_zero = request.params.get("omitZeroBalances", "").lower() == "true"
    balances = [
        {
            "asset": asset,
            "free": format_units(free, ASSET_DECIMALS),
            "locked": format_units(locked, ASSET_DECIMALS),
        }
        for asset, (free, locked) in (await exchange.balances(p.user_id)).items()
        if not omit_zero or free or locked
    ]
    perms = int(p.permissions)
    maker, taker, rates = _commissions(exchange)
    return {
        "makerCommission": maker,
        "takerCommission": taker,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": rates,
        "canTrade": bool(perms & _SPOT_TRADE),
        "canWithdraw": bool(perms & _WITHDRAW),
        "canDeposit": bool(perms & _DEPOSIT),
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": request.now,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": p.user_id,
    }


@routes.endpoint("GET", "/sapi/v1/asset/tradeFee", security=Security.USER_DATA, weight=1)
def trade_fee(request: Request) -> object:
    """Maker and taker fee rates per symbol."""
    exchange = _exchange(request)
    venue = exchange
    names = [_symbol(request).name] if request.params.get("symbol") else sorted(exchange.symbols)
    return [
        {
            "symbol": name,
            "makerCommission": f"{venue.maker_fee.normalize()}",
            "takerCommission": f"{venue.taker_fee.normalize()}",
        }
        for name in names
    ]

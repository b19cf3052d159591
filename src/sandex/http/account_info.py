"""Binance's account reads beside the trading ones: commission rates, the unfilled
order count, prevented matches, the account status and the API trading status.

``GET /api/v3/myPreventedMatches`` lists the matches self-trade prevention stopped
between two of the account's orders: each is recorded, with its per-symbol
``preventedMatchId``, in the same commit as the orders it expired.
"""

from __future__ import annotations

from typing import Any, Final

from sandex.exchange import SelfTradePrevention, Symbol
from sandex.exchange import rejections as vocabulary
from sandex.exchange.venue import PreventedMatch
from sandex.http.ratelimit import RateLimiter
from sandex.http.routes import RouteTable, Security
from sandex.keys import Mode
from sandex.service import Principal, Request
from sandex.service.ports import PreventedQuery

__all__ = ["routes"]

routes = RouteTable()

_ZERO: Final = "0.00000000"
_MAX_LIMIT: Final = 1000
_DEFAULT_LIMIT: Final = 500


def _principal(request: Request) -> Principal:
    assert request.principal is not None
    return request.principal


def _symbol(request: Request) -> Symbol:
    found: Symbol = vocabulary.symbol(request.params, request.services.exchange.symbols)
    return found


@routes.endpoint("GET", "/api/v3/account/commission", security=Security.USER_DATA, weight=20)
def commission(request: Request) -> object:
    """The account's commission rates on a symbol."""
    symbol = _symbol(request)
    venue = request.services.exchange
    return {
        "symbol": symbol.name,
        "standardCommission": {
            "maker": f"{venue.maker_fee:.8f}",
            "taker": f"{venue.taker_fee:.8f}",
            "buyer": _ZERO,
            "seller": _ZERO,
        },
        "specialCommission": {"maker": _ZERO, "taker": _ZERO, "buyer": _ZERO, "seller": _ZERO},
        "taxCommission": {"maker": _ZERO, "taker": _ZERO, "buyer": _ZERO, "seller": _ZERO},
        "discount": {
            "enabledForAccount": False,
            "enabledForSymbol": False,
            "discountAsset": "BNB",
            "discount": _ZERO,
        },
    }


@routes.endpoint("GET", "/api/v3/rateLimit/order", security=Security.USER_DATA, weight=40)
async def unfilled_order_count(request: Request) -> object:
    """The account's order counts in the current windows, against their limits: with
    Redis, every worker's, read without blocking the event loop."""
    limiter: RateLimiter = request.services.limiter
    ten_seconds, day = await limiter.order_counts(_principal(request).user_id)
    limits = limiter.limits
    return [
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": limits.orders_10s,
            "count": ten_seconds,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "DAY",
            "intervalNum": 1,
            "limit": limits.orders_1d,
            "count": day,
        },
    ]


@routes.endpoint("GET", "/api/v3/myPreventedMatches", security=Security.USER_DATA, weight=20)
async def prevented_matches(request: Request) -> list[Any]:
    """The account's matches stopped by self-trade prevention on a symbol: one by
    ``preventedMatchId``, or those of an ``orderId`` (taker or maker side), from
    ``fromPreventedMatchId`` on, ``limit`` of them (500 by default), oldest first.

    Only the caller's own are listed (both orders of a prevented match are the same
    account's). ``tradeGroupId`` is always -1: Sandex has no trade groups, so only one
    account's own orders are kept from matching."""
    symbol = _symbol(request)
    match_id, order_id = (
        vocabulary.unsigned(request.params, "preventedMatchId"),
        vocabulary.unsigned(request.params, "orderId"),
    )
    from_id = vocabulary.unsigned(request.params, "fromPreventedMatchId")
    limit = vocabulary.limit(request.params, _DEFAULT_LIMIT, _MAX_LIMIT)
    if match_id is None and order_id is None:
        vocabulary.refuse(vocabulary.neither("preventedMatchId", "orderId"))
    query = PreventedQuery(match_id, order_id, from_id, limit)
    found = await request.services.exchange.prevented_matches(
        _principal(request).user_id, symbol.name, query
    )
    return [_prevented_view(symbol, p) for p in found]


def _prevented_view(symbol: Symbol, p: PreventedMatch) -> dict[str, Any]:
    """Binance's shape: ``takerPreventedQuantity`` only when the mode expires the taker,
    ``makerPreventedQuantity`` only when it expires the maker (Binance's STP FAQ)."""
    view: dict[str, Any] = {
        "symbol": p.symbol,
        "preventedMatchId": p.prevented_match_id,
        "takerOrderId": p.taker_order_id,
        "makerSymbol": p.symbol,
        "makerOrderId": p.maker_order_id,
        "tradeGroupId": -1,
        "selfTradePreventionMode": p.mode.value,
        "price": symbol.format_price(p.price),
    }
    if p.mode is not SelfTradePrevention.EXPIRE_MAKER:
        view["takerPreventedQuantity"] = symbol.format_quantity(p.taker_prevented)
    if p.mode is not SelfTradePrevention.EXPIRE_TAKER:
        view["makerPreventedQuantity"] = symbol.format_quantity(p.maker_prevented)
    view["transactTime"] = p.time
    return view


@routes.endpoint("GET", "/sapi/v1/account/status", security=Security.USER_DATA, weight=1)
def account_status(request: Request) -> object:
    """``Normal``: Sandex has no account-level restrictions to report."""
    return {"data": "Normal"}


@routes.endpoint("GET", "/sapi/v1/account/apiTradingStatus", security=Security.USER_DATA, weight=1)
def api_trading_status(request: Request) -> object:
    """Whether this key may trade now, in Binance's shape (python-binance's
    ``get_account_api_trading_status``). Binance locks a key's trading when its
    unfilled or cancel ratios trip; Sandex's own lock is the key's mode: a FROZEN or
    CANCEL_ONLY key is locked until its owner changes the mode (no planned recovery
    time), and an unrestricted key past its trading lapse is locked for good. The
    trigger thresholds are Binance's published ones; Sandex does not apply them."""
    principal = _principal(request)
    lapsed = principal.trade_lapses_at is not None and request.now >= principal.trade_lapses_at
    locked = principal.policy.mode is not Mode.NORMAL or lapsed
    return {
        "data": {
            "isLocked": locked,
            "plannedRecoverTime": 0,
            "triggerCondition": {"GCR": 150, "IFER": 150, "UFR": 300},
            "indicators": {},
            "updateTime": request.now,
        }
    }

"""The Binance-compatible routes of the gateway, and Sandex's key introspection.

Each route is declared once, with Binance's security type and request weight.
"""

from __future__ import annotations

from typing import Any

from sandex.http.routes import RouteTable, Security
from sandex.keys import (
    Access,
    AccessDenied,
    Mode,
    Operation,
    Permission,
    check_access,
    permission_names,
)
from sandex.keys.reference import KeyById
from sandex.service import Actor, Principal, Request
from sandex.service.views import key_view

__all__ = ["routes"]

routes = RouteTable()

_TRADING = Permission.SPOT_TRADE | Permission.FUTURES_TRADE
# plain ints on the hot path (enum flag tests cost microseconds)
_SPOT, _FUTURES, _WITHDRAW, _DEPOSIT, _TRANSFER = (
    int(Permission.SPOT_TRADE),
    int(Permission.FUTURES_TRADE),
    int(Permission.WITHDRAW),
    int(Permission.DEPOSIT),
    int(Permission.INTERNAL_TRANSFER),
)
_NAMES = {
    bits: permission_names(Permission(bits))
    for bits in range(int(Permission(sum(int(p) for p in Permission))) + 1)
}


def _principal(request: Request) -> Principal:
    assert request.principal is not None
    return request.principal


@routes.endpoint("GET", "/api/v3/ping", security=Security.NONE, weight=1)
def ping(request: Request) -> object:
    """Test connectivity."""
    return {}


@routes.endpoint("GET", "/api/v3/time", security=Security.NONE, weight=1)
def server_time(request: Request) -> object:
    """The server's time in epoch milliseconds."""
    return {"serverTime": request.now}


@routes.endpoint("GET", "/sapi/v1/system/status", security=Security.NONE, weight=1)
def system_status(request: Request) -> object:
    """0: normal, 1: system maintenance."""
    return {"status": 0, "msg": "normal"}


@routes.endpoint("GET", "/sapi/v1/account/apiRestrictions", security=Security.USER_DATA, weight=1)
def api_restrictions(request: Request) -> object:
    """What the calling key may do, in Binance's fields (plus Sandex's under ``sandex``)."""
    p = _principal(request)
    perms = int(p.permissions)
    lapsed = p.trade_lapses_at is not None and request.now >= p.trade_lapses_at
    body: dict[str, Any] = {
        "ipRestrict": bool(p.allowlist),
        "createTime": p.created_at,
        "enableReading": True,
        "enableWithdrawals": bool(perms & _WITHDRAW),
        "enableInternalTransfer": bool(perms & _TRANSFER),
        "enableMargin": False,
        "enableFutures": bool(perms & _FUTURES) and not lapsed,
        "permitsUniversalTransfer": bool(perms & _TRANSFER),
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": False,
        "enableSpotAndMarginTrading": bool(perms & _SPOT) and not lapsed,
        "enablePortfolioMarginTrading": False,
    }
    if p.trade_lapses_at is not None:
        body["tradingAuthorityExpirationTime"] = p.trade_lapses_at
    body["sandex"] = {
        "keyPrefix": p.key_prefix,
        "keyType": p.kind.value,
        "permissions": _NAMES[perms],
        "enableDeposit": bool(perms & _DEPOSIT),
        "mode": p.policy.mode.value,
        "expiresAt": p.expires_at,
    }
    return body


_EXPLAINED = (
    (Permission.SPOT_TRADE, Access(Permission.SPOT_TRADE, Operation.PLACE_ORDER)),
    (Permission.FUTURES_TRADE, Access(Permission.FUTURES_TRADE, Operation.PLACE_ORDER)),
    (Permission.WITHDRAW, Access(Permission.WITHDRAW, Operation.MOVE_FUNDS)),
    (Permission.DEPOSIT, Access(Permission.DEPOSIT, Operation.READ)),
    (Permission.INTERNAL_TRANSFER, Access(Permission.INTERNAL_TRANSFER, Operation.MOVE_FUNDS)),
)


def _capabilities(p: Principal, now: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"permission": "READ", "granted": True, "usable": True, "why": "always on"}
    ]
    for perm, access in _EXPLAINED:
        assert perm.name is not None
        granted = perm in p.permissions
        try:
            check_access(
                access,
                permissions=p.permissions,
                mode=p.policy.mode,
                trade_lapses_at=p.trade_lapses_at,
                now=now,
            )
            usable, why = True, "granted"
        except AccessDenied as exc:
            usable, why = False, str(exc)
        if not granted:
            why = "not granted to this key"
        elif usable and perm & _TRADING and p.trade_lapses_at is not None:
            why = (
                "granted; lapses at tradingAuthorityExpirationTime unless an IP allowlist is added"
            )
        out.append({"permission": perm.name, "granted": granted, "usable": usable, "why": why})
    if p.policy.mode is not Mode.NORMAL:
        out.append(
            {
                "permission": "CANCEL",
                "granted": True,
                "usable": True,
                "why": f"the key is {p.policy.mode.value}: it may still read and cancel orders",
            }
        )
    return out


@routes.endpoint("GET", "/sandex/v1/key", security=Security.USER_DATA, weight=1)
def key_introspection(request: Request) -> object:
    """Everything about the calling key, and why it can or cannot do each thing."""
    p = _principal(request)
    key = request.services.keys.find(
        KeyById(p.key_id), actor=Actor.user(p.user_id, request.client_ip)
    )
    view = key_view(key, now=request.now)
    view["callerIp"] = request.client_ip
    view["callerIpAllowed"] = not p.allowlist or p.allowlist.allows(request.client_ip)
    view["tradingLapsed"] = p.trade_lapses_at is not None and request.now >= p.trade_lapses_at
    view["capabilities"] = _capabilities(p, request.now)
    return view

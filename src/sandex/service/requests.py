"""One request from the socket to the route, and who it acts for once authenticated.

The gateway builds one :class:`Request` per request from the ASGI scope; authentication
reads it (raw query and body, headers, client IP) and the route's handler receives the
same object with its parsed ``params`` and, on a keyed route, its ``principal`` filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandex.keys import IpAllowlist, KeyKind, Permission, RiskPolicy

__all__ = ["Request", "Principal"]


@dataclass(slots=True, eq=False)
class Request:
    """A request as received (raw query and body bytes, lower-cased header names), then
    as its handler sees it: the gateway sets ``params`` once authentication has passed,
    and ``principal`` when the route is keyed."""

    method: str
    path: str
    query: bytes
    body: bytes
    headers: Mapping[str, str]
    client_ip: str
    now: int = 0
    """When the gateway received it (ms)."""
    services: Any = None
    """The gateway's :class:`~sandex.http.gateway.Services`, for the handler."""
    params: Mapping[str, str] = field(default_factory=dict)
    """The query and body parameters, parsed after authentication."""
    principal: Principal | None = None
    """Who the request acts for, once authenticated; None on a public route."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a successfully authenticated request acts for, and what it may do."""

    user_id: int
    key_id: int
    key_prefix: str
    kind: KeyKind
    permissions: Permission
    policy: RiskPolicy
    allowlist: IpAllowlist
    created_at: int
    expires_at: int | None
    trade_lapses_at: int | None

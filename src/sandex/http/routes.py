"""Binance-style routes, each declared once with its security type, permission and weight.

Adding an endpoint is one decorated function::

    @binance.endpoint("POST", "/api/v3/order", security=Security.TRADE,
                      access=Access(Permission.SPOT_TRADE, Operation.PLACE_ORDER),
                      weight=1, counts_order=True)
    def new_order(request: Request) -> object: ...

The gateway authenticates according to ``security`` (DESIGN §3), checks ``access``,
charges ``weight`` (and an order, if ``counts_order``) against the rate limits, then
calls the handler with the one :class:`~sandex.service.Request` it built from the ASGI
scope (its ``params``, ``principal``, ``client_ip``, ``now`` and ``services`` filled in),
and sends the handler's return value as JSON.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sandex.keys import Access
from sandex.service import Request

__all__ = ["Security", "Handler", "Weigher", "Route", "RouteTable"]


class Security(enum.Enum):
    """Binance's endpoint security types."""

    NONE = "NONE"
    """Public: no key, no signature."""
    USER_DATA = "USER_DATA"
    """Signed; reads the account."""
    TRADE = "TRADE"
    """Signed; changes orders or funds."""
    USER_STREAM = "USER_STREAM"
    """API key and IP allowlist, no signature (listen keys)."""
    MARKET_DATA = "MARKET_DATA"
    """API key and IP allowlist, no signature (public data Binance serves to keys only)."""
    SESSION = "SESSION"
    """A signed route's request on a WebSocket API connection logged on with its key
    (``session.logon``): every check of a signed request but the signature."""

    @property
    def signed(self) -> bool:
        return self is Security.USER_DATA or self is Security.TRADE


Weigher = Callable[[Mapping[str, str]], int | None]
Handler = Callable[[Request], object]
"""Returns the JSON body, or a coroutine (an ``async def`` handler) the gateway awaits."""


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    security: Security
    weight: int
    access: Access | None
    counts_order: bool
    handler: Handler
    summary: str = ""
    weigh: Weigher | None = None
    """Binance's weight for a public request whose weight depends on its parameters
    (depth by ``limit``, tickers by how many symbols); None: ``weight`` is the whole story."""
    orders: int = 1
    """How many orders a request that ``counts_order`` places (an order list: each)."""


@dataclass
class RouteTable:
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    methods: dict[str, list[str]] = field(default_factory=dict)

    def add(self, route: Route) -> None:
        key = (route.method, route.path)
        if key in self.routes:
            raise ValueError(f"{route.method} {route.path} is declared twice")
        if route.security.signed and route.access is None:
            raise ValueError(f"{route.path}: a signed route must declare the access it needs")
        if route.weight < 1:
            raise ValueError(f"{route.path}: weight must be at least 1")
        self.routes[key] = route
        self.methods.setdefault(route.path, []).append(route.method)

    def endpoint(
        self,
        method: str,
        path: str,
        *,
        security: Security,
        weight: int = 1,
        access: Access | None = None,
        counts_order: bool = False,
        weigh: Weigher | None = None,
        orders: int = 1,
    ) -> Callable[[Handler], Handler]:
        if access is None and security is Security.USER_DATA:
            access = Access.READ

        def register(handler: Handler) -> Handler:
            doc = (handler.__doc__ or "").strip().splitlines()
            self.add(
                Route(
                    method,
                    path,
                    security,
                    weight,
                    access,
                    counts_order,
                    handler,
                    doc[0] if doc else "",
                    weigh,
                    orders,
                )
            )
            return handler

        return register

    def find(self, method: str, path: str) -> Route | None:
        return self.routes.get((method, path))

    def allowed(self, path: str) -> list[str]:
        return self.methods.get(path, [])

    def merged(self, *others: RouteTable) -> RouteTable:
        table = RouteTable()
        for source in (self, *others):
            for route in source.routes.values():
                table.add(route)
        return table

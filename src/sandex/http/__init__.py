"""HTTP adapter: the ASGI gateway (Binance routes, rate limits), the management API, and
the one table that maps errors to HTTP statuses and Binance codes."""

from sandex.http.gateway import Gateway, Services
from sandex.http.routes import Call, Route, RouteTable, Security

__all__ = ["Call", "Gateway", "Route", "RouteTable", "Security", "Services"]

"""HTTP adapter: the ASGI gateway (Binance routes, rate limits), the management API, and
the one table that maps errors to HTTP statuses and Binance codes."""

from sandex.http.gateway import Gateway, Services
from sandex.http.routes import Route, RouteTable, Security
from sandex.service import Request

__all__ = ["Gateway", "Request", "Route", "RouteTable", "Security", "Services"]

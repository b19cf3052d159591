"""The listings of the markets Sandex does not run yet (margin, USDⓈ-M and COIN-M
futures), answered truthfully: no pairs, no symbols.

ccxt with its default options lists them while it loads markets (``fetchMargins`` and
``fetchMarkets.types`` spot, linear and inverse) and fails to start if any of them is
refused. Their other routes stay unknown.
"""

from __future__ import annotations

from typing import Any

from sandex.exchange import rejections as vocabulary
from sandex.http.routes import RouteTable, Security
from sandex.service import Request

__all__ = ["routes"]

routes = RouteTable()


@routes.endpoint("GET", "/sapi/v1/margin/allPairs", security=Security.MARKET_DATA, weight=1)
def cross_margin_pairs(request: Request) -> object:
    """Cross-margin pairs: none (Sandex has no margin trading), whatever ``symbol`` names."""
    vocabulary.symbol_name(request.params)
    return []


@routes.endpoint("GET", "/sapi/v1/margin/isolated/allPairs", security=Security.USER_DATA, weight=10)
def isolated_margin_pairs(request: Request) -> object:
    """Isolated-margin pairs: none, whatever ``symbol`` names."""
    vocabulary.symbol_name(request.params)
    return []


def _no_symbols(request: Request, **extra: Any) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": request.now,
        **extra,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [],
    }


@routes.endpoint("GET", "/fapi/v1/exchangeInfo", security=Security.NONE, weight=1)
def usdm_exchange_info(request: Request) -> object:
    """USDⓈ-M futures: no symbols yet."""
    return _no_symbols(request, futuresType="U_MARGINED", assets=[])


@routes.endpoint("GET", "/dapi/v1/exchangeInfo", security=Security.NONE, weight=1)
def coinm_exchange_info(request: Request) -> object:
    """COIN-M futures: no symbols."""
    return _no_symbols(request)

"""Binance's wallet listing: ``GET /sapi/v1/capital/config/getall``, every coin the
exchange has, with the caller's balance of it.

ccxt calls it when it loads markets with a key (its ``fetchCurrencies`` option, on by
default), so a client with default options cannot start without it. Sandex's coins are
the assets of its symbols (and any other asset the account holds). There is no wallet
yet, so no coin can be deposited or withdrawn: each answers ``depositAllEnable`` and
``withdrawAllEnable`` false and an empty ``networkList`` (ccxt then reports no
networks rather than invented ones).
"""

from __future__ import annotations

from typing import Any, Final

from sandex.exchange import rejections as vocabulary
from sandex.exchange.money import ASSET_DECIMALS, format_units
from sandex.http.routes import RouteTable, Security
from sandex.service import Request
from sandex.service.trading import Trading

__all__ = ["routes", "COIN_NAMES"]

routes = RouteTable()

COIN_NAMES: Final = {
    "BTC": "Bitcoin",
    "ETH": "Ethereum",
    "SOL": "Solana",
    "USDT": "TetherUS",
}
"""Binance's display names; an asset not listed is named by its code."""

_ZERO: Final = format_units(0, ASSET_DECIMALS)


def _exchange(request: Request) -> Trading:
    exchange: Trading | None = request.services.exchange
    if exchange is None:  # pragma: no cover - only merged with the exchange's routes
        vocabulary.refuse(vocabulary.EXCHANGE_NOT_RUNNING)
    return exchange


@routes.endpoint("GET", "/sapi/v1/capital/config/getall", security=Security.USER_DATA, weight=10)
async def all_coins(request: Request) -> object:
    """Every coin, with the account's free and locked balance; no deposit networks yet."""
    assert request.principal is not None
    exchange = _exchange(request)
    held = await exchange.balances(request.principal.user_id)
    assets = {s.base_asset for s in exchange.symbols.values()}
    assets |= {s.quote_asset for s in exchange.symbols.values()}
    assets |= held.keys()
    out: list[dict[str, Any]] = []
    for asset in sorted(assets):
        free, locked = held.get(asset, (0, 0))
        out.append(
            {
                "coin": asset,
                "depositAllEnable": False,
                "withdrawAllEnable": False,
                "name": COIN_NAMES.get(asset, asset),
                "free": format_units(free, ASSET_DECIMALS),
                "locked": format_units(locked, ASSET_DECIMALS),
                "freeze": _ZERO,
                "withdrawing": _ZERO,
                "ipoing": _ZERO,
                "ipoable": _ZERO,
                "storage": _ZERO,
                "isLegalMoney": False,
                "trading": True,
                "networkList": [],
            }
        )
    return out

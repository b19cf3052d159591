"""Binance's window tickers: ``GET /api/v3/ticker`` (a rolling window of ``windowSize``)
and ``GET /api/v3/ticker/tradingDay`` (the day so far, in a ``timeZone``).

Both are public, take ``symbol`` or ``symbols`` (one of them, at most 100 names) and
``type`` FULL or MINI, and weigh 4 per symbol, at most 200. The statistics come from
:func:`sandex.exchange.rolling.window_stats`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from sandex.exchange import Symbol
from sandex.exchange import rejections as vocabulary
from sandex.exchange.rolling import trading_day, utc_offset_ms, window_ms, window_stats
from sandex.http.routes import RouteTable, Security
from sandex.service import Request

__all__ = ["routes", "tickers_weight"]

routes = RouteTable()

_MAX_SYMBOLS: Final = 100


def tickers_weight(params: Mapping[str, str]) -> int:
    """4 per symbol asked for, at most 200 (Binance's weight for both routes)."""
    if "symbols" not in params:
        return 4
    try:
        names = json.loads(params["symbols"])
    except ValueError:
        return 4
    count = len(names) if isinstance(names, list) else 1
    return 200 if count > 50 else 4 * max(count, 1)


def _selection(request: Request) -> Symbol | list[Symbol]:
    params = request.params
    one, many = params.get("symbol"), params.get("symbols")
    if one and many:
        vocabulary.refuse(vocabulary.BAD_COMBINATION)
    if not one and not many:
        vocabulary.refuse(vocabulary.neither("symbol", "symbols"))
    known = request.services.exchange.symbols
    if one:
        found: Symbol = vocabulary.symbol(params, known)
        return found
    return vocabulary.symbol_list(params, known, _MAX_SYMBOLS)


def _full(request: Request) -> bool:
    kind = request.params.get("type", "FULL")
    if kind not in ("FULL", "MINI"):
        vocabulary.refuse(vocabulary.INVALID_TICKER_TYPE)
    return kind == "FULL"


def _view(
    request: Request, symbol: Symbol, opened: int, close_time: int, full: bool
) -> dict[str, Any]:
    md = request.services.exchange.market_data
    t = window_stats(md, symbol, opened=opened, now=request.now)
    fp, fq, fquote = symbol.format_price, symbol.format_quantity, symbol.format_quote
    body: dict[str, Any] = {"symbol": symbol.name}
    if full:
        body.update(
            priceChange=fp(t.price_change),
            priceChangePercent=f"{t.price_change_percent:.3f}",
            weightedAvgPrice=f"{t.weighted_avg_price:.8f}",
        )
    body.update(
        openPrice=fp(t.open),
        highPrice=fp(t.high),
        lowPrice=fp(t.low),
        lastPrice=fp(t.last),
        volume=fq(t.volume),
        quoteVolume=fquote(t.quote_volume),
        openTime=t.open_time,
        closeTime=close_time,
        firstId=t.first_id,
        lastId=t.last_id,
        count=t.count,
    )
    return body


def _answer(request: Request, opened: int, close_time: int) -> object:
    full = _full(request)
    chosen = _selection(request)
    if isinstance(chosen, list):
        return [_view(request, s, opened, close_time, full) for s in chosen]
    return _view(request, chosen, opened, close_time, full)


@routes.endpoint("GET", "/api/v3/ticker", security=Security.NONE, weight=4, weigh=tickers_weight)
def rolling_ticker(request: Request) -> object:
    """Statistics of a rolling ``windowSize`` (1m..59m, 1h..23h, 1d..7d; default 1d)
    opening on the minute and closing now."""
    text = request.params.get("windowSize") or "1d"
    length = window_ms(text)
    if length is None:
        vocabulary.refuse(vocabulary.not_valid("windowSize", "use 1m..59m, 1h..23h or 1d..7d"))
    return _answer(request, request.now - length, request.now)


@routes.endpoint(
    "GET",
    "/api/v3/ticker/tradingDay",
    security=Security.NONE,
    weight=4,
    weigh=tickers_weight,
)
def trading_day_ticker(request: Request) -> object:
    """Statistics of the trading day so far, its day starting at 00:00 in ``timeZone``
    (hours, or hours and minutes from UTC; default 0)."""
    text = request.params.get("timeZone") or "0"
    offset = utc_offset_ms(text)
    if offset is None:
        vocabulary.refuse(
            vocabulary.not_valid(
                "timeZone",
                "use hours or hours:minutes from UTC (e.g. 8, -1:00, 05:45), from -12:00 to +14:00",
            )
        )
    opened, closed = trading_day(request.now, offset)
    return _answer(request, opened, closed)

"""Binance's public market data routes: exchangeInfo, depth, trades, aggTrades, klines,
uiKlines, avgPrice and the tickers.

Every route is public (``Security.NONE``), with Binance's request weight. Binance
serves ``/api/v3/historicalTrades`` as MARKET_DATA (an API key, no signature); Sandex
serves it publicly, like the other trade lists. Where Binance's weight depends on
the parameters (depth by ``limit``, tickers by how many symbols), the route declares
the smallest and :func:`request_weight` tells the rest.

Handlers read ``request.services.exchange`` (see :class:`ExchangeView`). Parameters are
read by :mod:`sandex.exchange.rejections`, with Binance's codes and messages: -1102 for
a missing ``symbol``, -1100 for illegal characters (a lowercase symbol too), -1121 for
a symbol not listed, -1120 for an unknown interval, and so on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Final, Protocol

from sandex.exchange import Symbol
from sandex.exchange import rejections as vocabulary
from sandex.exchange.klines import INTERVALS, Candle
from sandex.exchange.marketdata import DEFAULT_LIMIT, MAX_LIMIT, MarketData, PublicTrade, Ticker
from sandex.http.ratelimit import RateLimits
from sandex.http.routes import RouteTable, Security
from sandex.service import Request
from sandex.service.trading import PublicBook

__all__ = ["routes", "request_weight", "ExchangeView"]

routes = RouteTable()


class ExchangeView(Protocol):
    """What these routes read from ``request.services.exchange``."""

    book: PublicBook
    market_data: MarketData
    symbols: Mapping[str, Symbol]


_LONG: Final = re.compile(r"[0-9]{1,20}")
_DEPTH_DEFAULT: Final = 100
_DEPTH_MAX: Final = 5000
_AGG_WINDOW_MS: Final = 3600 * 1000
_ZERO: Final = "0.00000000"


def _exchange(request: Request) -> ExchangeView:
    view: ExchangeView = request.services.exchange
    return view


# -- parameters -------------------------------------------------------------------------


def _required_symbol(request: Request) -> Symbol:
    return vocabulary.symbol(request.params, _exchange(request).symbols)


def _selection(request: Request) -> list[Symbol] | Symbol:
    """``symbol=`` (one), ``symbols=[...]`` (a list) or neither (every symbol, a list)."""
    params = request.params
    if "symbol" in params and "symbols" in params:
        vocabulary.refuse(vocabulary.BAD_COMBINATION)
    if "symbol" in params:
        return _required_symbol(request)
    if "symbols" in params:
        return vocabulary.symbol_list(params, _exchange(request).symbols)
    return list(_exchange(request).symbols.values())


# -- weights ----------------------------------------------------------------------------


def _depth_weight(limit: int) -> int:
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def _symbols_weight(params: Mapping[str, str], one: int, many: int) -> int:
    if "symbol" in params:
        return one
    if "symbols" not in params:
        return many
    try:
        count = len(json.loads(params["symbols"]))
    except (ValueError, TypeError):
        return one
    return 2 if count <= 20 else 40 if count <= 100 else 80


def request_weight(path: str, params: Mapping[str, str]) -> int | None:
    """Binance's weight for a request whose weight depends on its parameters; None for
    the routes whose declared weight is the whole story."""
    if path == "/api/v3/depth":
        text = params.get("limit", "")
        limit = int(text) if _LONG.fullmatch(text) else _DEPTH_DEFAULT
        return _depth_weight(min(limit, _DEPTH_MAX))
    if path == "/api/v3/ticker/24hr":
        return _symbols_weight(params, 2, 80)
    if path in ("/api/v3/ticker/price", "/api/v3/ticker/bookTicker"):
        return 2 if "symbol" in params else 4
    return None


# -- general ----------------------------------------------------------------------------


def _rate_limits(request: Request) -> list[dict[str, object]]:
    """The limits the gateway enforces (its limiter's, else the defaults)."""
    limiter = getattr(request.services, "limiter", None)
    limits: RateLimits = limiter.limits if limiter is not None else RateLimits()
    return [
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": limits.ip_weight_1m,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": limits.orders_10s,
        },
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": limits.orders_1d},
    ]


@routes.endpoint("GET", "/api/v3/exchangeInfo", security=Security.NONE, weight=20)
def exchange_info(request: Request) -> object:
    """Trading rules and symbols (all, or those named by ``symbol`` / ``symbols``)."""
    chosen = _selection(request)
    symbols = chosen if isinstance(chosen, list) else [chosen]
    return {
        "timezone": "UTC",
        "serverTime": request.now,
        "rateLimits": _rate_limits(request),
        "exchangeFilters": [],
        "symbols": [s.exchange_info() for s in symbols],
    }


# -- the book ---------------------------------------------------------------------------


@routes.endpoint(
    "GET",
    "/api/v3/depth",
    security=Security.NONE,
    weight=5,
    weigh=partial(request_weight, "/api/v3/depth"),
)
def depth(request: Request) -> object:
    """The order book, ``limit`` levels a side (default 100, at most 5000)."""
    symbol = _required_symbol(request)
    limit = vocabulary.capped_limit(request.params, _DEPTH_DEFAULT, _DEPTH_MAX)
    book = _exchange(request).book
    bids, asks = book.depth(symbol.name, limit)
    fp, fq = symbol.format_price, symbol.format_quantity
    return {  # the levels as of that update: the diff streams continue from it
        "lastUpdateId": book.update_id(symbol.name),
        "bids": [[fp(level.price), fq(level.quantity)] for level in bids],
        "asks": [[fp(level.price), fq(level.quantity)] for level in asks],
    }


def _book_ticker(ex: ExchangeView, symbol: Symbol) -> dict[str, Any]:
    bid, ask = ex.book.best_bid(symbol.name), ex.book.best_ask(symbol.name)
    fp, fq = symbol.format_price, symbol.format_quantity
    return {
        "symbol": symbol.name,
        "bidPrice": fp(bid.price) if bid else _ZERO,
        "bidQty": fq(bid.quantity) if bid else _ZERO,
        "askPrice": fp(ask.price) if ask else _ZERO,
        "askQty": fq(ask.quantity) if ask else _ZERO,
    }


@routes.endpoint(
    "GET",
    "/api/v3/ticker/bookTicker",
    security=Security.NONE,
    weight=2,
    weigh=partial(request_weight, "/api/v3/ticker/bookTicker"),
)
def book_ticker(request: Request) -> object:
    """Best bid and ask: one symbol, several (``symbols``) or all."""
    ex = _exchange(request)
    chosen = _selection(request)
    if isinstance(chosen, list):
        return [_book_ticker(ex, s) for s in chosen]
    return _book_ticker(ex, chosen)


# -- trades -----------------------------------------------------------------------------


def _trade_rows(symbol: Symbol, trades: Sequence[PublicTrade]) -> list[dict[str, object]]:
    fp, fq, fquote = symbol.format_price, symbol.format_quantity, symbol.format_quote
    return [
        {
            "id": t.id,
            "price": fp(t.price),
            "qty": fq(t.quantity),
            "quoteQty": fquote(t.quote),
            "time": t.time,
            "isBuyerMaker": t.buyer_is_maker,
            "isBestMatch": True,
        }
        for t in trades
    ]


@routes.endpoint("GET", "/api/v3/trades", security=Security.NONE, weight=25)
def recent_trades(request: Request) -> object:
    """The newest ``limit`` trades (default 500, at most 1000), oldest first."""
    symbol = _required_symbol(request)
    limit = vocabulary.capped_limit(request.params, DEFAULT_LIMIT, MAX_LIMIT)
    trades = _exchange(request).market_data.recent_trades(symbol.name, limit)
    return _trade_rows(symbol, trades)


@routes.endpoint("GET", "/api/v3/historicalTrades", security=Security.NONE, weight=25)
def historical_trades(request: Request) -> object:
    """``limit`` trades from trade id ``fromId`` on (or the newest), oldest first.

    Binance asks for an API key here (MARKET_DATA); Sandex serves it publicly.
    """
    symbol = _required_symbol(request)
    limit = vocabulary.capped_limit(request.params, DEFAULT_LIMIT, MAX_LIMIT)
    from_id = vocabulary.long(request.params, "fromId")
    trades = _exchange(request).market_data.historical_trades(symbol.name, limit, from_id)
    return _trade_rows(symbol, trades)


@routes.endpoint("GET", "/api/v3/aggTrades", security=Security.NONE, weight=4)
def agg_trades(request: Request) -> object:
    """Aggregate trades by ``fromId`` or a ``startTime``/``endTime`` window of at most
    an hour; the newest ``limit`` without either."""
    symbol = _required_symbol(request)
    limit = vocabulary.capped_limit(request.params, DEFAULT_LIMIT, MAX_LIMIT)
    from_id = vocabulary.long(request.params, "fromId")
    start, end = vocabulary.window(request.params)
    if start is not None and end is not None and end - start > _AGG_WINDOW_MS:
        vocabulary.refuse(vocabulary.AGG_WINDOW_TOO_LONG)
    aggs = _exchange(request).market_data.agg_trades(
        symbol.name, from_id=from_id, start=start, end=end, limit=limit
    )
    fp, fq = symbol.format_price, symbol.format_quantity
    return [
        {
            "a": a.id,
            "p": fp(a.price),
            "q": fq(a.quantity),
            "f": a.first_id,
            "l": a.last_id,
            "T": a.time,
            "m": a.buyer_is_maker,
            "M": True,
        }
        for a in aggs
    ]


# -- klines and prices ------------------------------------------------------------------


def _kline_row(symbol: Symbol, c: Candle) -> list[object]:
    fp, fq, fquote = symbol.format_price, symbol.format_quantity, symbol.format_quote
    return [
        c.open_time,
        fp(c.open),
        fp(c.high),
        fp(c.low),
        fp(c.close),
        fq(c.volume),
        c.close_time,
        fquote(c.quote_volume),
        c.trades,
        fq(c.taker_buy_volume),
        fquote(c.taker_buy_quote_volume),
        "0",
    ]


_TIME_ZONE: Final = re.compile(r"([+-]?)([0-9]{1,2})(?::([0-9]{2}))?")
_EARLIEST_ZONE: Final = -12 * 3_600_000
_LATEST_ZONE: Final = 14 * 3_600_000


def _time_zone(request: Request) -> int:
    """``timeZone``: hours (``8``, ``-1``) or hours and minutes (``05:45``, ``-1:00``),
    from -12:00 to +14:00 inclusive, as ms east of UTC; 0 when not sent."""
    text = request.params.get("timeZone")
    if text is None:
        return 0
    if not text:
        vocabulary.refuse(vocabulary.empty("timeZone"))
    match = _TIME_ZONE.fullmatch(text)
    if match is not None:
        hours, minutes = int(match.group(2)), int(match.group(3) or 0)
        offset = (hours * 60 + minutes) * 60_000 * (-1 if match.group(1) == "-" else 1)
        if minutes < 60 and _EARLIEST_ZONE <= offset <= _LATEST_ZONE:
            return offset
    vocabulary.refuse(vocabulary.not_valid("timeZone"))


def _candles(request: Request) -> tuple[Symbol, list[Candle]]:
    """The parameters klines and uiKlines share, and the candles they select."""
    symbol = _required_symbol(request)
    interval = request.params.get("interval")
    if not interval:
        vocabulary.refuse(vocabulary.missing("interval"))
    if interval not in INTERVALS:
        vocabulary.refuse(vocabulary.INVALID_INTERVAL)
    start, end = vocabulary.window(request.params)
    limit = vocabulary.capped_limit(request.params, DEFAULT_LIMIT, MAX_LIMIT)
    offset = _time_zone(request)
    candles = _exchange(request).market_data.klines(
        symbol.name, interval, start=start, end=end, limit=limit, now=request.now, offset=offset
    )
    return symbol, candles


@routes.endpoint("GET", "/api/v3/klines", security=Security.NONE, weight=2)
def klines(request: Request) -> object:
    """Candles of ``interval`` opening in [``startTime``, ``endTime``]: the oldest
    ``limit`` from ``startTime``, else the newest (default 500, at most 1000); windows
    aligned in ``timeZone`` (default UTC)."""
    symbol, candles = _candles(request)
    return [_kline_row(symbol, c) for c in candles]


@routes.endpoint("GET", "/api/v3/uiKlines", security=Security.NONE, weight=2)
def ui_klines(request: Request) -> object:
    """``klines`` for drawing charts: the same parameters and the same rows (Binance
    documents only that; Sandex's candles come from one continuous price path)."""
    symbol, candles = _candles(request)
    return [_kline_row(symbol, c) for c in candles]


@routes.endpoint("GET", "/api/v3/avgPrice", security=Security.NONE, weight=2)
def average_price(request: Request) -> object:
    """The average trade price over the symbol's ``avgPriceMins`` (what NOTIONAL uses)."""
    symbol = _required_symbol(request)
    ex = _exchange(request)
    price = ex.book.average_price(symbol.name, request.now)
    if price is None:
        price = ex.market_data.last_price(symbol.name)
    last = ex.market_data.last_trade(symbol.name)
    return {
        "mins": symbol.notional.avg_price_mins,
        "price": symbol.format_price(price) if price is not None else _ZERO,
        "closeTime": last.time if last is not None else request.now,
    }


def _price(ex: ExchangeView, symbol: Symbol) -> dict[str, Any]:
    price = ex.market_data.last_price(symbol.name)
    if price is None:
        price = ex.book.last_price(symbol.name)
    return {
        "symbol": symbol.name,
        "price": symbol.format_price(price) if price is not None else _ZERO,
    }


@routes.endpoint(
    "GET",
    "/api/v3/ticker/price",
    security=Security.NONE,
    weight=2,
    weigh=partial(request_weight, "/api/v3/ticker/price"),
)
def price_ticker(request: Request) -> object:
    """The last price: one symbol, several (``symbols``) or all."""
    ex = _exchange(request)
    chosen = _selection(request)
    if isinstance(chosen, list):
        return [_price(ex, s) for s in chosen]
    return _price(ex, chosen)


def _ticker(ex: ExchangeView, symbol: Symbol, now: int, full: bool) -> dict[str, Any]:
    t: Ticker = ex.market_data.ticker(symbol.name, now)
    fp, fq, fquote = symbol.format_price, symbol.format_quantity, symbol.format_quote
    body: dict[str, Any] = {"symbol": symbol.name}
    if full:  # FULL puts these first; lastPrice keeps this place when set again below
        body.update(
            priceChange=fp(t.price_change),
            priceChangePercent=f"{t.price_change_percent:.3f}",
            weightedAvgPrice=f"{t.weighted_avg_price:.8f}",
            prevClosePrice=fp(t.prev_close),
            lastPrice=fp(t.last),
            lastQty=fq(t.last_quantity),
        )
        book = _book_ticker(ex, symbol)
        del book["symbol"]
        body.update(book)
    body.update(
        openPrice=fp(t.open),
        highPrice=fp(t.high),
        lowPrice=fp(t.low),
        lastPrice=fp(t.last),
        volume=fq(t.volume),
        quoteVolume=fquote(t.quote_volume),
        openTime=t.open_time,
        closeTime=t.close_time,
        firstId=t.first_id,
        lastId=t.last_id,
        count=t.count,
    )
    return body


@routes.endpoint(
    "GET",
    "/api/v3/ticker/24hr",
    security=Security.NONE,
    weight=2,
    weigh=partial(request_weight, "/api/v3/ticker/24hr"),
)
def ticker_24hr(request: Request) -> object:
    """Rolling 24h statistics (``type`` FULL or MINI): one symbol, several or all."""
    kind = request.params.get("type", "FULL")
    if kind not in ("FULL", "MINI"):
        vocabulary.refuse(vocabulary.INVALID_TICKER_TYPE)
    ex = _exchange(request)
    chosen = _selection(request)
    full = kind == "FULL"
    if isinstance(chosen, list):
        return [_ticker(ex, s, request.now, full) for s in chosen]
    return _ticker(ex, chosen, request.now, full)

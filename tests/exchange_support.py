"""Helpers for the exchange tests: an engine on the default symbols, orders in decimal strings.

Prices and quantities are written as Binance would send them ("60000.01", "0.5") and
turned into BTCUSDT's fixed-point units here, so a test reads like the request it models.
"""

from __future__ import annotations

from sandex.exchange import (
    Accepted,
    Engine,
    Event,
    OrderType,
    PlaceOrder,
    Rejected,
    SelfTradePrevention,
    Side,
    Symbol,
    TimeInForce,
    Trade,
    default_symbols,
)

__all__ = [
    "BTC",
    "NOW",
    "SYMBOL",
    "accepted",
    "buy",
    "kinds",
    "limit",
    "market",
    "new_engine",
    "px",
    "qty",
    "rejected",
    "sell",
    "stop",
    "trades",
]

SYMBOL = "BTCUSDT"
NOW = 1_800_000_000_000
BTC: Symbol = next(s for s in default_symbols() if s.name == SYMBOL)
GTC = TimeInForce.GTC


def new_engine(*symbols: Symbol) -> Engine:
    return Engine(symbols or default_symbols())


def px(text: str) -> int:
    """A BTCUSDT price in its units (cents)."""
    return BTC.price_units(text)


def qty(text: str) -> int:
    """A BTCUSDT quantity in its units (1e-5 BTC)."""
    return BTC.quantity_units(text)


def limit(
    side: Side,
    quantity: str,
    price: str,
    *,
    account: int = 1,
    tif: TimeInForce | None = GTC,
    kind: OrderType = OrderType.LIMIT,
    cid: str | None = None,
    stp: SelfTradePrevention | None = None,
) -> PlaceOrder:
    return PlaceOrder(
        SYMBOL,
        account,
        side,
        kind,
        quantity=qty(quantity),
        price=px(price),
        time_in_force=tif,
        client_order_id=cid,
        stp_mode=stp,
    )


def buy(quantity: str, price: str, **kwargs) -> PlaceOrder:
    return limit(Side.BUY, quantity, price, **kwargs)


def sell(quantity: str, price: str, **kwargs) -> PlaceOrder:
    return limit(Side.SELL, quantity, price, **kwargs)


def market(
    side: Side,
    quantity: str | None = None,
    *,
    quote: str | None = None,
    account: int = 1,
    stp: SelfTradePrevention | None = None,
) -> PlaceOrder:
    return PlaceOrder(
        SYMBOL,
        account,
        side,
        OrderType.MARKET,
        quantity=None if quantity is None else qty(quantity),
        quote_quantity=None if quote is None else BTC.quote_units(quote),
        stp_mode=stp,
    )


def stop(
    kind: OrderType,
    side: Side,
    quantity: str,
    stop_price: str,
    price: str | None = None,
    *,
    account: int = 1,
    cid: str | None = None,
) -> PlaceOrder:
    is_limit = price is not None
    return PlaceOrder(
        SYMBOL,
        account,
        side,
        kind,
        quantity=qty(quantity),
        price=None if price is None else px(price),
        time_in_force=GTC if is_limit else None,
        stop_price=px(stop_price),
        client_order_id=cid,
    )


def trades(events: list[Event]) -> list[Trade]:
    return [e for e in events if isinstance(e, Trade)]


def kinds(events: list[Event]) -> list[str]:
    """The event class names, for compact assertions on a sequence."""
    return [type(e).__name__ for e in events]


def accepted(events: list[Event]) -> Accepted:
    first = events[0]
    assert isinstance(first, Accepted), events
    return first


def rejected(events: list[Event]) -> Rejected:
    assert len(events) == 1 and isinstance(events[0], Rejected), events
    return events[0]

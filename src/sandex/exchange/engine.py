"""The matching engine: commands in, events out, one sequenced book per symbol.

    engine = Engine(default_symbols())
    events = engine.submit(PlaceOrder.limit("BTCUSDT", 7, Side.BUY, 100, 6_000_000), now)
    # [Accepted(order_id=1, ...)] or [Accepted, Trade, ..., Expired] or [Rejected(-1013, ...)]

The engine is pure: it does no I/O and reads no clock; ``now`` (epoch milliseconds)
comes with every call. It knows nothing of balances: a ledger reads the events
(see :mod:`sandex.exchange.events`). The same interface serves an in-process call
and a socket transport (DESIGN §7).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from sandex.exchange.book import Level, Resting
from sandex.exchange.errors import InvalidMarket
from sandex.exchange.events import Accepted, Event, Expired, Rejected
from sandex.exchange.market import BookSnapshot, Market, OpenOrder, PendingStop
from sandex.exchange.orders import (
    CancelOrder,
    CancelReplace,
    Command,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from sandex.exchange.rejections import INVALID_SYMBOL
from sandex.exchange.symbols import UNLIMITED, Symbol, symbols_by_name
from sandex.exchange.units import PriceUnits, QuantityUnits, QuoteUnits

__all__ = ["Engine"]

_LIMIT: Final = OrderType.LIMIT
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_GTC: Final = TimeInForce.GTC
_IOC: Final = TimeInForce.IOC
_FOK: Final = TimeInForce.FOK
_STP: Final = SelfTradePrevention
_PLACE_ORDER: Final = PlaceOrder
_ACCEPTED: Final = Accepted
_new: Final = tuple.__new__  # builds an event tuple without the NamedTuple's Python-level __new__


class Engine:
    """Sequenced matching for a set of symbols: ``submit(command, now) -> events``."""

    __slots__ = ("_markets",)

    def __init__(self, symbols: Iterable[Symbol]) -> None:
        self._markets = {name: Market(s) for name, s in symbols_by_name(symbols).items()}

    def submit(self, command: Command, now: int, budget: QuoteUnits | None = None) -> list[Event]:
        """Apply ``command`` at time ``now`` (epoch ms) and return what happened, in order.

        ``budget`` (quote units) caps what a MARKET buy by quantity may spend, now or
        when its stop triggers: a ledger passes what it locked for the order.
        """
        # The hot path, written out here rather than in Market.place to save calls: a
        # LIMIT order on a symbol whose tick and step are its units, the filters as
        # three chained comparisons. Anything else, or any field of an unexpected type,
        # takes the full path (whose checks answer for it).
        if type(command) is not _PLACE_ORDER:
            return self._submit(command, now, budget)
        fields: tuple[object, ...] = command  # untyped, so that no field is coerced here
        symbol, account, side, kind, qty, price, tif, quote, stop, cid, stp = fields
        market = self._markets.get(symbol) if type(symbol) is str else None
        if market is None:
            return [INVALID_SYMBOL]
        bounds = market.bounds
        if (
            kind is not _LIMIT
            or bounds is None
            or type(qty) is not int
            or type(price) is not int
            or type(account) is not int
            or (tif is not _GTC and tif is not _IOC and tif is not _FOK)
            or (side is not _BUY and side is not _SELL)
            or quote is not None
            or stop is not None
        ):
            return market.place(command, now, budget)
        lo_p, hi_p, lo_q, hi_q, lo_n, hi_n = bounds
        if not (lo_p <= price <= hi_p and lo_q <= qty <= hi_q and lo_n <= price * qty <= hi_n):
            return market.place(command, now)
        if stp is None:
            mode = market.default_stp
        elif type(stp) is _STP and stp in market.allowed_stp:
            mode = stp
        else:
            return market.place(command, now)
        if cid is not None:
            if type(cid) is not str:
                return market.place(command, now)
            refused = market.admit(account, cid)
            if refused is not None:
                return [refused]
        elif market.counting:
            refused = market.admit(account, None)
            if refused is not None:
                return [refused]
        oid = market.next_order_id
        market.next_order_id = oid + 1
        if cid is not None:
            market.add_cid(account, cid, oid)
        events: list[Event] = [_new(_ACCEPTED, (oid, command, mode, True, now))]
        book = market.book
        buy = side is _BUY
        # The best opposite key, if any, reaches the price: try to take. (The level may
        # be one a cancel emptied: taking then finds nothing, as if nothing crossed.)
        keys = book.ask_keys if buy else book.bid_keys
        if keys and (keys[0] <= price if buy else -keys[0] >= price):
            market.execute(
                oid,
                account,
                buy,
                PriceUnits(price),
                QuantityUnits(qty),
                None,
                tif,
                mode,
                events,
                now,
            )
            if market.stops:
                market.trigger(events, now)
        elif tif is _GTC:
            units = QuantityUnits(qty)
            book.rest(Resting(units, oid, account, PriceUnits(price), units, buy))
        else:  # IOC and FOK with nothing to take
            events.append(Expired(oid, account, QuantityUnits(qty), False, now))
        return events

    def _submit(self, command: Command, now: int, budget: QuoteUnits | None) -> list[Event]:
        if isinstance(command, CancelReplace):
            market = self._markets.get(command.order.symbol)
            if market is None:
                return [INVALID_SYMBOL]
            return market.cancel_replace(command, now, budget)
        market = self._markets.get(command.symbol)
        if market is None:
            return [INVALID_SYMBOL]
        if isinstance(command, PlaceOrder):
            return market.place(command, now, budget)
        if isinstance(command, CancelOrder):
            return market.cancel(command, now)
        return market.cancel_all(command, now)

    def check(self, order: PlaceOrder, now: int) -> Rejected | None:
        """The static checks of ``order`` without placing it (``POST /api/v3/order/test``)."""
        market = self._markets.get(order.symbol)
        if market is None:
            return INVALID_SYMBOL
        return market.check(order, now)

    # -- reading ----------------------------------------------------------------------

    def _market(self, symbol: str) -> Market:
        market = self._markets.get(symbol)
        if market is None:
            raise InvalidMarket(f"unknown symbol {symbol}")
        return market

    def depth(self, symbol: str, limit: int = 100) -> tuple[list[Level], list[Level]]:
        """``(bids, asks)``, best first, at most ``limit`` levels each."""
        return self._market(symbol).book.depth(limit)

    def changed_levels(self, symbol: str) -> tuple[list[Level], list[Level]]:
        """The levels of ``symbol`` that may have changed since the last call, with their
        quantity now (0: gone): ``(bids, asks)``, unordered."""
        return self._market(symbol).book.changed_levels()

    def best_bid(self, symbol: str) -> Level | None:
        return self._market(symbol).book.best_bid()

    def best_ask(self, symbol: str) -> Level | None:
        return self._market(symbol).book.best_ask()

    def last_price(self, symbol: str) -> PriceUnits | None:
        return self._market(symbol).book.last_price

    def average_price(self, symbol: str, now: int) -> PriceUnits | None:
        """The average trade price of the last avgPriceMins minutes (price units)."""
        return self._market(symbol).average_price(now)

    def market_fill(
        self,
        symbol: str,
        side: Side,
        quantity: QuantityUnits,
        account: int,
        stp: SelfTradePrevention | None = None,
    ) -> tuple[QuoteUnits, QuantityUnits]:
        """``(quote units, quantity)`` a MARKET order of ``account`` for ``quantity``
        would trade right now, as far as the book (and self-trade prevention, whose
        mode ``stp`` defaults to the symbol's) lets it. For a ledger sizing a lock."""
        market = self._market(symbol)
        mode = market.default_stp if stp is None else stp
        buy = side is _BUY
        cost = 0
        left: int = quantity
        walk = market.book.reachable(buy, UNLIMITED if buy else 0, account, mode)
        for price, order in walk:
            if order is None:
                break
            take = min(left, order.remaining)
            cost += take * price
            left -= take
            if not left:
                break
        return QuoteUnits(cost), QuantityUnits(quantity - left)

    def market_quantity_for_quote(
        self,
        symbol: str,
        side: Side,
        quote: QuoteUnits,
        account: int,
        stp: SelfTradePrevention | None = None,
    ) -> QuantityUnits:
        """The quantity a MARKET order of ``account`` for ``quote`` (quote units) would
        take right now, as the engine would fill it (for a ledger sizing a sell's lock)."""
        market = self._market(symbol)
        rules = market.symbol.rules
        most = min(rules.quantities.stop, rules.market_quantities.stop) - 1
        mode = market.default_stp if stp is None else stp
        return market.book.quote_fill(
            side is _BUY, quote, rules.quantity_step, most, account, mode
        )[0]

    def open_orders(self, symbol: str, account: int | None = None) -> list[OpenOrder]:
        """Resting orders (of ``account``, or all), in priority order for all."""
        return self._market(symbol).open_orders(account)

    def resting(self, symbol: str, account: int) -> list[OpenOrder]:
        """``account``'s resting orders, oldest first, without their client order ids
        (cheaper than :meth:`open_orders`: the market makers read theirs every step)."""
        return [
            OpenOrder(o.order_id, account, _BUY if o.buy else _SELL, o.price, o.quantity,
                      o.remaining, None)
            for o in self._market(symbol).book.orders_of(account)
        ]  # fmt: skip

    def pending_stops(self, symbol: str, account: int | None = None) -> list[PendingStop]:
        stops = sorted(self._market(symbol).stops.values())
        return [s for s in stops if account is None or s.order.account == account]

    def sequence(self, symbol: str) -> tuple[int, int, PriceUnits | None]:
        """``(next order id, next trade id, last price)``: what storage keeps per symbol."""
        market = self._market(symbol)
        return market.next_order_id, market.book.next_trade_id, market.book.last_price

    def snapshot(self, symbol: str) -> BookSnapshot:
        return self._market(symbol).snapshot()

    def restore(self, snapshot: BookSnapshot) -> None:
        """Rebuild a symbol from :meth:`snapshot` (or from storage) into an empty engine."""
        self._market(snapshot.symbol).restore(snapshot)

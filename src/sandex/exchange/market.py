"""One symbol's engine state and its commands: placing (every order type), stops and
their triggers, client order ids, cancels, cancel-replace, snapshots.

The book itself (price levels and the matching loop) is :mod:`sandex.exchange.book`;
the engine (:mod:`sandex.exchange.engine`) routes commands here by symbol.
"""

from __future__ import annotations

from collections.abc import Iterable
from heapq import heapify, heappop, heappush
from typing import Final, NamedTuple

from sandex.exchange.book import OrderBook, Resting
from sandex.exchange.checks import check_order
from sandex.exchange.errors import InvalidMarket
from sandex.exchange.events import (
    Accepted,
    Canceled,
    Event,
    Expired,
    Rejected,
    ReplaceFailed,
    Triggered,
)
from sandex.exchange.orders import (
    LIMIT_TYPES,
    STOP_TYPES,
    CancelAll,
    CancelOrder,
    CancelReplace,
    CancelReplaceMode,
    CancelRestriction,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from sandex.exchange.rejections import (
    CANCEL_RESTRICTED,
    DUPLICATE_ORDER,
    NO_CANCEL_TARGET,
    NO_LIQUIDITY,
    NO_LOT_LIQUIDITY,
    REPLACE_FAILED,
    REPLACE_MISMATCH,
    REPLACE_NOT_ALLOWED,
    REPLACE_PARTLY_FAILED,
    UNKNOWN_ORDER,
    WOULD_TAKE,
    WOULD_TRIGGER,
)
from sandex.exchange.symbols import (
    MAX_NUM_ALGO_ORDERS_FAILURE,
    MAX_NUM_ORDERS_FAILURE,
    UNLIMITED,
    Symbol,
)
from sandex.exchange.units import PriceUnits, QuantityUnits, QuoteUnits

__all__ = ["Market", "Bounds", "OpenOrder", "PendingStop", "BookSnapshot"]

_LIMIT_MAKER: Final = OrderType.LIMIT_MAKER
_MARKET: Final = OrderType.MARKET
_BUY: Final = Side.BUY
_GTC: Final = TimeInForce.GTC
_FOK: Final = TimeInForce.FOK
_NOTHING: Final = QuantityUnits(0)


class Bounds(NamedTuple):
    """A symbol's filters as inclusive bounds, for the engine's LIMIT fast path (which
    takes it only when the tick and step are the units, so that bounds are the whole
    rule)."""

    min_price: int
    max_price: int
    min_quantity: int
    max_quantity: int
    min_notional: int
    max_notional: int


class OpenOrder(NamedTuple):
    """A resting order as the engine holds it (for queries, snapshots and restore)."""

    order_id: int
    account: int
    side: Side
    price: PriceUnits
    quantity: QuantityUnits
    remaining: QuantityUnits
    client_order_id: str | None


class PendingStop(NamedTuple):
    """A stop order waiting for its trigger."""

    order_id: int
    order: PlaceOrder
    stp_mode: SelfTradePrevention
    budget: QuoteUnits | None = None
    """Most a triggered MARKET buy by quantity may spend; None: no cap."""


class BookSnapshot(NamedTuple):
    """Everything needed to rebuild one symbol's engine state after a restart.

    ``resting`` is in priority order (per side: best price first, then time).
    """

    symbol: str
    next_order_id: int
    next_trade_id: int
    last_price: PriceUnits | None
    resting: list[OpenOrder]
    stops: list[PendingStop]


def _rises(order: PlaceOrder) -> bool:
    """Does this stop trigger when the price rises to it (else when it falls to it)?

    Binance: stop price above the market for STOP_LOSS BUY and TAKE_PROFIT SELL,
    below it for STOP_LOSS SELL and TAKE_PROFIT BUY.
    """
    loss = order.type in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)
    return loss == (order.side is _BUY)


class Market:
    """One symbol's sequenced state: book, pending stops, ids, client order ids.

    The engine's fast path (:meth:`sandex.exchange.engine.Engine.submit`) reads and
    writes ``bounds``, ``default_stp``, ``allowed_stp``, ``counting``,
    ``next_order_id`` and ``book`` directly; everything else goes through methods.
    """

    __slots__ = (
        "allowed_stp",
        "book",
        "bounds",
        "cid_prune_at",
        "cids",
        "counting",
        "default_stp",
        "falling",
        "max_orders",
        "next_order_id",
        "rising",
        "stop_counts",
        "stops",
        "symbol",
        "trading",
    )

    def __init__(self, symbol: Symbol) -> None:
        rules = symbol.rules
        self.symbol = symbol
        self.book = OrderBook()
        self.next_order_id = 1
        self.stops: dict[int, PendingStop] = {}
        self.rising: list[tuple[int, int]] = []  # (stop price, order id): last >= stop
        self.falling: list[tuple[int, int]] = []  # (-stop price, order id): last <= stop
        self.stop_counts: dict[int, int] = {}
        self.cids: dict[tuple[int, str], int] = {}  # may hold ids of closed orders
        self.cid_prune_at = 1024
        self.default_stp = symbol.default_stp_mode
        self.allowed_stp = frozenset(symbol.allowed_stp_modes)
        self.max_orders = rules.max_num_orders
        self.counting = rules.max_num_orders < UNLIMITED
        self.trading = symbol.status == "TRADING"
        prices, quantities, notionals = rules.prices, rules.quantities, rules.notionals
        unit_grid = prices.step == 1 and quantities.step == 1
        self.bounds: Bounds | None = (
            Bounds(
                prices.start, prices.stop - 1,
                quantities.start, quantities.stop - 1,
                notionals.start, notionals.stop - 1,
            )
            if unit_grid and self.trading
            else None
        )  # fmt: skip

    # -- placing ----------------------------------------------------------------------

    def place(self, cmd: PlaceOrder, now: int, budget: QuoteUnits | None = None) -> list[Event]:
        """Place any order, every check in full (the engine's fast path covers plain LIMITs).

        ``budget`` caps what a MARKET buy by quantity (now or once its stop triggers)
        may spend, in quote units: it fills what the budget buys and expires the rest.
        """
        error = self.check(cmd, now)
        if error is not None:
            return [error]
        stp = cmd.stp_mode or self.default_stp
        account = cmd.account
        buy = cmd.side is _BUY
        book = self.book
        kind = cmd.type
        stop = kind in STOP_TYPES
        refused = self.admit(account, cmd.client_order_id)
        if refused is not None:
            return [refused]
        if stop:
            if self.stop_counts.get(account, 0) >= self.symbol.rules.max_num_algo_orders:
                return [MAX_NUM_ALGO_ORDERS_FAILURE]
            last = book.last_price
            assert cmd.stop_price is not None
            if last is not None and (
                last >= cmd.stop_price if _rises(cmd) else last <= cmd.stop_price
            ):
                return [WOULD_TRIGGER]
        elif kind is _LIMIT_MAKER:
            assert cmd.price is not None
            if book.crosses(buy, cmd.price):
                return [WOULD_TAKE]
        elif kind is _MARKET and cmd.quote_quantity is not None:
            error = self._quote_market_error(buy)
            if error is not None:
                return [error]
        oid = self.next_order_id
        self.next_order_id = oid + 1
        if cmd.client_order_id is not None:
            self.add_cid(account, cmd.client_order_id, oid)
        events: list[Event] = [Accepted(oid, cmd, stp, not stop, now)]
        if stop:
            self._park(oid, cmd, stp, budget)
            return events
        if kind is _LIMIT_MAKER:
            assert cmd.price is not None and cmd.quantity is not None
            book.rest(Resting(cmd.quantity, oid, account, cmd.price, cmd.quantity, buy))
            return events
        self.execute(
            oid, account, buy, cmd.price, cmd.quantity, cmd.quote_quantity,
            cmd.time_in_force, stp, events, now, budget,
        )  # fmt: skip
        if self.stops:
            self.trigger(events, now)
        return events

    def execute(
        self,
        oid: int,
        account: int,
        buy: bool,
        price: PriceUnits | None,
        qty: QuantityUnits | None,
        quote: QuoteUnits | None,
        tif: TimeInForce | None,
        stp: SelfTradePrevention,
        events: list[Event],
        now: int,
        budget: QuoteUnits | None = None,
    ) -> None:
        """Run an accepted (or just triggered) order against the book."""
        book = self.book
        if price is not None:  # a limit order
            assert qty is not None
            if tif is _FOK and book.fillable(buy, price, qty, account, stp) < qty:
                events.append(Expired(oid, account, QuantityUnits(qty), False, now))
                return
            remaining = book.take(buy, price, qty, oid, account, stp, events, now)
            if remaining:
                if tif is _GTC:
                    book.rest(Resting(QuantityUnits(remaining), oid, account, price, qty, buy))
                else:
                    events.append(Expired(oid, account, QuantityUnits(remaining), False, now))
            return
        worst = UNLIMITED if buy else 0
        if qty is not None:  # a market order by quantity
            cap: int = qty
            if budget is not None and buy:
                step = self.symbol.rules.quantity_step
                cap = book.quote_fill(True, budget, step, qty, account, stp)[0]
            mark = len(events)
            remaining = book.take(buy, worst, cap, oid, account, stp, events, now) if cap else 0
            stopped = any(isinstance(e, Expired) and e.order_id == oid for e in events[mark:])
            remaining += qty - cap
            if remaining and not stopped:
                events.append(Expired(oid, account, QuantityUnits(remaining), False, now))
            return
        assert quote is not None  # a market order by quote amount
        rules = self.symbol.rules
        most = min(rules.quantities.stop, rules.market_quantities.stop) - 1
        fill, ran_out = book.quote_fill(buy, quote, rules.quantity_step, most, account, stp)
        if fill == 0:
            events.append(Expired(oid, account, _NOTHING, False, now))
            return
        mark = len(events)
        book.take(buy, worst, fill, oid, account, stp, events, now)
        stopped = any(isinstance(e, Expired) and e.order_id == oid for e in events[mark:])
        if ran_out and not stopped:
            events.append(Expired(oid, account, _NOTHING, False, now))

    def admit(self, account: int, cid: str | None) -> Rejected | None:
        """The checks that depend on the account's open orders: client id, order count."""
        if cid is not None and self.open_cid(account, cid):
            return DUPLICATE_ORDER
        if self.counting and self.open_count(account) >= self.max_orders:
            return MAX_NUM_ORDERS_FAILURE
        return None

    # -- checks -----------------------------------------------------------------------

    def check(self, cmd: PlaceOrder, now: int) -> Rejected | None:
        """The static checks of an order: type, parameters, STP mode and filters."""
        return check_order(self.symbol, cmd, lambda: self.average_price(now))

    def _quote_market_error(self, buy: bool) -> Rejected | None:
        liquidity = self.book.liquidity(buy)
        if liquidity == 0:
            return NO_LIQUIDITY
        if liquidity < self.symbol.rules.quantities.start:
            return NO_LOT_LIQUIDITY
        return None

    def average_price(self, now: int) -> PriceUnits | None:
        """The average trade price over avgPriceMins (the last price when that is 0)."""
        book = self.book
        minutes = self.symbol.rules.avg_price_mins
        if minutes:
            quote, qty = book.traded(now, minutes)
            if qty:
                return PriceUnits(quote // qty)
        return book.last_price

    def open_count(self, account: int) -> int:
        return self.book.open_count(account) + self.stop_counts.get(account, 0)

    # -- client order ids -------------------------------------------------------------

    def open_cid(self, account: int, cid: str) -> bool:
        oid = self.cids.get((account, cid))
        return oid is not None and self._is_open(account, oid)

    def _is_open(self, account: int, oid: int) -> bool:
        return self.book.find(account, oid) is not None or oid in self.stops

    def add_cid(self, account: int, cid: str, oid: int) -> None:
        """Remember ``cid`` for order ``oid`` (called before the order is on the book)."""
        cids = self.cids
        if len(cids) >= self.cid_prune_at:  # drop the ids of closed orders, now and then
            for key in [k for k, v in cids.items() if not self._is_open(k[0], v)]:
                del cids[key]
            self.cid_prune_at = max(1024, 2 * len(cids))
        cids[(account, cid)] = oid

    # -- stops ------------------------------------------------------------------------

    def _park(
        self, oid: int, cmd: PlaceOrder, stp: SelfTradePrevention, budget: QuoteUnits | None
    ) -> None:
        assert cmd.stop_price is not None
        self.stops[oid] = PendingStop(oid, cmd, stp, budget)
        self.stop_counts[cmd.account] = self.stop_counts.get(cmd.account, 0) + 1
        if _rises(cmd):
            heappush(self.rising, (cmd.stop_price, oid))
        else:
            heappush(self.falling, (-cmd.stop_price, oid))

    def _unpark(self, oid: int) -> PendingStop | None:
        stop = self.stops.pop(oid, None)
        if stop is not None:
            account = stop.order.account
            left = self.stop_counts[account] - 1
            if left:
                self.stop_counts[account] = left
            else:
                del self.stop_counts[account]
            if len(self.rising) + len(self.falling) > 2 * len(self.stops) + 64:
                self._compact_stops()  # heap entries of gone stops are otherwise left to surface
        return stop

    def _compact_stops(self) -> None:
        """Drop heap entries of stops no longer pending (in place: trigger() holds the lists)."""
        for heap in (self.rising, self.falling):
            heap[:] = [(p, oid) for p, oid in heap if oid in self.stops]
            heapify(heap)

    def trigger(self, events: list[Event], now: int) -> None:
        """Activate every stop the last price has reached, until none is left to fire."""
        book = self.book
        rising, falling = self.rising, self.falling
        while True:
            last = book.last_price
            if last is None:
                return
            if rising and rising[0][0] <= last:
                oid = heappop(rising)[1]
            elif falling and -falling[0][0] >= last:
                oid = heappop(falling)[1]
            else:
                return
            stop = self._unpark(oid)
            if stop is None:  # canceled while waiting
                continue
            cmd = stop.order
            events.append(Triggered(oid, cmd.account, now))
            limit = cmd.type in LIMIT_TYPES
            self.execute(
                oid, cmd.account, cmd.side is _BUY, cmd.price if limit else None, cmd.quantity,
                cmd.quote_quantity, cmd.time_in_force, stop.stp_mode, events, now, stop.budget,
            )  # fmt: skip

    # -- canceling --------------------------------------------------------------------

    def cancel(self, cmd: CancelOrder, now: int) -> list[Event]:
        account = cmd.account
        oid = cmd.order_id
        cid = cmd.client_order_id
        if oid is None:
            if cid is None:
                return [NO_CANCEL_TARGET]
            oid = self.cids.get((account, cid))
            if oid is None:
                return [UNKNOWN_ORDER]
        elif cid is not None and self.cids.get((account, cid)) != oid:
            return [UNKNOWN_ORDER]
        order = self.book.find(account, oid)
        if order is not None:
            partly = order.remaining < order.quantity
            if self._restricted(cmd.restriction, partly):
                return [CANCEL_RESTRICTED]
            left = self.book.remove(order)
            return [Canceled(oid, account, left, now)]
        stop = self.stops.get(oid)
        if stop is None or stop.order.account != account:
            return [UNKNOWN_ORDER]
        if self._restricted(cmd.restriction, False):
            return [CANCEL_RESTRICTED]
        self._unpark(oid)
        return [Canceled(oid, account, stop.order.quantity or _NOTHING, now)]

    @staticmethod
    def _restricted(restriction: CancelRestriction | None, partly: bool) -> bool:
        if restriction is CancelRestriction.ONLY_NEW:
            return partly
        if restriction is CancelRestriction.ONLY_PARTIALLY_FILLED:
            return not partly
        return False

    def cancel_all(self, cmd: CancelAll, now: int) -> list[Event]:
        account = cmd.account
        found: list[tuple[int, QuantityUnits]] = []
        for order in self.book.orders_of(account):
            found.append((order.order_id, self.book.remove(order)))
        for oid in [o for o, s in self.stops.items() if s.order.account == account]:
            stop = self._unpark(oid)
            assert stop is not None
            found.append((oid, stop.order.quantity or _NOTHING))
        if not found:
            return [UNKNOWN_ORDER]
        return [Canceled(oid, account, left, now) for oid, left in sorted(found)]

    def cancel_replace(
        self, cmd: CancelReplace, now: int, budget: QuoteUnits | None = None
    ) -> list[Event]:
        cancel, order = cmd.cancel, cmd.order
        if cancel.account != order.account or cancel.symbol != order.symbol:
            return [REPLACE_MISMATCH]
        if not self.symbol.cancel_replace_allowed:
            return [REPLACE_NOT_ALLOWED]
        error = self.check(order, now)
        if error is not None:  # filters are evaluated before anything happens
            return [error]
        canceled = self.cancel(cancel, now)
        cancel_error = canceled[0] if isinstance(canceled[0], Rejected) else None
        if cancel_error is not None and cmd.mode is CancelReplaceMode.STOP_ON_FAILURE:
            code, msg = REPLACE_FAILED
            return [ReplaceFailed(code, msg, "FAILURE", "NOT_ATTEMPTED", cancel_error, None)]
        placed = self.place(order, now, budget)
        place_error = placed[0] if isinstance(placed[0], Rejected) else None
        events: list[Event] = []
        if cancel_error is None:
            events += canceled
        if place_error is None:
            events += placed
        if cancel_error is None and place_error is None:
            return events
        both = cancel_error is not None and place_error is not None
        code, msg = REPLACE_FAILED if both else REPLACE_PARTLY_FAILED
        events.append(
            ReplaceFailed(
                code, msg,
                "FAILURE" if cancel_error else "SUCCESS",
                "FAILURE" if place_error else "SUCCESS",
                cancel_error, place_error,
            )
        )  # fmt: skip
        return events

    # -- snapshots --------------------------------------------------------------------

    def open_orders(self, account: int | None) -> list[OpenOrder]:
        orders: Iterable[Resting] = (
            self.book.entries() if account is None else self.book.orders_of(account)
        )
        cids = self._cid_index()
        return [self._open_order(o, cids) for o in orders]

    def _cid_index(self) -> dict[int, str]:
        """Client order ids of the open orders, by order id."""
        return {oid: cid for (acct, cid), oid in self.cids.items() if self._is_open(acct, oid)}

    @staticmethod
    def _open_order(order: Resting, cids: dict[int, str]) -> OpenOrder:
        order_id = order.order_id
        return OpenOrder(
            order_id, order.account, Side.BUY if order.buy else Side.SELL,
            order.price, order.quantity, order.remaining, cids.get(order_id),
        )  # fmt: skip

    def snapshot(self) -> BookSnapshot:
        book = self.book
        cids = self._cid_index()
        return BookSnapshot(
            self.symbol.name,
            self.next_order_id,
            book.next_trade_id,
            book.last_price,
            [self._open_order(e, cids) for e in book.entries()],
            sorted(self.stops.values()),
        )

    def restore(self, snap: BookSnapshot) -> None:
        if self.next_order_id != 1 or self.book.accounts or self.stops:
            raise InvalidMarket(f"{snap.symbol}: restore needs an empty book")
        book = self.book
        self.next_order_id = snap.next_order_id
        book.next_trade_id = snap.next_trade_id
        book.last_price = snap.last_price
        for o in snap.resting:
            book.rest(
                Resting(o.remaining, o.order_id, o.account, o.price, o.quantity, o.side is _BUY)
            )
            if o.client_order_id is not None:
                self.cids[(o.account, o.client_order_id)] = o.order_id
        for stop in snap.stops:
            self._park(stop.order_id, stop.order, stop.stp_mode, stop.budget)
            if stop.order.client_order_id is not None:
                self.cids[(stop.order.account, stop.order.client_order_id)] = stop.order_id

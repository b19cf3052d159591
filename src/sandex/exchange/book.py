"""The order book of one symbol: resting limit orders in price-time priority.

Layout, chosen for the matching loop:

- each side is a dict from a *key* to the :class:`Queue` of orders resting at that
  price, plus a heap of the keys; asks are keyed by price and bids by minus the
  price, so on both sides the smallest key is the best price and "the taker's limit
  reaches this level" is ``key <= limit_key``;
- a resting order is a :class:`Resting`: what is left of it and what it was;
- ``accounts`` holds each account's resting orders in order id (time) order, in a
  :class:`Holdings`.

A level emptied by a cancel may stay in the heap until it reaches the top; every
reader of the top skips such a level (and drops it). Levels emptied deep in the book
(a market maker moving its far quotes) are swept out once enough have piled up.

The module is plain Python and also compiles with mypyc (``make native``), which
makes :class:`Resting`, :class:`Queue` and :class:`Holdings` C structs outside the
cycle collector and the matching loop C code: the reason for the typed locals, and
for attributes read into locals, below.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from heapq import heapify, heappop, heappush
from typing import Final, NamedTuple

from mypy_extensions import mypyc_attr

from sandex.exchange.events import Event, Expired, SelfTradePrevented, Trade
from sandex.exchange.orders import SelfTradePrevention, Side
from sandex.exchange.units import PriceUnits, QuantityUnits

__all__ = ["OrderBook", "Level", "Resting", "Queue", "Holdings", "NOBODY"]

NOBODY: Final = -1
"""An account number no order has: the STP owner of a taker whose mode is NONE."""

WINDOW_MINUTES: Final = 60
"""Minutes of trade volume kept for the average price (Binance's avgPriceMins <= 60)."""

_COMPACT_AT: Final = 32
"""A queue (or an account's list) drops its departed orders once this many, and half
of it, have piled up."""

_SWEEP_AT: Final = 64
"""The book drops the levels cancels emptied below the top once this many have piled up."""

_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_STP_NONE: Final = SelfTradePrevention.NONE
_EXPIRE_TAKER: Final = SelfTradePrevention.EXPIRE_TAKER
_EXPIRE_MAKER: Final = SelfTradePrevention.EXPIRE_MAKER
_EXPIRE_BOTH: Final = SelfTradePrevention.EXPIRE_BOTH
_TRADE: Final = Trade
_NONE: Final = QuantityUnits(0)
_new: Final = tuple.__new__  # builds an event tuple without the NamedTuple's Python-level __new__


class Level(NamedTuple):
    """One price level as market data shows it: price and total resting quantity."""

    price: int
    quantity: int


@mypyc_attr(acyclic=True)  # compiled: no cycle GC for an object of ints
class Resting:
    """A resting limit order: ``remaining`` of its ``quantity`` is still on the book."""

    __slots__ = ("account", "buy", "order_id", "price", "quantity", "remaining")

    def __init__(
        self,
        remaining: QuantityUnits,
        order_id: int,
        account: int,
        price: PriceUnits,
        quantity: QuantityUnits,
        buy: bool,
    ) -> None:
        self.remaining = remaining
        self.order_id = order_id
        self.account = account
        self.price = price
        self.quantity = quantity
        self.buy = buy


@mypyc_attr(acyclic=True)  # compiled: its list of Resting cannot lead back to it
class Queue:
    """The orders resting at one price, oldest first: ``orders[head:]``.

    Taking the front order moves ``head`` on (a list index, cheaper than a deque);
    the filled orders before it are dropped in one go once enough have piled up.
    """

    __slots__ = ("head", "orders")

    def __init__(self, first: Resting) -> None:
        self.orders = [first]
        self.head = 0

    def live(self) -> list[Resting]:
        """The orders still resting here, oldest first (a copy)."""
        return self.orders[self.head :]

    def quantity(self) -> QuantityUnits:
        total = 0
        for order in self.live():
            total += order.remaining
        return QuantityUnits(total)

    def remove(self, order: Resting) -> None:
        """Take ``order`` (resting here) out of the queue."""
        orders = self.orders
        head = self.head
        for i in range(head, len(orders)):
            if orders[i] is order:
                del orders[i]
                return

    def drop_filled(self, head: int) -> None:
        """Record that the orders before ``head`` are filled (called with orders left)."""
        if head >= _COMPACT_AT and 2 * head >= len(self.orders):
            del self.orders[:head]
            head = 0
        self.head = head


@mypyc_attr(acyclic=True)  # compiled: holds only Resting orders
class Holdings:
    """One account's resting orders in order id (so time) order.

    A list of the orders, and a list of their ids to bisect, which catches up with
    the orders only when an order is looked up (resting an order appends it, no
    more). An order that leaves the book (filled, expired or canceled: ``remaining``
    0) is only counted in ``gone``; the gone ones are swept out in one go once they
    are half the list. Cheaper than a dict by order id, whose inserts a steady stream
    of deletes slows down.
    """

    __slots__ = ("gone", "ids", "orders")

    def __init__(self) -> None:
        self.orders: list[Resting] = []
        self.ids: list[int] = []  # of orders[:len(ids)]
        self.gone = 0

    def add(self, order: Resting) -> None:
        orders = self.orders
        if not orders or orders[-1].order_id < order.order_id:
            orders.append(order)
        else:  # out of order: only when restoring a snapshot
            ids = self._ids()
            i = bisect_left(ids, order.order_id)
            ids.insert(i, order.order_id)
            orders.insert(i, order)

    def _ids(self) -> list[int]:
        ids = self.ids
        orders = self.orders
        if len(ids) < len(orders):
            ids.extend([order.order_id for order in orders[len(ids) :]])
        return ids

    def count(self) -> int:
        return len(self.orders) - self.gone

    def find(self, order_id: int) -> Resting | None:
        ids = self._ids()
        i = bisect_left(ids, order_id)
        if i < len(ids) and ids[i] == order_id:
            order = self.orders[i]
            if order.remaining:
                return order
        return None

    def live(self) -> list[Resting]:
        if not self.gone:
            return self.orders[:]
        return [order for order in self.orders if order.remaining]

    def leave(self) -> None:
        """One of the orders has left the book (its ``remaining`` is now 0)."""
        gone = self.gone + 1
        if gone >= _COMPACT_AT and 2 * gone >= len(self.orders):
            self.orders = [order for order in self.orders if order.remaining]
            self.ids = []
            gone = 0
        self.gone = gone


class OrderBook:
    """Resting orders of one symbol and the matching of takers against them."""

    __slots__ = (
        "_minute",
        "_quantity",
        "_quote",
        "_window",
        "accounts",
        "ask_keys",
        "asks",
        "bid_keys",
        "bids",
        "changed",
        "emptied",
        "last_price",
        "next_trade_id",
    )

    def __init__(self) -> None:
        self.asks: dict[int, Queue] = {}
        self.bids: dict[int, Queue] = {}
        self.ask_keys: list[int] = []
        self.bid_keys: list[int] = []
        self.accounts: dict[int, Holdings] = {}
        self.next_trade_id = 1
        self.last_price: PriceUnits | None = None
        self.emptied = 0  # levels emptied by cancels below the top, not yet swept
        self.changed: set[int] = set()
        """Keys of the levels whose quantity may have changed since :meth:`changed_levels`
        was last called (bids' keys are their prices negated)."""
        self._window: deque[tuple[int, int, int]] = deque()  # earlier minutes
        self._minute = -1  # the latest minute with trades, and its totals
        self._quote = 0
        self._quantity = 0

    # -- resting ----------------------------------------------------------------------

    def rest(self, order: Resting) -> None:
        """Put ``order`` at the back of its price level."""
        if order.buy:
            key = -order.price
            levels = self.bids
            keys = self.bid_keys
        else:
            key = order.price
            levels = self.asks
            keys = self.ask_keys
        queue = levels.get(key)
        if queue is None:
            levels[key] = Queue(order)
            heappush(keys, key)
        else:
            queue.orders.append(order)
        self.changed.add(key)
        accounts = self.accounts
        holdings = accounts.get(order.account)
        if holdings is None:
            holdings = accounts[order.account] = Holdings()
        holdings.add(order)

    def remove(self, order: Resting) -> QuantityUnits:
        """Take ``order`` off the book (a cancel); returns what it had left."""
        left = order.remaining
        if order.buy:
            key, levels, keys = -order.price, self.bids, self.bid_keys
        else:
            key, levels, keys = order.price, self.asks, self.ask_keys
        queue = levels[key]
        queue.remove(order)
        order.remaining = _NONE
        self.changed.add(key)
        self.accounts[order.account].leave()
        if queue.head == len(queue.orders):
            if keys[0] == key:
                heappop(keys)
                del levels[key]
            else:
                self.emptied += 1
                if self.emptied >= _SWEEP_AT:
                    self._sweep()
        return QuantityUnits(left)

    def _sweep(self) -> None:
        """Drop every empty level from both sides (their heaps rebuilt in place)."""
        for levels, keys in ((self.bids, self.bid_keys), (self.asks, self.ask_keys)):
            for key in [k for k, queue in levels.items() if queue.head == len(queue.orders)]:
                del levels[key]
            keys[:] = list(levels)
            heapify(keys)
        self.emptied = 0

    def find(self, account: int, order_id: int) -> Resting | None:
        holdings = self.accounts.get(account)
        return None if holdings is None else holdings.find(order_id)

    def orders_of(self, account: int) -> list[Resting]:
        """``account``'s resting orders, oldest first."""
        holdings = self.accounts.get(account)
        return [] if holdings is None else holdings.live()

    def open_count(self, account: int) -> int:
        holdings = self.accounts.get(account)
        return 0 if holdings is None else holdings.count()

    # -- matching ---------------------------------------------------------------------

    def crosses(self, buy: bool, price: int) -> bool:
        """Would a ``buy`` (or sell) limit order at ``price`` take liquidity?"""
        if buy:
            top = _top(self.ask_keys, self.asks)
            return top is not None and top <= price
        top = _top(self.bid_keys, self.bids)
        return top is not None and -top >= price

    def take(
        self,
        buy: bool,
        limit: int,
        quantity: int,
        taker: int,
        account: int,
        stp: SelfTradePrevention,
        events: list[Event],
        now: int,
    ) -> int:
        """Match a taker against the other side down to ``limit`` (its worst price).

        Appends a :class:`Trade` per fill (and the self-trade prevention events) to
        ``events`` and returns what the taker has left; 0 also when self-trade
        prevention expired the taker (its :class:`Expired` is then in ``events``).
        """
        if buy:
            keys = self.ask_keys
            levels = self.asks
            side = _BUY
        else:
            keys = self.bid_keys
            levels = self.bids
            side = _SELL
            limit = -limit
        own = NOBODY if stp is _STP_NONE else account
        accounts = self.accounts
        changed = self.changed
        tid = first = self.next_trade_id
        remaining = quantity
        stopped = quote = last = 0
        while keys:
            key = keys[0]
            if key > limit:
                break
            queue = levels[key]
            changed.add(key)
            orders = queue.orders
            head = queue.head
            price = key if buy else -key
            while head < len(orders):
                maker = orders[head]
                if maker.account == own:
                    queue.head = head
                    going_on = self._prevent(
                        queue, maker, price, taker, account, remaining, stp, events, now
                    )
                    head = queue.head
                    if going_on:
                        continue
                    stopped = remaining
                    remaining = 0
                    break
                left = maker.remaining - remaining
                if left > 0:  # the maker outlasts the taker
                    maker.remaining = QuantityUnits(left)
                    events.append(_new(_TRADE, (
                        tid, price, remaining, taker, maker.order_id, account, maker.account,
                        side, 0, left, now,
                    )))  # fmt: skip
                    tid += 1
                    quote += price * remaining
                    last = price
                    remaining = 0
                    break
                head += 1  # the maker is filled
                fill = maker.remaining
                maker.remaining = _NONE
                accounts[maker.account].leave()
                remaining -= fill
                events.append(_new(_TRADE, (
                    tid, price, fill, taker, maker.order_id, account, maker.account, side,
                    remaining, 0, now,
                )))  # fmt: skip
                tid += 1
                quote += price * fill
                last = price
                if not remaining:
                    break
            if head == len(orders):
                heappop(keys)
                del levels[key]
            else:
                queue.drop_filled(head)
            if not remaining:
                break
        if tid != first:
            self.next_trade_id = tid
            self.last_price = PriceUnits(last)
            self.record(now, quote, quantity - remaining - stopped)
        return remaining

    def _prevent(
        self,
        queue: Queue,
        maker: Resting,
        price: int,
        taker: int,
        account: int,
        remaining: int,
        stp: SelfTradePrevention,
        events: list[Event],
        now: int,
    ) -> bool:
        """Apply self-trade prevention to ``maker`` (the front of ``queue``); True when
        the taker goes on."""
        at = PriceUnits(price)
        taker_left = QuantityUnits(remaining)
        if stp is _EXPIRE_TAKER:
            events.append(
                SelfTradePrevented(taker, maker.order_id, at, taker_left, _NONE, stp, now)
            )
            events.append(Expired(taker, account, taker_left, True, now))
            return False
        queue.head += 1
        left = maker.remaining
        maker.remaining = _NONE
        self.accounts[maker.account].leave()
        both = stp is _EXPIRE_BOTH
        events.append(
            SelfTradePrevented(
                taker, maker.order_id, at, taker_left if both else _NONE, left, stp, now
            )
        )
        events.append(Expired(maker.order_id, maker.account, left, True, now))
        if both:
            events.append(Expired(taker, account, taker_left, True, now))
            return False
        return True

    def fillable(
        self, buy: bool, limit: int, quantity: int, account: int, stp: SelfTradePrevention
    ) -> int:
        """How much of ``quantity`` a taker could fill now (for FOK), at most ``quantity``."""
        total = 0
        for _price, order in self.reachable(buy, limit, account, stp):
            if order is None:
                break
            total += order.remaining
            if total >= quantity:
                return quantity
        return total

    def quote_fill(
        self,
        buy: bool,
        quote: int,
        step: int,
        max_quantity: int,
        account: int,
        stp: SelfTradePrevention,
    ) -> tuple[QuantityUnits, bool]:
        """The quantity a MARKET order spending (or raising) ``quote`` would take.

        Fills keep to ``step`` and to ``max_quantity``. Also returns whether the book
        ran out before the quote amount was used up.
        """
        total = 0
        limit = 1 << 100 if buy else 0
        for price, order in self.reachable(buy, limit, account, stp):
            if order is None:
                return QuantityUnits(total), False
            affordable = quote // price // step * step
            take = min(order.remaining, affordable, max_quantity - total)
            total += take
            quote -= take * price
            if take < order.remaining:
                return QuantityUnits(total), False
        return QuantityUnits(total), True

    def liquidity(self, buy: bool) -> int:
        """Total quantity a taker on ``buy`` (or sell) side could reach."""
        levels = self.asks if buy else self.bids
        return sum(queue.quantity() for queue in levels.values())

    def reachable(
        self, buy: bool, limit: int, account: int, stp: SelfTradePrevention
    ) -> Iterator[tuple[int, Resting | None]]:
        """``(price, order)`` for the other side's orders a taker of ``account`` could
        trade with, in priority order, down to the ``limit`` price: what :meth:`take`
        would reach, without changing anything.

        Self-trade prevention as :meth:`take` applies it: under EXPIRE_MAKER the
        account's own orders are passed over; under EXPIRE_TAKER and EXPIRE_BOTH the
        walk ends at the first own order with ``(price, None)``: the taker expires there.
        """
        levels = self.asks if buy else self.bids
        own = NOBODY if stp is _STP_NONE else account
        skip_own = stp is _EXPIRE_MAKER
        for key in sorted(levels):
            price = key if buy else -key
            if (price > limit) if buy else (price < limit):
                return
            for order in levels[key].live():
                if order.account == own:
                    if skip_own:
                        continue
                    yield price, None
                    return
                yield price, order

    # -- market data ------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        key = _top(self.bid_keys, self.bids)
        if key is None:
            return None
        return Level(-key, self.bids[key].quantity())

    def best_ask(self) -> Level | None:
        key = _top(self.ask_keys, self.asks)
        if key is None:
            return None
        return Level(key, self.asks[key].quantity())

    def depth(self, limit: int) -> tuple[list[Level], list[Level]]:
        """Up to ``limit`` levels per side, best first: ``(bids, asks)``."""
        return self._levels(self.bids, -1, limit), self._levels(self.asks, 1, limit)

    def changed_levels(self) -> tuple[list[Level], list[Level]]:
        """The levels that may have changed since the last call, with their quantity now
        (0: gone), unordered: ``(bids, asks)``. A market-data feed's diffs, without
        walking the whole book."""
        bids: list[Level] = []
        asks: list[Level] = []
        for key in self.changed:
            if key < 0:
                queue = self.bids.get(key)
                bids.append(Level(-key, 0 if queue is None else queue.quantity()))
            else:
                queue = self.asks.get(key)
                asks.append(Level(key, 0 if queue is None else queue.quantity()))
        self.changed = set()
        return bids, asks

    @staticmethod
    def _levels(levels: dict[int, Queue], sign: int, limit: int) -> list[Level]:
        out: list[Level] = []
        for key in sorted(levels):
            if len(out) >= limit:
                break
            quantity = levels[key].quantity()
            if quantity:
                out.append(Level(key * sign, quantity))
        return out

    def entries(self) -> Iterator[Resting]:
        """Every resting order, bids then asks, each side in priority order."""
        for levels in (self.bids, self.asks):
            for key in sorted(levels):
                yield from levels[key].live()

    # -- average price ----------------------------------------------------------------

    def record(self, now: int, quote: int, quantity: int) -> None:
        """Add a taker's trades to the average-price window."""
        minute = now // 60_000
        if minute == self._minute:
            self._quote += quote
            self._quantity += quantity
            return
        if self._minute >= 0:
            window = self._window
            window.append((self._minute, self._quote, self._quantity))
            if len(window) >= WINDOW_MINUTES:
                window.popleft()
        self._minute = minute
        self._quote = quote
        self._quantity = quantity

    def traded(self, now: int, minutes: int) -> tuple[int, int]:
        """``(quote, quantity)`` traded in the last ``minutes`` minutes up to ``now``."""
        since = now // 60_000 - minutes
        quote = quantity = 0
        if self._minute > since:
            quote = self._quote
            quantity = self._quantity
        for minute, q, n in self._window:
            if minute > since:
                quote += q
                quantity += n
        return quote, quantity


def _top(keys: list[int], levels: dict[int, Queue]) -> int | None:
    """The best key of a side, dropping levels that cancels emptied."""
    while keys:
        key = keys[0]
        queue = levels[key]
        if queue.head < len(queue.orders):
            return key
        heappop(keys)
        del levels[key]
    return None

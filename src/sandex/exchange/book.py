"""The order book of one symbol: resting limit orders in price-time priority.

Layout, chosen for the matching loop:

- each side is a dict from a *key* to a FIFO ``deque`` of entries, plus a heap of
  the keys; asks are keyed by price and bids by minus the price, so on both sides
  the smallest key is the best price and "the taker's limit reaches this level" is
  ``key <= limit_key``;
- an entry is a small ``list[int]``: ``[remaining, order_id, account, price,
  quantity, side]`` (side 0 = BUY, 1 = SELL), the cheapest mutable record Python has;
- ``accounts`` maps an account to its resting entries by order id (time order).

A level emptied by a cancel may stay in the heap until it reaches the top; every
reader of the top skips such a level (and drops it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from heapq import heappop, heappush
from typing import Final, NamedTuple

from sandex.exchange.events import Event, Expired, SelfTradePrevented, Trade
from sandex.exchange.orders import SelfTradePrevention, Side

__all__ = [
    "OrderBook",
    "Level",
    "Entry",
    "REMAINING",
    "ORDER_ID",
    "ACCOUNT",
    "PRICE",
    "QUANTITY",
    "SIDE",
    "BUY_SIDE",
    "SELL_SIDE",
    "NOBODY",
]

Entry = list[int]
"""A resting order: ``[remaining, order_id, account, price, quantity, side]``."""

REMAINING: Final = 0
ORDER_ID: Final = 1
ACCOUNT: Final = 2
PRICE: Final = 3
QUANTITY: Final = 4
SIDE: Final = 5
BUY_SIDE: Final = 0
SELL_SIDE: Final = 1
NOBODY: Final = -1
"""An account number no order has: the STP owner of a taker whose mode is NONE."""

WINDOW_MINUTES: Final = 60
"""Minutes of trade volume kept for the average price (Binance's avgPriceMins <= 60)."""

_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_STP_NONE: Final = SelfTradePrevention.NONE
_EXPIRE_TAKER: Final = SelfTradePrevention.EXPIRE_TAKER
_EXPIRE_MAKER: Final = SelfTradePrevention.EXPIRE_MAKER
_EXPIRE_BOTH: Final = SelfTradePrevention.EXPIRE_BOTH
_new = tuple.__new__  # builds an event tuple without the NamedTuple's Python-level __new__


class Level(NamedTuple):
    """One price level as market data shows it: price and total resting quantity."""

    price: int
    quantity: int


class OrderBook:
    """Resting orders of one symbol and the matching of takers against them."""

    __slots__ = (
        "_window",
        "accounts",
        "ask_keys",
        "asks",
        "bid_keys",
        "bids",
        "last_price",
        "next_trade_id",
    )

    def __init__(self) -> None:
        self.asks: dict[int, deque[Entry]] = {}
        self.bids: dict[int, deque[Entry]] = {}
        self.ask_keys: list[int] = []
        self.bid_keys: list[int] = []
        self.accounts: dict[int, dict[int, Entry]] = {}
        self.next_trade_id = 1
        self.last_price: int | None = None
        self._window: deque[list[int]] = deque()

    # -- resting ----------------------------------------------------------------------

    def rest(self, entry: Entry) -> None:
        """Put ``entry`` at the back of its price level."""
        if entry[5] == 0:
            key = -entry[3]
            levels = self.bids
            keys = self.bid_keys
        else:
            key = entry[3]
            levels = self.asks
            keys = self.ask_keys
        level = levels.get(key)
        if level is None:
            levels[key] = deque((entry,))
            heappush(keys, key)
        else:
            level.append(entry)
        mine = self.accounts.get(entry[2])
        if mine is None:
            self.accounts[entry[2]] = {entry[1]: entry}
        else:
            mine[entry[1]] = entry

    def remove(self, entry: Entry) -> None:
        """Take ``entry`` off the book (a cancel, or an expiry outside matching)."""
        if entry[SIDE] == BUY_SIDE:
            key, levels, keys = -entry[PRICE], self.bids, self.bid_keys
        else:
            key, levels, keys = entry[PRICE], self.asks, self.ask_keys
        level = levels[key]
        level.remove(entry)
        del self.accounts[entry[ACCOUNT]][entry[ORDER_ID]]
        if not level and keys[0] == key:
            heappop(keys)
            del levels[key]

    def find(self, account: int, order_id: int) -> Entry | None:
        mine = self.accounts.get(account)
        return None if mine is None else mine.get(order_id)

    def orders_of(self, account: int) -> list[Entry]:
        """``account``'s resting entries, oldest first."""
        return list(self.accounts.get(account, {}).values())

    def open_count(self, account: int) -> int:
        mine = self.accounts.get(account)
        return 0 if mine is None else len(mine)

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
        append = events.append
        new = _new
        tid = first = self.next_trade_id
        remaining = quantity
        stopped = quote = last = 0
        # Entries are indexed with literals here (0 remaining, 1 order id, 2 account):
        # named constants would be global loads in the hottest loop.
        while keys:
            key = keys[0]
            if key > limit:
                break
            level = levels[key]
            price = key if buy else -key
            while level:
                maker = level[0]
                if maker[2] == own:
                    if self._prevent(
                        level, maker, price, taker, account, remaining, stp, events, now
                    ):
                        continue
                    stopped = remaining
                    remaining = 0
                    break
                left = maker[0] - remaining
                if left > 0:  # the maker outlasts the taker
                    maker[0] = left
                    append(new(Trade, (
                        tid, price, remaining, taker, maker[1], account, maker[2], side,
                        0, left, now,
                    )))  # fmt: skip
                    tid += 1
                    quote += price * remaining
                    last = price
                    remaining = 0
                    break
                level.popleft()  # the maker is filled
                del accounts[maker[2]][maker[1]]
                fill = maker[0]
                remaining -= fill
                append(new(Trade, (
                    tid, price, fill, taker, maker[1], account, maker[2], side, remaining, 0, now,
                )))  # fmt: skip
                tid += 1
                quote += price * fill
                last = price
                if not remaining:
                    break
            if not level:
                heappop(keys)
                del levels[key]
            if not remaining:
                break
        if tid != first:
            self.next_trade_id = tid
            self.last_price = last
            # the average-price window (record(), inline)
            window = self._window
            if window and window[-1][0] == now // 60_000:
                bucket = window[-1]
                bucket[1] += quote
                bucket[2] += quantity - remaining - stopped
            else:
                self.record(now, quote, quantity - remaining - stopped)
        return remaining

    def _prevent(
        self,
        level: deque[Entry],
        maker: Entry,
        price: int,
        taker: int,
        account: int,
        remaining: int,
        stp: SelfTradePrevention,
        events: list[Event],
        now: int,
    ) -> bool:
        """Apply self-trade prevention to a match; True when the taker goes on."""
        if stp is _EXPIRE_TAKER:
            events.append(SelfTradePrevented(taker, maker[1], price, remaining, 0, stp, now))
            events.append(Expired(taker, account, remaining, True, now))
            return False
        level.popleft()
        del self.accounts[maker[2]][maker[1]]
        both = stp is _EXPIRE_BOTH
        events.append(
            SelfTradePrevented(taker, maker[1], price, remaining if both else 0, maker[0], stp, now)
        )
        events.append(Expired(maker[1], maker[2], maker[0], True, now))
        if both:
            events.append(Expired(taker, account, remaining, True, now))
            return False
        return True

    def fillable(
        self, buy: bool, limit: int, quantity: int, account: int, stp: SelfTradePrevention
    ) -> int:
        """How much of ``quantity`` a taker could fill now (for FOK), at most ``quantity``."""
        total = 0
        for _price, entry in self._walk(buy, limit):
            if entry[ACCOUNT] == account and stp is not SelfTradePrevention.NONE:
                if stp is _EXPIRE_MAKER:
                    continue
                break
            total += entry[REMAINING]
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
    ) -> tuple[int, bool]:
        """The quantity a MARKET order spending (or raising) ``quote`` would take.

        Fills keep to ``step`` and to ``max_quantity``. Also returns whether the book
        ran out before the quote amount was used up.
        """
        total = 0
        limit = 1 << 100 if buy else 0
        for price, entry in self._walk(buy, limit):
            if entry[ACCOUNT] == account and stp is not SelfTradePrevention.NONE:
                if stp is _EXPIRE_MAKER:
                    continue
                return total, False
            affordable = quote // price // step * step
            take = min(entry[REMAINING], affordable, max_quantity - total)
            total += take
            quote -= take * price
            if take < entry[REMAINING]:
                return total, False
        return total, True

    def liquidity(self, buy: bool) -> int:
        """Total quantity a taker on ``buy`` (or sell) side could reach."""
        levels = self.asks if buy else self.bids
        return sum(e[REMAINING] for level in levels.values() for e in level)

    def _walk(self, buy: bool, limit: int) -> Iterator[tuple[int, Entry]]:
        """The other side's entries in priority order, down to the limit price."""
        levels = self.asks if buy else self.bids
        for key in sorted(levels):
            price = key if buy else -key
            if (price > limit) if buy else (price < limit):
                return
            for entry in levels[key]:
                yield price, entry

    # -- market data ------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        key = _top(self.bid_keys, self.bids)
        if key is None:
            return None
        return Level(-key, sum(e[REMAINING] for e in self.bids[key]))

    def best_ask(self) -> Level | None:
        key = _top(self.ask_keys, self.asks)
        if key is None:
            return None
        return Level(key, sum(e[REMAINING] for e in self.asks[key]))

    def depth(self, limit: int) -> tuple[list[Level], list[Level]]:
        """Up to ``limit`` levels per side, best first: ``(bids, asks)``."""
        return self._levels(self.bids, -1, limit), self._levels(self.asks, 1, limit)

    @staticmethod
    def _levels(levels: dict[int, deque[Entry]], sign: int, limit: int) -> list[Level]:
        out: list[Level] = []
        for key in sorted(levels):
            if len(out) >= limit:
                break
            level = levels[key]
            if level:
                out.append(Level(key * sign, sum(e[REMAINING] for e in level)))
        return out

    def entries(self) -> Iterator[Entry]:
        """Every resting entry, bids then asks, each side in priority order."""
        for levels in (self.bids, self.asks):
            for key in sorted(levels):
                yield from levels[key]

    # -- average price ----------------------------------------------------------------

    def record(self, now: int, quote: int, quantity: int) -> None:
        """Add a taker's trades to the average-price window."""
        minute = now // 60_000
        window = self._window
        if window and window[-1][0] == minute:
            bucket = window[-1]
            bucket[1] += quote
            bucket[2] += quantity
        else:
            window.append([minute, quote, quantity])
            if len(window) > WINDOW_MINUTES:
                window.popleft()

    def traded(self, now: int, minutes: int) -> tuple[int, int]:
        """``(quote, quantity)`` traded in the last ``minutes`` minutes up to ``now``."""
        since = now // 60_000 - minutes
        quote = quantity = 0
        for minute, q, n in self._window:
            if minute > since:
                quote += q
                quantity += n
        return quote, quantity


def _top(keys: list[int], levels: dict[int, deque[Entry]]) -> int | None:
    """The best key of a side, dropping levels that cancels emptied."""
    while keys:
        key = keys[0]
        if levels[key]:
            return key
        heappop(keys)
        del levels[key]
    return None

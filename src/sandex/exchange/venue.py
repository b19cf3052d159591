"""The spot venue: the matching engine and the ledger in one sequenced step.

    venue = Venue(default_symbols())
    venue.ledger.credit(7, "USDT", 10_000 * 10**8)
    placed = venue.place(PlaceOrder.limit("BTCUSDT", 7, Side.BUY, 100, 6_000_000), now,
                         key_id=3)
    placed.order  # the OrderRecord: status, executed quantity, fills

Every order's funds are held in the ledger before it reaches the book, in the same
step, so nothing can slip between the balance check and the lock; its trades settle
from the holds with maker/taker fees, and what an order still holds is released when
it ends. The venue keeps a record per order (Binance's order fields) and a list of
what changed since storage last asked (:meth:`Venue.drain`), so a journal can persist
exactly what was acknowledged.

Order lists (:mod:`sandex.exchange.order_lists`) are a layer over the same step: the
venue places their orders, notes which list an order's trade, trigger or end touched,
and reacts once the engine's events are applied (expire an OCO's other order, place an
OTO's pending order once the working one fills), so the book itself knows nothing of
lists.

Pure: no I/O, no clock (``now`` comes with every call).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Final, NamedTuple

from sandex.exchange.engine import Engine
from sandex.exchange.errors import InvalidMarket, LedgerError
from sandex.exchange.events import (
    Accepted,
    Canceled,
    Event,
    Expired,
    Rejected,
    ReplaceFailed,
    SelfTradePrevented,
    Trade,
    Triggered,
)
from sandex.exchange.ledger import FEES, FUNDING, Entry, Ledger, fee_units
from sandex.exchange.market import BookSnapshot, OpenOrder, PendingStop
from sandex.exchange.money import ASSET_DECIMALS
from sandex.exchange.order_lists import (
    DUPLICATE_ORDER_LIST,
    UNKNOWN_ORDER_LIST,
    ContingencyType,
    NewOco,
    NewOto,
    NewOtoco,
    OrderList,
    check_oco,
    check_oto,
    check_otoco,
    generated_list_cid,
)
from sandex.exchange.orders import (
    LIMIT_TYPES,
    STOP_TYPES,
    CancelAll,
    CancelOrder,
    CancelReplace,
    OrderStatus,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from sandex.exchange.rejections import DUPLICATE_ORDER, INVALID_SYMBOL, WOULD_TAKE
from sandex.exchange.symbols import Symbol, symbols_by_name
from sandex.exchange.units import AssetUnits, PriceUnits, QuantityUnits, QuoteUnits

if TYPE_CHECKING:  # account_events imports this module's records
    from sandex.exchange.account_events import BalanceDelta, OrderUpdate

__all__ = [
    "INSUFFICIENT_BALANCE",
    "MAKER",
    "TAKER",
    "SYSTEM_ACCOUNTS",
    "STOP_MARKET_BUY_MARGIN",
    "Fill",
    "Hold",
    "OrderRecord",
    "TradeRecord",
    "PreventedMatch",
    "Changes",
    "Result",
    "Venue",
]

INSUFFICIENT_BALANCE: Final = Rejected(
    -2010, "Account has insufficient balance for requested action."
)
MAKER: Final = -10
"""The simulated market makers' account."""
TAKER: Final = -11
"""The simulated takers' account (the flow that makes the makers' quotes trade)."""
SYSTEM_ACCOUNTS: Final = frozenset({MAKER, TAKER})
"""Accounts whose orders are not kept after a restart and pay no fees."""
STOP_MARKET_BUY_MARGIN: Final = Decimal("0.05")
"""A stop-market buy by quantity holds ``quantity * stopPrice`` and this much more, and
never spends more than it holds: if the market gaps further it fills what that buys."""
_OPEN: Final = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
_STOP_LOSS: Final = frozenset({OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT})
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_NO_PRICE: Final = PriceUnits(0)
_NO_QUANTITY: Final = QuantityUnits(0)
_NO_QUOTE: Final = QuoteUnits(0)
_NO_ASSET: Final = AssetUnits(0)


class Hold(NamedTuple):
    """What an order locks while it is open."""

    asset: str
    amount: AssetUnits
    budget: QuoteUnits | None
    """Most a MARKET buy may spend, passed to the engine; None: no cap."""


class Fill(NamedTuple):
    """One trade of an order, as Binance's ``fills`` show it."""

    trade_id: int
    price: PriceUnits
    quantity: QuantityUnits
    commission: AssetUnits
    commission_asset: str
    maker: bool


@dataclass(slots=True)
class OrderRecord:
    """An order as Binance reports it; ``held`` is of ``hold_asset``."""

    symbol: str
    order_id: int
    account: int
    key_id: int | None
    client_order_id: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce | None
    price: PriceUnits
    quantity: QuantityUnits | None
    quote_quantity: QuoteUnits | None
    stop_price: PriceUnits | None
    stp_mode: SelfTradePrevention
    time: int
    update_time: int
    status: OrderStatus = OrderStatus.NEW
    executed: QuantityUnits = _NO_QUANTITY
    cumulative_quote: QuoteUnits = _NO_QUOTE
    working: bool = True
    working_time: int | None = None
    hold_asset: str = ""
    held: AssetUnits = _NO_ASSET
    budget: QuoteUnits | None = None
    fills: list[Fill] = field(default_factory=list)
    """The order's fills as a taker (Binance's ``fills`` of a new order's response)."""
    order_list_id: int | None = None
    """The order list (OCO, OTO) the order belongs to, if any."""
    pending: bool = False
    """An OTO's pending order, not placed until its working order fills (Binance's
    ``PENDING_NEW``): in no book, holding nothing."""
    prevented_match_id: int | None = None
    """The prevented match that expired the order (Binance's ``preventedMatchId``)."""
    prevented_quantity: QuantityUnits = _NO_QUANTITY
    """What self-trade prevention expired of it (Binance's ``preventedQuantity``)."""

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN

    @property
    def key(self) -> tuple[str, int]:
        return (self.symbol, self.order_id)


class TradeRecord(NamedTuple):
    """A trade with both sides, for ``myTrades``."""

    symbol: str
    trade_id: int
    price: PriceUnits
    quantity: QuantityUnits
    quote: QuoteUnits
    time: int
    buyer: int
    seller: int
    buy_order_id: int
    sell_order_id: int
    buyer_is_maker: bool
    buyer_fee: AssetUnits
    seller_fee: AssetUnits


class PreventedMatch(NamedTuple):
    """A match self-trade prevention stopped, for ``myPreventedMatches``: both orders
    are ``account``'s."""

    symbol: str
    prevented_match_id: int
    taker_order_id: int
    maker_order_id: int
    account: int
    price: PriceUnits
    taker_prevented: QuantityUnits
    maker_prevented: QuantityUnits
    mode: SelfTradePrevention
    time: int


@dataclass(slots=True)
class Changes:
    """What changed since the last :meth:`Venue.drain`, for storage to persist."""

    orders: dict[tuple[str, int], OrderRecord] = field(default_factory=dict)
    trades: list[TradeRecord] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    balances: set[tuple[int, str]] = field(default_factory=set)
    symbols: set[str] = field(default_factory=set)
    order_lists: dict[int, OrderList] = field(default_factory=dict)
    prevented: list[PreventedMatch] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.orders
            or self.trades
            or self.prevented
            or self.entries
            or self.balances
            or self.symbols
            or self.order_lists
        )


@dataclass(slots=True)
class Result:
    """What one command did: the engine's events, and the records of the orders it
    placed or canceled (``orders``), in the order they happened."""

    events: list[Event]
    orders: list[OrderRecord]

    @property
    def rejected(self) -> Rejected | None:
        first = self.events[0] if self.events else None
        return first if isinstance(first, Rejected) else None

    @property
    def replace_failed(self) -> ReplaceFailed | None:
        last = self.events[-1] if self.events else None
        return last if isinstance(last, ReplaceFailed) else None


class Venue:
    """Engine + ledger + order records for a set of symbols (the single writer)."""

    def __init__(
        self,
        symbols: Iterable[Symbol],
        *,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
    ) -> None:
        self.symbols = symbols_by_name(symbols)
        for s in self.symbols.values():
            if s.quote_scale > ASSET_DECIMALS or s.quantity_scale > ASSET_DECIMALS:
                raise InvalidMarket(
                    f"{s.name}: price * quantity needs {s.quote_scale} decimals;"
                    f" balances keep {ASSET_DECIMALS}"
                )
        if maker_fee < 0 or taker_fee < 0 or maker_fee >= 1 or taker_fee >= 1:
            raise InvalidMarket("fees are rates between 0 and 1 (0.001 is 0.1 %)")
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.engine = Engine(self.symbols.values())
        self.ledger = Ledger()
        self.orders: dict[tuple[str, int], OrderRecord] = {}
        """Open orders, and closed ones until storage has taken them (see drain)."""
        self._cids: dict[tuple[int, str, str], int] = {}
        self._key_open: dict[int, int] = {}
        self._changes = Changes()
        self.order_lists: dict[int, OrderList] = {}
        """Open order lists, and done ones until storage has taken them (see drain)."""
        self._list_cids: dict[tuple[int, str], int] = {}
        self._next_list_id = 1
        self._lists_touched: set[int] = set()
        """Lists one of whose orders traded, triggered or ended in the current step."""
        self._trade_listeners: list[Callable[[str, Trade], None]] = []
        self._order_listeners: list[Callable[[OrderUpdate], None]] = []
        self._credit_listeners: list[Callable[[BalanceDelta], None]] = []
        self.watched: Container[int] | None = None
        """The accounts whose executions and credits the listeners hear of (None: every
        user's): account events cost their copies only for accounts someone follows."""
        self._held_updates: list[OrderUpdate] | None = None
        """Order updates held back while an order list is placed (see _hold_updates)."""
        self._next_prevented: dict[str, int] = {}
        """Per symbol, the next ``preventedMatchId`` (from 1)."""

    # -- listeners ---------------------------------------------------------------------

    def on_trade(self, listener: Callable[[str, Trade], None]) -> None:
        """Call ``listener(symbol, trade)`` for every trade (market data, klines)."""
        self._trade_listeners.append(listener)

    def on_order_update(self, listener: Callable[[OrderUpdate], None]) -> None:
        """Call ``listener(update)`` for every execution of a user's order (account > 0),
        as it happens: accepted (NEW; a stop again when it triggers; an OTO's pending
        order when it is placed), each fill of either side (TRADE), canceled, expired
        (EXPIRED; TRADE_PREVENTION for self-trade prevention). The update holds a copy
        of the order as it stands right after the execution. Without a listener no copy
        is made."""
        self._order_listeners.append(listener)

    def on_credit(self, listener: Callable[[BalanceDelta], None]) -> None:
        """Call ``listener(delta)`` for every :meth:`credit` of a user's account."""
        self._credit_listeners.append(listener)

    # -- commands --------------------------------------------------------------------

    def credit(
        self, account: int, asset: str, amount: int, *, ref: str = "", now: int = 0
    ) -> Entry:
        """Fund ``account`` with ``amount`` (1e-8 units) of ``asset`` from FUNDING (its
        credit listeners hear of it at ``now``; 0: the time of the batch it goes in)."""
        entry = self.ledger.credit(account, asset, AssetUnits(amount), ref=ref)
        self._changes.balances.update(((account, asset), (FUNDING, asset)))
        if account > 0:
            self._changes.entries.append(entry)
            if self._credit_listeners and (self.watched is None or account in self.watched):
                from sandex.exchange.account_events import BalanceDelta

                delta = BalanceDelta(account, asset, amount, now)
                for listener in self._credit_listeners:
                    listener(delta)
        return entry

    def place(self, order: PlaceOrder, now: int, *, key_id: int | None = None) -> Result:
        """Hold the order's funds, then match it. Refused without a change when the
        order fails a check or the account lacks the funds (-2010)."""
        return self._hold_and_submit(order, order, now, key_id, None)

    def cancel(self, cancel: CancelOrder, now: int) -> Result:
        if self.order_lists:  # an OTO's pending order is in no book: canceled here
            found = self._find(cancel)
            if found is not None and found.pending:
                return self._cancel_pending(found, now)
        return self._apply(cancel.symbol, self.engine.submit(cancel, now), now, None)

    def cancel_all(self, cancel: CancelAll, now: int) -> Result:
        result = self._apply(cancel.symbol, self.engine.submit(cancel, now), now, None)
        if self.order_lists:  # pending orders of lists (in no book) went with them
            seen = {o.key for o in result.orders}
            for record in list(result.orders):
                order_list = self.order_lists.get(record.order_list_id or 0)
                for leg in self.list_orders(order_list) if order_list else ():
                    if leg.key not in seen and leg.status is OrderStatus.CANCELED:
                        seen.add(leg.key)
                        result.orders.append(leg)
        return result

    def cancel_replace(
        self, replace: CancelReplace, now: int, *, key_id: int | None = None
    ) -> Result:
        """Cancel, then place, as Binance's cancelReplace. The new order's funds are
        counted as if the cancel has freed what the old order holds; when even that is
        short, nothing happens (-2010)."""
        old = self._find(replace.cancel)
        if old is not None and not old.is_open:
            old = None
        return self._hold_and_submit(replace, replace.order, now, key_id, old)

    def _hold_and_submit(
        self,
        command: PlaceOrder | CancelReplace,
        order: PlaceOrder,
        now: int,
        key_id: int | None,
        old: OrderRecord | None,
    ) -> Result:
        """Check ``order``, size and check its hold (counting what canceling ``old``
        frees), submit ``command`` with the engine budget, apply what happened."""
        symbol = self.symbols.get(order.symbol)
        if symbol is None:
            return Result([INVALID_SYMBOL], [])
        refused = self.engine.check(order, now)
        if refused is not None:
            return Result([refused], [])
        hold = self._hold_for(symbol, order, old=old)
        if isinstance(hold, Rejected):
            return Result([hold], [])
        events = self.engine.submit(command, now, hold.budget)
        return self._apply(order.symbol, events, now, key_id, order, hold)

    def place_oco(self, oco: NewOco, now: int, *, key_id: int | None = None) -> Result:
        """Place an OCO's two orders (the stop-loss first, as Binance numbers them),
        holding their funds once: the order that can trade first (the LIMIT_MAKER, else
        the above order) holds what the larger of the two needs, and gives it to the
        other if that one triggers. Refused without a change when a rule, a check or
        the balance fails. ``Result.orders`` are the two records, in that order."""
        hold = self._hold_updates()
        placed: Result | None = None
        try:
            placed = self._place_oco(oco, now, key_id)
            return placed
        finally:
            self._release_updates(hold, drop=placed is None or placed.rejected is not None)

    def _place_oco(self, oco: NewOco, now: int, key_id: int | None) -> Result:
        above = oco.above
        symbol = self.symbols.get(above.symbol)
        if symbol is None:
            return Result([INVALID_SYMBOL], [])
        list_cid = oco.list_client_order_id
        refused = self._list_ids_in_use(above.account, symbol.name, (above, oco.below), list_cid)
        if refused is not None:
            return Result([refused], [])
        placed = self._submit_pair(symbol, oco, now, key_id)
        if placed.rejected is not None:
            return placed
        records = placed.orders
        list_id = self._next_list_id
        self._next_list_id = list_id + 1
        order_list = OrderList(
            list_id,
            ContingencyType.OCO,
            symbol.name,
            above.account,
            list_cid or generated_list_cid(list_id),
            now,
            tuple(r.order_id for r in records),
        )
        for record in records:
            record.order_list_id = list_id
            self._mark(record, self._changes)
        self._add_list(order_list)
        self._changes.order_lists[list_id] = order_list
        return placed

    def _submit_pair(
        self,
        symbol: Symbol,
        oco: NewOco,
        now: int,
        key_id: int | None,
        ids: tuple[int, int] | None = None,
    ) -> Result:
        """Check and place an OCO's two orders with one hold (stop-loss first; under
        ``ids`` when given: an OTOCO's pending pair); nothing changes on a refusal."""
        above, below = oco.above, oco.below
        refused = check_oco(oco, self.engine.last_price(symbol.name))
        for leg in (above, below):
            refused = refused or self.engine.check(leg, now) or self._would_take(leg)
        if refused is not None:
            return Result([refused], [])
        above_hold = self._hold_for(symbol, above)
        if isinstance(above_hold, Rejected):
            return Result([above_hold], [])
        below_hold = self._hold_for(symbol, below)
        if isinstance(below_hold, Rejected):
            return Result([below_hold], [])
        asset, amount = above_hold.asset, max(above_hold.amount, below_hold.amount)
        holder = below if below.type is OrderType.LIMIT_MAKER else above
        stop, other = (above, below) if above.type in _STOP_LOSS else (below, above)
        events: list[Event] = []
        records: list[OrderRecord] = []
        market = self.engine._market(symbol.name)
        for index, leg in enumerate((stop, other)):
            budget = above_hold.budget if leg is above else below_hold.budget
            hold = Hold(asset, amount if leg is holder else _NO_ASSET, budget)
            saved = market.next_order_id
            if ids is not None:
                market.next_order_id = ids[index]
            try:
                placed = self.engine.submit(leg, now, budget)
            finally:
                market.next_order_id = max(saved, market.next_order_id)
            events.extend(placed)
            result = self._apply(symbol.name, placed, now, key_id, leg, hold)
            if result.rejected is not None:
                for record in records:  # undo the first order: it never was
                    self._apply(
                        symbol.name,
                        self.engine.submit(
                            CancelOrder(symbol.name, record.account, record.order_id), now
                        ),
                        now,
                        None,
                    )
                    self._forget(record)
                return Result([result.rejected], [])
            records.append(result.orders[0])
        return Result(events, records)

    def place_oto(self, oto: NewOto, now: int, *, key_id: int | None = None) -> Result:
        """Place an OTO's working order; its pending order gets the next order id and
        waits, holding nothing, until the working order is fully filled (then it is
        placed as a new order would be, its funds held then). ``Result.orders``: the
        working and the pending order's records."""
        return self._place_working(
            oto.working, (oto.pending,), oto.list_client_order_id, check_oto(oto), now, key_id
        )

    def place_otoco(self, otoco: NewOtoco, now: int, *, key_id: int | None = None) -> Result:
        """Place an OTOCO's working order; its pending OCO pair (stop-loss first) gets
        the next two order ids and waits until the working order is fully filled, then
        is placed as an OCO would be. ``Result.orders``: the three records."""
        above, below = otoco.above, otoco.below
        pair = (above, below) if above.type in _STOP_LOSS else (below, above)
        return self._place_working(
            otoco.working,
            pair,
            otoco.list_client_order_id,
            check_otoco(otoco),
            now,
            key_id,
        )

    def _place_working(
        self,
        working: PlaceOrder,
        pendings: tuple[PlaceOrder, ...],
        list_cid: str | None,
        refused: Rejected | None,
        now: int,
        key_id: int | None,
    ) -> Result:
        hold = self._hold_updates()
        placed: Result | None = None
        try:
            placed = self._place_working_list(working, pendings, list_cid, refused, now, key_id)
            return placed
        finally:
            self._release_updates(hold, drop=placed is None or placed.rejected is not None)

    def _place_working_list(
        self,
        working: PlaceOrder,
        pendings: tuple[PlaceOrder, ...],
        list_cid: str | None,
        refused: Rejected | None,
        now: int,
        key_id: int | None,
    ) -> Result:
        symbol = self.symbols.get(working.symbol)
        if symbol is None or any(p.symbol != working.symbol for p in pendings):
            return Result([INVALID_SYMBOL], [])
        refused = refused or self.engine.check(working, now)
        for pending in pendings:
            refused = refused or self.engine.check(pending, now)
        refused = refused or self._list_ids_in_use(
            working.account, symbol.name, (working, *pendings), list_cid
        )
        if refused is not None:
            return Result([refused], [])
        hold = self._hold_for(symbol, working)
        if isinstance(hold, Rejected):
            return Result([hold], [])
        events = self.engine.submit(working, now, hold.budget)
        result = self._apply(symbol.name, events, now, key_id, working, hold)
        if result.rejected is not None:
            return Result([result.rejected], [])
        record = result.orders[0]
        market = self.engine._market(symbol.name)
        first_id = market.next_order_id  # kept for the pending orders
        market.next_order_id = first_id + len(pendings)
        list_id = self._next_list_id
        self._next_list_id = list_id + 1
        waiting = [
            self._waiting(symbol, pending, first_id + n, key_id, list_id, market.default_stp, now)
            for n, pending in enumerate(pendings)
        ]
        record.order_list_id = list_id
        self._mark(record, self._changes)
        order_list = OrderList(
            list_id,
            ContingencyType.OTO,
            symbol.name,
            working.account,
            list_cid or generated_list_cid(list_id),
            now,
            (record.order_id, *(w.order_id for w in waiting)),
        )
        self._add_list(order_list)
        self._changes.order_lists[list_id] = order_list
        self._changes.symbols.add(symbol.name)
        self._lists_touched.add(list_id)  # the working order may have filled at once
        self._react(now)
        return Result(events, [record, *waiting])

    def _waiting(
        self,
        symbol: Symbol,
        pending: PlaceOrder,
        pending_id: int,
        key_id: int | None,
        list_id: int,
        default_stp: SelfTradePrevention,
        now: int,
    ) -> OrderRecord:
        """The record of a pending order, kept in memory and storage until placed."""
        waiting = OrderRecord(
            symbol=symbol.name,
            order_id=pending_id,
            account=pending.account,
            key_id=key_id,
            client_order_id=pending.client_order_id or _generated_cid(symbol.name, pending_id),
            side=pending.side,
            type=pending.type,
            time_in_force=pending.time_in_force,
            price=pending.price or _NO_PRICE,
            quantity=pending.quantity,
            quote_quantity=None,
            stop_price=pending.stop_price,
            stp_mode=pending.stp_mode or default_stp,
            time=now,
            update_time=now,
            working=False,
            order_list_id=list_id,
            pending=True,
        )
        self.orders[waiting.key] = waiting
        self._cids[(waiting.account, symbol.name, waiting.client_order_id)] = pending_id
        self._key_opened(key_id)  # open for the key's max-open-orders from now on
        self._mark(waiting, self._changes)
        return waiting

    def cancel_order_list(
        self, symbol: str, account: int, list_id: int | None, list_cid: str | None, now: int
    ) -> tuple[OrderList | None, Result]:
        """Cancel every open order of an open list (by id, or by its client id; both:
        they must agree). Unknown or done lists: -2011."""
        found = self.order_list(account, list_id, list_cid)
        if found is None or found.symbol != symbol or not self._list_open(found):
            return None, Result([UNKNOWN_ORDER_LIST], [])
        events: list[Event] = []
        records: list[OrderRecord] = []
        for order_id in found.order_ids:
            record = self.orders.get((symbol, order_id))
            if record is None or not record.is_open:
                continue
            if record.pending:
                events.extend(self._cancel_pending(record, now).events)
                continue
            canceled = self.engine.submit(CancelOrder(symbol, account, order_id), now)
            events.extend(canceled)
            self._apply(symbol, canceled, now, None)
        for order_id in found.order_ids:
            record = self.orders.get((symbol, order_id))
            if record is not None:
                records.append(record)
        return found, Result(events, records)

    # -- reading ---------------------------------------------------------------------

    def order_list(
        self, account: int, list_id: int | None, list_cid: str | None
    ) -> OrderList | None:
        """An order list in memory (open, or done since the last drain)."""
        if list_id is None:
            list_id = self._list_cids.get((account, list_cid)) if list_cid else None
        found = None if list_id is None else self.order_lists.get(list_id)
        if found is None or found.account != account:
            return None
        if list_cid is not None and found.list_client_order_id != list_cid:
            return None
        return found

    def open_order_lists(self, account: int) -> list[OrderList]:
        return [
            ol
            for _, ol in sorted(self.order_lists.items())
            if ol.account == account and self._list_open(ol)
        ]

    def list_orders(self, order_list: OrderList) -> list[OrderRecord]:
        """The list's orders still in memory (all of them while it is open)."""
        found = (self.orders.get((order_list.symbol, oid)) for oid in order_list.order_ids)
        return [o for o in found if o is not None]

    def order(self, symbol: str, account: int, order_id: int) -> OrderRecord | None:
        found = self.orders.get((symbol, order_id))
        return found if found is not None and found.account == account else None

    def order_by_client_id(self, symbol: str, account: int, cid: str) -> OrderRecord | None:
        oid = self._cids.get((account, symbol, cid))
        return None if oid is None else self.order(symbol, account, oid)

    def open_orders(self, account: int, symbol: str | None = None) -> list[OrderRecord]:
        return sorted(
            (
                o
                for o in self.orders.values()
                if o.account == account and o.is_open and (symbol is None or o.symbol == symbol)
            ),
            key=lambda o: (o.symbol, o.order_id),
        )

    def open_orders_of_key(self, key_id: int) -> int:
        return self._key_open.get(key_id, 0)

    def notional(self, order: PlaceOrder) -> Decimal | None:
        """The order's value in the quote asset (for a key's max-notional cap): price or
        stop price times quantity, or the quote amount; for a MARKET order by quantity,
        at the best opposite price (or the last price). None when it cannot be priced."""
        symbol = self.symbols[order.symbol]
        if order.quote_quantity is not None:
            return Decimal(order.quote_quantity).scaleb(-symbol.quote_scale)
        if order.quantity is None:
            return None
        price: int | None = order.price if order.type in LIMIT_TYPES else order.stop_price
        if price is None:
            level = (
                self.engine.best_ask(order.symbol)
                if order.side is _BUY
                else self.engine.best_bid(order.symbol)
            )
            price = level.price if level is not None else self.engine.last_price(order.symbol)
        if price is None:
            return None
        return Decimal(price * order.quantity).scaleb(-symbol.quote_scale)

    # -- storage ---------------------------------------------------------------------

    def drain(self) -> Changes:
        """What changed since the last call; closed orders leave memory here."""
        changes, self._changes = self._changes, Changes()
        for key, order in changes.orders.items():
            if not order.is_open:
                self.orders.pop(key, None)
                self._cids.pop((order.account, order.symbol, order.client_order_id), None)
        for list_id, order_list in changes.order_lists.items():
            if not self._list_open(order_list):
                self.order_lists.pop(list_id, None)
                cid_key = (order_list.account, order_list.list_client_order_id)
                if self._list_cids.get(cid_key) == list_id:
                    del self._list_cids[cid_key]
        return changes

    def pending(self) -> bool:
        return bool(self._changes)

    def restore(
        self,
        *,
        balances: Iterable[tuple[int, str, int, int]],
        orders: Iterable[OrderRecord],
        books: Iterable[tuple[str, int, int, int | None]],
        order_lists: Iterable[OrderList] = (),
        next_list_id: int = 1,
        next_prevented: Iterable[tuple[str, int]] = (),
    ) -> None:
        """Rebuild from storage: balances, open orders (with what they hold), per
        symbol ``(name, next order id, next trade id, last price)``, and the open order
        lists. Orders of the system accounts are not stored, so what they had locked is
        freed."""
        open_orders = [o for o in orders if o.is_open]
        self._next_list_id = next_list_id
        self._next_prevented = dict(next_prevented)
        by_key = {o.key: o for o in open_orders}
        for order_list in order_lists:
            self._add_list(order_list)
            if order_list.contingency_type is ContingencyType.OTO:
                working, *waiting = ((order_list.symbol, i) for i in order_list.order_ids)
                for key in waiting:
                    if working in by_key and key in by_key:  # not placed yet
                        by_key[key].pending = True
        stored = list(balances)
        unlocked: list[tuple[int, str, AssetUnits, AssetUnits]] = []
        for account, asset, free, locked in stored:
            if account in SYSTEM_ACCOUNTS:
                free, locked = free + locked, 0
            unlocked.append((account, asset, AssetUnits(free), AssetUnits(locked)))
        self.ledger.restore(
            unlocked,
            ((o.key, o.account, o.hold_asset, o.held) for o in open_orders if o.held),
        )
        by_hold = self.ledger.locked_by_holds()
        for account, asset, _free, locked in unlocked:
            if locked != by_hold.get((account, asset), 0):
                raise LedgerError(
                    f"account {account} {asset}: locked {locked} but its open orders hold"
                    f" {by_hold.get((account, asset), 0)}"
                )
        per_symbol: dict[str, list[OrderRecord]] = {}
        for o in open_orders:
            per_symbol.setdefault(o.symbol, []).append(o)
            self.orders[o.key] = o
            self._cids[(o.account, o.symbol, o.client_order_id)] = o.order_id
            if o.key_id is not None:
                self._key_open[o.key_id] = self._key_open.get(o.key_id, 0) + 1
        for name, next_order_id, next_trade_id, last in books:
            if name not in self.symbols:
                continue
            last_price = None if last is None else PriceUnits(last)
            mine = sorted(per_symbol.get(name, []), key=lambda o: o.order_id)
            resting = [
                OpenOrder(
                    o.order_id,
                    o.account,
                    o.side,
                    o.price,
                    o.quantity or _NO_QUANTITY,
                    QuantityUnits((o.quantity or 0) - o.executed),
                    o.client_order_id,
                )
                for o in mine
                if o.working and not o.pending
            ]
            stops = [
                PendingStop(o.order_id, _command(o), o.stp_mode, o.budget)
                for o in mine
                if not o.working and not o.pending
            ]
            self.engine.restore(
                BookSnapshot(name, next_order_id, next_trade_id, last_price, resting, stops)
            )

    def book_state(self, symbol: str) -> tuple[int, int, int | None]:
        """``(next order id, next trade id, last price)`` of a symbol, for storage."""
        return self.engine.sequence(symbol)

    # -- internals -------------------------------------------------------------------

    def _add_list(self, order_list: OrderList) -> None:
        self.order_lists[order_list.list_id] = order_list
        self._list_cids[(order_list.account, order_list.list_client_order_id)] = order_list.list_id
        self._next_list_id = max(self._next_list_id, order_list.list_id + 1)

    def _list_open(self, order_list: OrderList) -> bool:
        orders = self.orders
        for oid in order_list.order_ids:
            found = orders.get((order_list.symbol, oid))
            if found is not None and found.is_open:
                return True
        return False

    def _list_ids_in_use(
        self, account: int, symbol: str, orders: Iterable[PlaceOrder], list_cid: str | None
    ) -> Rejected | None:
        """-2010 when the orders' client ids repeat or are in use, or the list's client
        id is an open list's."""
        cids = [o.client_order_id for o in orders if o.client_order_id]
        if len(set(cids)) < len(cids) or any(
            self.order_by_client_id(symbol, account, c) for c in cids
        ):
            return DUPLICATE_ORDER
        in_use = self.order_list(account, None, list_cid) if list_cid else None
        if in_use is not None and self._list_open(in_use):
            return DUPLICATE_ORDER_LIST
        return None

    def _cancel_pending(self, record: OrderRecord, now: int) -> Result:
        """Cancel an OTO's pending order (in no book); its list reacts."""
        self._close_pending(record, OrderStatus.CANCELED, now)
        assert record.order_list_id is not None
        self._lists_touched.add(record.order_list_id)
        self._react(now)
        return Result(
            [Canceled(record.order_id, record.account, record.quantity or _NO_QUANTITY, now)],
            [record],
        )

    def _close_pending(
        self, record: OrderRecord, status: OrderStatus, now: int, reason: str | None = None
    ) -> None:
        record.status = status
        record.update_time = now
        self._close(record, self._changes)
        record.pending = False
        if self._order_listeners:
            canceled = status is OrderStatus.CANCELED
            self._notify("CANCELED" if canceled else "EXPIRED", record, now, reason=reason)

    def _place_pending(self, record: OrderRecord, now: int) -> None:
        """The working order of an OTO filled: place its pending order, under the id it
        was given, as a new order (its funds held now; short of them, it expires)."""
        hold = self._hold_updates()  # its updates name its list once it is placed
        try:
            self._place_pending_order(record, now)
        finally:
            self._release_updates(hold)

    def _place_pending_order(self, record: OrderRecord, now: int) -> None:
        symbol = self.symbols[record.symbol]
        command = _command(record)
        hold = self._hold_for(symbol, command)
        refused = hold if isinstance(hold, Rejected) else self.engine.check(command, now)
        if refused is not None or isinstance(hold, Rejected):
            self._close_pending(record, OrderStatus.EXPIRED, now, "REJECTED")
            return
        market = self.engine._market(symbol.name)
        saved = market.next_order_id
        market.next_order_id = record.order_id
        del self.orders[record.key]  # the engine's acceptance makes its record anew
        try:
            events = self.engine.submit(command, now, hold[2])
        finally:
            market.next_order_id = max(saved, market.next_order_id)
        if record.key_id is not None:  # counted again as the placed order
            self._key_closed(record.key_id)
        result = self._apply(symbol.name, events, now, record.key_id, command, hold)
        if result.rejected is not None:
            self.orders[record.key] = record
            self._key_opened(record.key_id)
            self._close_pending(record, OrderStatus.EXPIRED, now, "REJECTED")
            return
        record.pending = False
        placed = result.orders[0]
        placed.order_list_id = record.order_list_id
        placed.time = record.time
        self._mark(placed, self._changes)

    def _react_oto(self, order_list: OrderList, now: int) -> None:
        """OTO: the working order filled: place the pending one; the working order
        ended otherwise: the pending one goes too; the pending one was canceled while
        waiting: so is the working order."""
        symbol = order_list.symbol
        orders = self.orders
        working = orders.get((symbol, order_list.order_ids[0]))
        pendings = [orders.get((symbol, i)) for i in order_list.order_ids[1:]]
        waiting = [w for w in pendings if w is not None and w.pending]
        canceled = any(
            w is not None and w.status is OrderStatus.CANCELED and not w.executed for w in pendings
        )
        if waiting and working is not None and working.status is OrderStatus.FILLED:
            if len(waiting) == 1:
                self._place_pending(waiting[0], now)
            else:
                self._place_pending_pair(waiting[0], waiting[1], now)
            return
        if waiting and (working is None or not working.is_open or canceled):
            cancel = canceled or (working is not None and working.status is OrderStatus.CANCELED)
            for w in waiting:
                if cancel:
                    self._close_pending(w, OrderStatus.CANCELED, now)
                else:
                    self._close_pending(w, OrderStatus.EXPIRED, now, "OTO_PHASE_ONE_EXPIRED")
        if canceled and working is not None and working.is_open:
            self._apply(
                symbol,
                self.engine.submit(CancelOrder(symbol, working.account, working.order_id), now),
                now,
                None,
            )
            return
        placed = [w for w in pendings if w is not None and not w.pending]
        if len(pendings) == 2 and placed and not waiting:
            self._react_pair(order_list, placed, now)

    def _place_pending_pair(self, stop: OrderRecord, other: OrderRecord, now: int) -> None:
        """The working order of an OTOCO filled: place its pending pair as an OCO under
        the ids they were given (refused, as by the market having moved past a price:
        both expire)."""
        symbol = self.symbols[stop.symbol]
        first, second = _command(stop), _command(other)
        sell = first.side is _SELL
        above, below = (second, first) if sell else (first, second)
        for record in (stop, other):  # counted again as the placed orders
            if record.key_id is not None:
                self._key_closed(record.key_id)
        hold = self._hold_updates()  # their updates name their list once placed
        try:
            placed = self._submit_pair(
                symbol, NewOco(above, below), now, stop.key_id, (stop.order_id, other.order_id)
            )
            if placed.rejected is not None:
                self._drop_updates(hold)  # the first order, placed then undone: never was
                for record in (stop, other):
                    self.orders[record.key] = record
                    self._key_opened(record.key_id)
                    self._close_pending(record, OrderStatus.EXPIRED, now, "REJECTED")
                return
            for record, new in zip((stop, other), placed.orders, strict=True):
                record.pending = False
                new.order_list_id = record.order_list_id
                new.time = record.time
                self._mark(new, self._changes)
        finally:
            self._release_updates(hold)

    def _would_take(self, order: PlaceOrder) -> Rejected | None:
        """A LIMIT_MAKER that would cross (checked before either order of a list is
        placed, so that the second cannot fail after the first was)."""
        if order.type is not OrderType.LIMIT_MAKER or order.price is None:
            return None
        if order.side is _BUY:
            ask = self.engine.best_ask(order.symbol)
            return WOULD_TAKE if ask is not None and ask.price <= order.price else None
        bid = self.engine.best_bid(order.symbol)
        return WOULD_TAKE if bid is not None and bid.price >= order.price else None

    def _forget(self, record: OrderRecord) -> None:
        """Drop an order placed as part of a list that was then refused."""
        self.orders.pop(record.key, None)
        self._changes.orders.pop(record.key, None)
        self._cids.pop((record.account, record.symbol, record.client_order_id), None)

    def _leg_triggered(self, leg: OrderRecord) -> None:
        """An order of a list triggered: it takes the list's hold from the order that
        has it (which is then expired by :meth:`_react`)."""
        assert leg.order_list_id is not None
        order_list = self.order_lists.get(leg.order_list_id)
        if order_list is None or leg.held:
            return
        for other in self.list_orders(order_list):
            if other is leg or not other.held or other.executed:
                continue
            leg.held = self.ledger.move_hold(other.key, leg.key)
            leg.hold_asset = other.hold_asset
            other.held = _NO_ASSET
            self._mark(other, self._changes)
            self._mark(leg, self._changes)
            return
        # The other order traded already (both were reached in one step): this one
        # holds from the free balance, as a single order would.
        hold = self._hold_for(self.symbols[leg.symbol], _command(leg))
        if not isinstance(hold, Rejected) and hold[1]:
            entry = self.ledger.hold(leg.key, leg.account, hold[0], hold[1])
            leg.held, leg.hold_asset = hold[1], hold[0]
            self._changes.balances.add((leg.account, hold[0]))
            self._changes.entries.append(entry)

    def _react(self, now: int) -> None:
        """OCO: once one order of a list has traded, triggered or ended, the others
        that have not are expired (canceled, when an order was canceled)."""
        touched, self._lists_touched = self._lists_touched, set()
        for list_id in sorted(touched):
            order_list = self.order_lists.get(list_id)
            if order_list is None:
                continue
            self._changes.order_lists[list_id] = order_list
            if order_list.contingency_type is ContingencyType.OTO:
                self._react_oto(order_list, now)
                continue
            self._react_pair(order_list, self.list_orders(order_list), now)

    def _react_pair(self, order_list: OrderList, legs: list[OrderRecord], now: int) -> None:
        """An OCO pair: once one order traded, triggered or ended, expire (or cancel,
        when one was canceled) the other."""
        if len(legs) == 2 and not any(not leg.is_open or _activated(leg) for leg in legs):
            return
        canceled = any(leg.status is OrderStatus.CANCELED for leg in legs)
        for leg in legs:
            if not leg.is_open or _activated(leg):
                continue
            self._apply(
                order_list.symbol,
                self.engine.submit(CancelOrder(order_list.symbol, leg.account, leg.order_id), now),
                now,
                None,
                cancel_status=OrderStatus.CANCELED if canceled else OrderStatus.EXPIRED,
            )

    def _find(self, cancel: CancelOrder) -> OrderRecord | None:
        if cancel.order_id is not None:
            return self.order(cancel.symbol, cancel.account, cancel.order_id)
        if cancel.client_order_id is not None:
            return self.order_by_client_id(cancel.symbol, cancel.account, cancel.client_order_id)
        return None

    def _hold_for(
        self, symbol: Symbol, order: PlaceOrder, *, old: OrderRecord | None = None
    ) -> Hold | Rejected:
        """What the order must hold, or -2010 when the account's free balance is short."""
        q_shift = 10 ** (ASSET_DECIMALS - symbol.quote_scale)
        b_shift = 10 ** (ASSET_DECIMALS - symbol.quantity_scale)
        budget: QuoteUnits | None = None
        kind = order.type
        if order.side is _BUY:
            asset = symbol.quote_asset
            if kind in LIMIT_TYPES:
                assert order.price is not None and order.quantity is not None
                need = QuoteUnits(order.price * order.quantity)
            elif order.quote_quantity is not None:
                need = order.quote_quantity
            elif kind in STOP_TYPES:
                assert order.stop_price is not None and order.quantity is not None
                need = QuoteUnits(order.stop_price * order.quantity)
            else:  # MARKET by quantity: what the book will take now, exactly
                assert order.quantity is not None
                need = self.engine.market_fill(
                    symbol.name, _BUY, order.quantity, order.account, order.stp_mode
                )[0]
                budget = need
            free = self.ledger.balance(order.account, asset).free + _freed(old, asset)
            if free < need * q_shift:
                return INSUFFICIENT_BALANCE
            if kind in STOP_TYPES and kind not in LIMIT_TYPES and order.quote_quantity is None:
                # a stop-market buy: hold a margin for the move past the stop, spend no more
                margin = need * q_shift * (1 + STOP_MARKET_BUY_MARGIN)
                held = min(free, int(margin)) // q_shift * q_shift
                return Hold(asset, AssetUnits(held), QuoteUnits(held // q_shift))
            return Hold(asset, AssetUnits(need * q_shift), budget)
        asset = symbol.base_asset
        if order.quantity is not None:
            need_base = order.quantity
        else:  # a MARKET sell for a quote amount: the base it will take to raise it
            assert order.quote_quantity is not None
            need_base = self.engine.market_quantity_for_quote(
                symbol.name, _SELL, order.quote_quantity, order.account, order.stp_mode
            )
        free = self.ledger.balance(order.account, asset).free + _freed(old, asset)
        if free < need_base * b_shift:
            return INSUFFICIENT_BALANCE
        return Hold(asset, AssetUnits(need_base * b_shift), None)

    def _apply(
        self,
        symbol: str,
        events: list[Event],
        now: int,
        key_id: int | None,
        placed: PlaceOrder | None = None,
        hold: Hold | None = None,
        *,
        cancel_status: OrderStatus = OrderStatus.CANCELED,
    ) -> Result:
        """Apply the engine's ``events`` to the ledger and the records (a ``Canceled``
        order takes ``cancel_status``: an OCO's other order expires)."""
        touched: list[OrderRecord] = []
        changes = self._changes
        orders = self.orders
        notify = self._order_listeners
        for event in events:
            kind = type(event)
            if kind is Trade:
                assert isinstance(event, Trade)
                self._settle(symbol, event, changes)
            elif kind is Accepted:
                assert isinstance(event, Accepted)
                record = self._accept(event, key_id, hold if event.order is placed else None)
                touched.append(record)
                self._mark(record, changes)
                if notify:
                    self._notify("NEW", record, event.time)
            elif kind is Expired or kind is Canceled:
                assert isinstance(event, (Expired, Canceled))
                found = orders.get((symbol, event.order_id))
                if found is None:
                    continue
                if found.order_list_id is not None:
                    self._lists_touched.add(found.order_list_id)
                was_open = found.is_open
                if isinstance(event, Canceled):
                    found.status = cancel_status
                    if not any(t is found for t in touched):
                        touched.append(found)
                else:
                    found.status = (
                        OrderStatus.EXPIRED_IN_MATCH if event.in_match else OrderStatus.EXPIRED
                    )
                found.update_time = now
                if was_open:
                    self._close(found, changes)
                else:  # a market buy its budget cut short reads filled, then expires
                    self._mark(found, changes)
                if notify:
                    self._notify_end(found, event, changes, now)
            elif kind is SelfTradePrevented:
                assert isinstance(event, SelfTradePrevented)
                self._prevented(symbol, event, changes)
            elif kind is Triggered:
                assert isinstance(event, Triggered)
                found = orders.get((symbol, event.order_id))
                if found is not None:
                    found.working = True
                    found.working_time = event.time
                    found.update_time = now
                    self._mark(found, changes)
                    if notify:  # a stop started working: NEW again, now on the book
                        self._notify("NEW", found, event.time)
                    if found.order_list_id is not None:
                        self._lists_touched.add(found.order_list_id)
                        self._leg_triggered(found)
        if len(events) > 1 or not isinstance(events[0], Rejected):
            changes.symbols.add(symbol)
        if self._lists_touched:
            self._react(now)
        return Result(events, touched)

    def _prevented(self, symbol: str, event: SelfTradePrevented, changes: Changes) -> None:
        """Record a prevented match under the symbol's next ``preventedMatchId`` (the
        simulated accounts' own are not kept, like their orders)."""
        taker = self.orders.get((symbol, event.taker_order_id))
        if taker is None or taker.account in SYSTEM_ACCOUNTS:
            return
        match_id = self._next_prevented.get(symbol, 1)
        self._next_prevented[symbol] = match_id + 1
        maker = self.orders.get((symbol, event.maker_order_id))
        for order, expired in ((taker, event.taker_prevented), (maker, event.maker_prevented)):
            if order is not None and expired:  # marked for storage by its Expired event
                order.prevented_match_id = match_id
                order.prevented_quantity = QuantityUnits(order.prevented_quantity + expired)
        changes.prevented.append(
            PreventedMatch(
                symbol,
                match_id,
                event.taker_order_id,
                event.maker_order_id,
                taker.account,
                event.price,
                event.taker_prevented,
                event.maker_prevented,
                event.mode,
                event.time,
            )
        )

    def _accept(self, event: Accepted, key_id: int | None, hold: Hold | None) -> OrderRecord:
        o = event.order
        cid = o.client_order_id or _generated_cid(o.symbol, event.order_id)
        record = OrderRecord(
            symbol=o.symbol,
            order_id=event.order_id,
            account=o.account,
            key_id=key_id,
            client_order_id=cid,
            side=o.side,
            type=o.type,
            time_in_force=o.time_in_force,
            price=o.price or _NO_PRICE,
            quantity=o.quantity,
            quote_quantity=o.quote_quantity,
            stop_price=o.stop_price,
            stp_mode=event.stp_mode,
            time=event.time,
            update_time=event.time,
            working=event.working,
            working_time=event.time if event.working else None,
        )
        if hold is not None:
            asset, amount, budget = hold
            record.hold_asset = asset
            record.budget = budget
            if amount:
                entry = self.ledger.hold(record.key, o.account, asset, amount)
                record.held = amount
                self._changes.balances.add((o.account, asset))
                if o.account > 0:
                    self._changes.entries.append(entry)
        self.orders[record.key] = record
        self._cids[(o.account, o.symbol, cid)] = event.order_id
        if key_id is not None:
            self._key_open[key_id] = self._key_open.get(key_id, 0) + 1
        return record

    def _settle(self, symbol_name: str, trade: Trade, changes: Changes) -> None:
        taker_buys = trade.taker_side is _BUY
        buy_id, sell_id = (
            (trade.taker_order_id, trade.maker_order_id)
            if taker_buys
            else (trade.maker_order_id, trade.taker_order_id)
        )
        buyer_acct, seller_acct = (
            (trade.taker_account, trade.maker_account)
            if taker_buys
            else (trade.maker_account, trade.taker_account)
        )
        symbol = self.symbols[symbol_name]
        buy = self.orders[(symbol_name, buy_id)]
        sell = self.orders[(symbol_name, sell_id)]
        quote_units = QuoteUnits(trade.price * trade.quantity)
        base = AssetUnits(trade.quantity * 10 ** (ASSET_DECIMALS - symbol.quantity_scale))
        quote = AssetUnits(quote_units * 10 ** (ASSET_DECIMALS - symbol.quote_scale))
        buyer_rate = self.taker_fee if taker_buys else self.maker_fee
        seller_rate = self.maker_fee if taker_buys else self.taker_fee
        buyer_fee = _NO_ASSET if buyer_acct in SYSTEM_ACCOUNTS else fee_units(base, buyer_rate)
        seller_fee = _NO_ASSET if seller_acct in SYSTEM_ACCOUNTS else fee_units(quote, seller_rate)
        entry = self.ledger.settle(
            buy=buy.key,
            sell=sell.key,
            base_asset=symbol.base_asset,
            quote_asset=symbol.quote_asset,
            base=base,
            quote=quote,
            buyer_fee=buyer_fee,
            seller_fee=seller_fee,
            ref=f"{symbol_name}:{trade.trade_id}",
        )
        buy.held = AssetUnits(buy.held - quote)
        sell.held = AssetUnits(sell.held - base)
        notify = self._order_listeners
        for record, fee, asset, left, maker in (
            (buy, buyer_fee, symbol.base_asset, _left(trade, buy_id), not taker_buys),
            (sell, seller_fee, symbol.quote_asset, _left(trade, sell_id), taker_buys),
        ):
            record.executed = QuantityUnits(record.executed + trade.quantity)
            record.cumulative_quote = QuoteUnits(record.cumulative_quote + quote_units)
            if record.order_list_id is not None:
                self._lists_touched.add(record.order_list_id)
            record.update_time = trade.time
            if not maker:  # the taker's fills answer the command that placed it
                record.fills.append(
                    Fill(trade.trade_id, trade.price, trade.quantity, fee, asset, maker)
                )
            if left == 0:
                record.status = OrderStatus.FILLED
                self._close(record, changes)
            else:
                record.status = OrderStatus.PARTIALLY_FILLED
                self._mark(record, changes)
            if notify and record.account > 0:
                fill = Fill(trade.trade_id, trade.price, trade.quantity, fee, asset, maker)
                self._notify("TRADE", record, trade.time, fill)
        user = buyer_acct > 0 or seller_acct > 0
        for account, asset in (
            (buyer_acct, symbol.quote_asset),
            (buyer_acct, symbol.base_asset),
            (seller_acct, symbol.quote_asset),
            (seller_acct, symbol.base_asset),
        ):
            changes.balances.add((account, asset))
        if buyer_fee:
            changes.balances.add((FEES, symbol.base_asset))
        if seller_fee:
            changes.balances.add((FEES, symbol.quote_asset))
        if user:
            changes.entries.append(entry)
            changes.trades.append(
                TradeRecord(
                    symbol_name,
                    trade.trade_id,
                    trade.price,
                    trade.quantity,
                    quote_units,
                    trade.time,
                    buyer_acct,
                    seller_acct,
                    buy_id,
                    sell_id,
                    not taker_buys,
                    buyer_fee,
                    seller_fee,
                )
            )
        for listener in self._trade_listeners:
            listener(symbol_name, trade)

    def _notify(
        self,
        execution: str,
        record: OrderRecord,
        time: int,
        fill: Fill | None = None,
        prevented: PreventedMatch | None = None,
        reason: str | None = None,
    ) -> None:
        """Tell the order listeners (there is one: callers check) of an execution of a
        user's order, with a copy of the record as it stands now."""
        account = record.account
        if account <= 0 or (self.watched is not None and account not in self.watched):
            return
        from sandex.exchange.account_events import Execution, OrderUpdate

        copy = replace(record, fills=[])
        update = OrderUpdate(Execution(execution), copy, fill, time, prevented, reason)
        held = self._held_updates
        if held is not None:
            held.append(update)
            return
        for listener in self._order_listeners:
            listener(update)

    def _notify_end(
        self, record: OrderRecord, event: Expired | Canceled, changes: Changes, now: int
    ) -> None:
        """A canceled or expired order's update (an OCO's other order, canceled by the
        venue, expires; self-trade prevention's expiry names the match it prevented)."""
        status = record.status
        if status is OrderStatus.CANCELED:
            self._notify("CANCELED", record, now)
        elif status is OrderStatus.EXPIRED_IN_MATCH:
            prevented = changes.prevented[-1] if changes.prevented else None
            if prevented is not None and record.order_id not in (
                prevented.taker_order_id,
                prevented.maker_order_id,
            ):
                prevented = None
            self._notify("TRADE_PREVENTION", record, now, prevented=prevented)
        else:
            reason = "OCO_TRIGGER" if isinstance(event, Canceled) else None
            self._notify("EXPIRED", record, now, reason=reason)

    def _hold_updates(self) -> tuple[int, bool] | None:
        """Hold order updates back (an order list is being placed: its orders' list id
        is set once they are all accepted) until :meth:`_release_updates`. Returns where
        the held updates stood and whether this is the outermost hold; None without
        listeners."""
        if not self._order_listeners:
            return None
        held = self._held_updates
        if held is None:
            self._held_updates = []
            return (0, True)
        return (len(held), False)

    def _drop_updates(self, hold: tuple[int, bool] | None) -> None:
        """Forget the updates held since ``hold`` (what a refused list placed, undone)."""
        if hold is not None and self._held_updates is not None:
            del self._held_updates[hold[0] :]

    def _release_updates(self, hold: tuple[int, bool] | None, *, drop: bool = False) -> None:
        """End ``hold``; the outermost tells the listeners, each order's copy naming the
        list (and time) its order was given since."""
        if hold is None:
            return
        if drop:
            self._drop_updates(hold)
        held = self._held_updates
        if not hold[1] or held is None:
            return
        self._held_updates = None
        orders = self.orders
        listeners = self._order_listeners
        for update in held:
            order = update.order
            if order.order_list_id is None:
                live = orders.get(order.key)
                if live is not None and live.order_list_id is not None:
                    order.order_list_id = live.order_list_id
                    order.time = live.time
            for listener in listeners:
                listener(update)

    def _close(self, record: OrderRecord, changes: Changes) -> None:
        """The order ended: release what it still holds."""
        entry = self.ledger.release(record.key)
        if record.held:
            changes.balances.add((record.account, record.hold_asset))
            record.held = _NO_ASSET
            if entry is not None and record.account > 0:
                changes.entries.append(entry)
        if record.key_id is not None:
            self._key_closed(record.key_id)
        if record.account in SYSTEM_ACCOUNTS:
            self.orders.pop(record.key, None)
            self._cids.pop((record.account, record.symbol, record.client_order_id), None)
        else:
            changes.orders[record.key] = record

    def _key_closed(self, key_id: int) -> None:
        left = self._key_open.get(key_id, 0) - 1
        if left > 0:
            self._key_open[key_id] = left
        else:
            self._key_open.pop(key_id, None)

    def _key_opened(self, key_id: int | None) -> None:
        if key_id is not None:
            self._key_open[key_id] = self._key_open.get(key_id, 0) + 1

    def _mark(self, record: OrderRecord, changes: Changes) -> None:
        if record.account not in SYSTEM_ACCOUNTS:
            changes.orders[record.key] = record


def _activated(order: OrderRecord) -> bool:
    """Has an order of a list traded, or (a stop) triggered?"""
    return order.executed > 0 or (order.working and order.type in STOP_TYPES)


def _left(trade: Trade, order_id: int) -> int:
    return trade.taker_remaining if trade.taker_order_id == order_id else trade.maker_remaining


def _freed(old: OrderRecord | None, asset: str) -> int:
    """What canceling ``old`` would free of ``asset`` (cancel-replace sizing)."""
    return old.held if old is not None and old.hold_asset == asset else 0


def _generated_cid(symbol: str, order_id: int) -> str:
    return f"sandex-{symbol}-{order_id}"


def _command(o: OrderRecord) -> PlaceOrder:
    return PlaceOrder(
        symbol=o.symbol,
        account=o.account,
        side=o.side,
        type=o.type,
        quantity=o.quantity,
        price=o.price if o.type in LIMIT_TYPES else None,
        time_in_force=o.time_in_force,
        quote_quantity=o.quote_quantity,
        stop_price=o.stop_price,
        client_order_id=o.client_order_id,
        stp_mode=o.stp_mode,
    )

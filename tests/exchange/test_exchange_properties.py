"""Property tests: the engine against a plain reference book, and the book's invariants.

The reference model below is written for clarity, not speed: a list of resting orders,
sorted on every match. For random command sequences the engine must produce exactly the
model's events (so price-time priority, self-trade prevention and time in force agree
with an independent implementation). A second test adds stops and quote-quantity market
orders and checks the invariants alone: the book never rests crossed, every trade takes
the same quantity from both orders, and for every order
``filled + open + expired + canceled == original``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandex.exchange import (
    Accepted,
    CancelAll,
    Canceled,
    CancelOrder,
    Engine,
    Event,
    Expired,
    LotSize,
    Notional,
    OrderType,
    PlaceOrder,
    PriceFilter,
    Rejected,
    SelfTradePrevented,
    SelfTradePrevention,
    Side,
    Symbol,
    TimeInForce,
    Trade,
    Triggered,
)

D = Decimal
SYMBOL = "TSTUSD"
TEST = Symbol(
    name=SYMBOL,
    base_asset="TST",
    quote_asset="USD",
    price_filter=PriceFilter(D("0.01"), D("1000"), D("0.01")),
    lot_size=LotSize(D(1), D(1000), D(1)),
    notional=Notional(D(0)),
    max_num_orders=None,
    max_num_algo_orders=None,
)
NONE = SelfTradePrevention.NONE
EXPIRE_TAKER = SelfTradePrevention.EXPIRE_TAKER
EXPIRE_MAKER = SelfTradePrevention.EXPIRE_MAKER
EXPIRE_BOTH = SelfTradePrevention.EXPIRE_BOTH
UNKNOWN = Rejected(-2011, "Unknown order sent.")
WOULD_TAKE = Rejected(-2010, "Order would immediately match and take.")


# -- the reference model ------------------------------------------------------------------


@dataclass
class Resting:
    oid: int
    account: int
    side: Side
    price: int
    remaining: int


class Model:
    """A deliberately simple order book with the engine's rules."""

    def __init__(self) -> None:
        self.book: list[Resting] = []  # in arrival order
        self.next_oid = 1
        self.next_tid = 1

    def submit(self, cmd: PlaceOrder | CancelOrder | CancelAll, now: int) -> list[Event]:
        if isinstance(cmd, CancelOrder):
            for r in self.book:
                if r.oid == cmd.order_id and r.account == cmd.account:
                    self.book.remove(r)
                    return [Canceled(r.oid, r.account, r.remaining, now)]
            return [UNKNOWN]
        if isinstance(cmd, CancelAll):
            mine = [r for r in self.book if r.account == cmd.account]
            if not mine:
                return [UNKNOWN]
            for r in mine:
                self.book.remove(r)
            return [Canceled(r.oid, r.account, r.remaining, now) for r in mine]
        return self.place(cmd, now)

    def crossing(self, side: Side, limit: int | None) -> list[Resting]:
        buy = side is Side.BUY
        makers = [r for r in self.book if r.side is not side]
        if limit is not None:
            makers = [r for r in makers if (r.price <= limit if buy else r.price >= limit)]
        # price first (lowest ask / highest bid), then arrival (order ids grow with time)
        return sorted(makers, key=lambda r: ((r.price if buy else -r.price), r.oid))

    def place(self, cmd: PlaceOrder, now: int) -> list[Event]:
        stp = cmd.stp_mode or EXPIRE_TAKER
        limit = None if cmd.type is OrderType.MARKET else cmd.price
        makers = self.crossing(cmd.side, limit)
        if cmd.type is OrderType.LIMIT_MAKER and makers:
            return [WOULD_TAKE]
        oid = self.next_oid
        self.next_oid += 1
        assert cmd.quantity is not None
        events: list[Event] = [Accepted(oid, cmd, stp, True, now)]
        left = cmd.quantity
        own = cmd.account if stp is not NONE else None
        if cmd.time_in_force is TimeInForce.FOK:
            reachable = 0
            for m in makers:
                if m.account == own:
                    if stp is EXPIRE_MAKER:
                        continue
                    break
                reachable += m.remaining
            if reachable < left:
                events.append(Expired(oid, cmd.account, left, False, now))
                return events
        stopped = False
        for m in makers:
            if m.account == own:
                if stp is EXPIRE_TAKER:
                    events.append(SelfTradePrevented(oid, m.oid, m.price, left, 0, stp, now))
                    events.append(Expired(oid, cmd.account, left, True, now))
                    stopped = True
                    break
                self.book.remove(m)
                both = stp is EXPIRE_BOTH
                events.append(
                    SelfTradePrevented(
                        oid, m.oid, m.price, left if both else 0, m.remaining, stp, now
                    )
                )
                events.append(Expired(m.oid, m.account, m.remaining, True, now))
                if both:
                    events.append(Expired(oid, cmd.account, left, True, now))
                    stopped = True
                    break
                continue
            fill = min(left, m.remaining)
            left -= fill
            m.remaining -= fill
            events.append(
                Trade(
                    self.next_tid, m.price, fill, oid, m.oid, cmd.account, m.account,
                    cmd.side, left, m.remaining, now,
                )
            )  # fmt: skip
            self.next_tid += 1
            if not m.remaining:
                self.book.remove(m)
            if not left:
                break
        if stopped or not left:
            return events
        rests = cmd.type is OrderType.LIMIT_MAKER or cmd.time_in_force is TimeInForce.GTC
        if not rests:  # MARKET, IOC, FOK
            events.append(Expired(oid, cmd.account, left, False, now))
        else:
            self.book.append(Resting(oid, cmd.account, cmd.side, cmd.price or 0, left))
        return events


# -- strategies ---------------------------------------------------------------------------

accounts = st.integers(1, 3)
sides = st.sampled_from([Side.BUY, Side.SELL])
prices = st.integers(95, 105)
quantities = st.integers(1, 6)
stps = st.sampled_from([None, NONE, EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH])


@st.composite
def limit_orders(draw: st.DrawFn) -> PlaceOrder:
    kind = draw(st.sampled_from([OrderType.LIMIT] * 4 + [OrderType.LIMIT_MAKER]))
    tif = (
        None
        if kind is OrderType.LIMIT_MAKER
        else draw(st.sampled_from([TimeInForce.GTC] * 3 + [TimeInForce.IOC, TimeInForce.FOK]))
    )
    return PlaceOrder(
        SYMBOL, draw(accounts), draw(sides), kind, quantity=draw(quantities),
        price=draw(prices), time_in_force=tif, stp_mode=draw(stps),
    )  # fmt: skip


@st.composite
def market_orders(draw: st.DrawFn) -> PlaceOrder:
    return PlaceOrder(
        SYMBOL, draw(accounts), draw(sides), OrderType.MARKET,
        quantity=draw(quantities), stp_mode=draw(stps),
    )  # fmt: skip


cancels = st.builds(
    lambda account, oid: CancelOrder(SYMBOL, account, order_id=oid), accounts, st.integers(1, 40)
)
cancel_alls = st.builds(lambda account: CancelAll(SYMBOL, account), accounts)
commands = st.lists(
    st.one_of(
        limit_orders(), limit_orders(), limit_orders(), market_orders(), cancels, cancel_alls
    ),
    max_size=50,
)


# -- invariants ---------------------------------------------------------------------------


class Ledger:
    """Follows every order through the events and checks conservation on the way."""

    def __init__(self) -> None:
        self.original: dict[int, int] = {}
        self.remaining: dict[int, int] = {}
        self.filled: dict[int, int] = {}
        self.closed: dict[int, int] = {}  # expired or canceled quantity

    def apply(self, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, Accepted):
                qty = e.order.quantity
                if qty is None:  # a quote market order: its quantity is what it trades
                    qty = sum(
                        t.quantity
                        for t in events
                        if isinstance(t, Trade) and t.taker_order_id == e.order_id
                    )
                self.original[e.order_id] = self.remaining[e.order_id] = qty
                self.filled[e.order_id] = self.closed[e.order_id] = 0
            elif isinstance(e, Trade):
                assert e.quantity > 0
                for oid, left in (
                    (e.taker_order_id, e.taker_remaining),
                    (e.maker_order_id, e.maker_remaining),
                ):
                    assert self.remaining[oid] - e.quantity == left, (oid, e)
                    self.remaining[oid] = left
                    self.filled[oid] += e.quantity
            elif isinstance(e, Expired | Canceled):
                assert self.remaining[e.order_id] == e.remaining, e
                self.closed[e.order_id] += e.remaining
                self.remaining[e.order_id] = 0
        for oid, original in self.original.items():
            assert self.filled[oid] + self.remaining[oid] + self.closed[oid] == original


def check_book(engine: Engine, ledger: Ledger) -> None:
    bids, asks = engine.depth(SYMBOL, 1000)
    if bids and asks:
        assert bids[0].price < asks[0].price, "the book rests crossed"
    assert [b.price for b in bids] == sorted((b.price for b in bids), reverse=True)
    assert [a.price for a in asks] == sorted(a.price for a in asks)
    open_orders = {o.order_id: o.remaining for o in engine.open_orders(SYMBOL)}
    open_orders.update({s.order_id: s.order.quantity or 0 for s in engine.pending_stops(SYMBOL)})
    expected = {oid: left for oid, left in ledger.remaining.items() if left}
    assert open_orders == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands)
def test_engine_matches_the_reference_model(sequence):
    engine, model, ledger = Engine([TEST]), Model(), Ledger()
    for n, cmd in enumerate(sequence):
        got = engine.submit(cmd, n)
        assert got == model.submit(cmd, n), cmd
        ledger.apply(got)
        check_book(engine, ledger)


@st.composite
def stop_orders(draw: st.DrawFn) -> PlaceOrder:
    kind = draw(
        st.sampled_from(
            [
                OrderType.STOP_LOSS,
                OrderType.STOP_LOSS_LIMIT,
                OrderType.TAKE_PROFIT,
                OrderType.TAKE_PROFIT_LIMIT,
            ]
        )
    )
    limit = kind in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
    return PlaceOrder(
        SYMBOL, draw(accounts), draw(sides), kind, quantity=draw(quantities),
        price=draw(prices) if limit else None,
        time_in_force=draw(st.sampled_from(list(TimeInForce))) if limit else None,
        stop_price=draw(prices), stp_mode=draw(stps),
    )  # fmt: skip


@st.composite
def quote_orders(draw: st.DrawFn) -> PlaceOrder:
    return PlaceOrder(
        SYMBOL, draw(accounts), draw(sides), OrderType.MARKET,
        quote_quantity=draw(st.integers(1, 1500)), stp_mode=draw(stps),
    )  # fmt: skip


wider = st.lists(
    st.one_of(
        limit_orders(),
        limit_orders(),
        market_orders(),
        stop_orders(),
        quote_orders(),
        cancels,
        cancel_alls,
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wider)
def test_invariants_hold_with_stops_and_quote_orders(sequence):
    engine, ledger = Engine([TEST]), Ledger()
    for n, cmd in enumerate(sequence):
        events = engine.submit(cmd, n)
        ledger.apply(events)
        check_book(engine, ledger)
        triggered = {e.order_id for e in events if isinstance(e, Triggered)}
        assert not triggered & {s.order_id for s in engine.pending_stops(SYMBOL)}
        last = engine.last_price(SYMBOL)
        if last is not None:  # no pending stop may have been reached by the last price
            for s in engine.pending_stops(SYMBOL):
                stop = s.order.stop_price
                assert stop is not None
                rises = (s.order.type in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)) == (
                    s.order.side is Side.BUY
                )
                assert (last < stop) if rises else (last > stop)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(limit_orders(), stop_orders(), cancels), max_size=40))
def test_snapshot_and_restore_give_an_identical_engine(sequence):
    engine = Engine([TEST])
    half = len(sequence) // 2
    for n, cmd in enumerate(sequence[:half]):
        engine.submit(cmd, n)
    copy = Engine([TEST])
    copy.restore(engine.snapshot(SYMBOL))
    assert copy.snapshot(SYMBOL) == engine.snapshot(SYMBOL)
    for n, cmd in enumerate(sequence[half:], start=half):
        assert copy.submit(cmd, n) == engine.submit(cmd, n)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(commands, wider), st.lists(st.integers(1, 4), min_size=1, max_size=60))
def test_changed_levels_keep_a_copy_of_the_book_exact(sequence, batches):
    """A market-data feed that applies only :meth:`Engine.changed_levels` (taken after
    every few commands, as the journal's batches take them) holds the book exactly."""
    engine = Engine([TEST])
    copy: tuple[dict[int, int], dict[int, int]] = ({}, {})
    sizes = iter(batches * (len(sequence) + 1))
    n = 0
    while n < len(sequence):
        size = next(sizes)
        for cmd in sequence[n : n + size]:
            engine.submit(cmd, n)
        n += size
        for side, levels in zip(copy, engine.changed_levels(SYMBOL), strict=True):
            for level in levels:
                if level.quantity:
                    side[level.price] = level.quantity
                else:
                    side.pop(level.price, None)
        bids, asks = engine.depth(SYMBOL, 1000)
        assert copy == (dict(bids), dict(asks))
    assert engine.changed_levels(SYMBOL) == ([], [])  # taken: nothing new since

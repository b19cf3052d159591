"""The trading service over real storage (SQLite and PostgreSQL): what it acknowledges
survives a restart, credits and starting balances apply exactly once, shocks are handed
over once, and a key's risk policy refuses orders before they change anything.

A "restart" is a new venue and a new :class:`LocalExchange` over the same database,
started as ``sandex serve`` starts it. Without the simulated market (``simulate=False``)
every trade is between accounts the test funds itself, so every number is exact.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy import text

from exchange_support import BTC, SYMBOL, buy, market, px, qty, sell, stop
from sandex.bootstrap import Sandex
from sandex.exchange import (
    CancelAll,
    CancelOrder,
    OrderStatus,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from sandex.exchange.venue import MAKER, TAKER, OrderRecord, PreventedMatch, TradeRecord
from sandex.keys import Mode, PolicyViolation, RiskPolicy
from sandex.service.exchange_core import RETRY_WINDOW_MS
from sandex.service.journal import Durability
from sandex.service.ports import History, PreventedQuery, ShockKind
from sandex.storage.exchange_store import SqlExchangeStore
from support import make_user
from trading_support import LocalExchange, new_exchange

NOW = 1_800_000_000_000
ALICE, BOB, CAROL = 1, 2, 3
UNIT = 10**8
"""One whole coin (or dollar) in balance units."""

Open = Callable[..., LocalExchange]


def new_service(
    sx: Sandex, *, durability: Durability = "group", simulate: bool = False, seed: int = 7
) -> LocalExchange:
    return new_exchange(sx, durability=durability, simulate=simulate, seed=seed)


@pytest.fixture
def open_service(sandex: Sandex) -> Iterator[Open]:
    """Start a trading service over the test database; every one is closed afterwards."""
    started: list[LocalExchange] = []

    def start(*, now: int = NOW, **kwargs: object) -> LocalExchange:
        trading = new_service(sandex, **kwargs)  # type: ignore[arg-type]
        trading.start(now)
        started.append(trading)
        return trading

    yield start
    for trading in started:
        trading.close()


def durable(trading: LocalExchange) -> None:
    trading.durable()


def fund(trading: LocalExchange, account: int, asset: str, amount: str, now: int = NOW) -> None:
    """Credit ``account`` as ``sandex balances credit`` does, and make it durable."""
    units = int(Decimal(amount) * UNIT)
    trading.store.add_credit(account, asset, units, "operator credit", now)
    trading.apply_credits(trading.store.pending_credits(), now)
    durable(trading)


def placed(trading: LocalExchange, order: PlaceOrder, now: int, **kwargs: object) -> OrderRecord:
    result = trading.place(order, now, **kwargs)  # type: ignore[arg-type]
    assert result.rejected is None, result.events
    return result.orders[0]


def open_orders(trading: LocalExchange, account: int) -> list[OrderRecord]:
    """Open orders without their fills (the fills answer the placing request only)."""
    return [dataclasses.replace(o, fills=[]) for o in trading.venue.open_orders(account)]


def stored_balances(trading: LocalExchange) -> dict[tuple[int, str], tuple[int, int]]:
    return {(a, asset): (free, locked) for a, asset, free, locked in trading.store.load().balances}


def trades_of(
    trading: LocalExchange, account: int, order_id: int | None = None
) -> list[TradeRecord]:
    return asyncio.run(trading.trading.my_trades(account, SYMBOL, History(), order_id))


def orders_of(trading: LocalExchange, account: int) -> list[tuple[int, OrderStatus]]:
    found = asyncio.run(trading.trading.all_orders(account, SYMBOL, History()))
    return [(o.order_id, o.status) for o in found]


# -- what is acknowledged survives a restart ----------------------------------------------


def _trade_a_little(trading: LocalExchange) -> dict[str, OrderRecord]:
    """Alice and Bob trade on BTCUSDT; returns their orders by name."""
    fund(trading, ALICE, "USDT", "100000")
    fund(trading, BOB, "BTC", "2")
    t = NOW + 1000
    bid = placed(trading, buy("0.5", "60000", account=ALICE), t)  # rests, then 0.2 fills
    hit = placed(trading, sell("0.2", "60000", account=BOB), t + 1)  # the taker: FILLED
    ask = placed(trading, sell("0.3", "61000", account=BOB), t + 2)
    gone = placed(trading, buy("0.1", "59000", account=ALICE), t + 3)
    assert trading.cancel(CancelOrder(SYMBOL, ALICE, gone.order_id), t + 4).rejected is None
    # a stop-loss on what Alice bought: waits below the last price (60000)
    guard = placed(
        trading, stop(OrderType.STOP_LOSS_LIMIT, Side.SELL, "0.1", "58000", "57900"), t + 5
    )
    small = placed(trading, buy("0.01", "59500", account=ALICE, cid="alice-1"), t + 6)
    durable(trading)
    return {"bid": bid, "hit": hit, "ask": ask, "gone": gone, "guard": guard, "small": small}


@pytest.mark.parametrize("durability", ["group", "transaction"])
def test_a_restarted_exchange_has_the_same_balances_open_orders_and_stops(
    open_service: Open, durability: Durability
) -> None:
    first = open_service(durability=durability)
    orders = _trade_a_little(first)
    balances = {a: first.balances(a) for a in (ALICE, BOB)}
    before = {a: open_orders(first, a) for a in (ALICE, BOB)}

    again = open_service(durability=durability, now=NOW + 60_000)

    assert {a: again.balances(a) for a in (ALICE, BOB)} == balances
    assert {a: open_orders(again, a) for a in (ALICE, BOB)} == before
    bid = again.venue.order(SYMBOL, ALICE, orders["bid"].order_id)
    assert bid is not None and bid.status is OrderStatus.PARTIALLY_FILLED
    assert (bid.quantity, bid.executed) == (qty("0.5"), qty("0.2"))
    assert (bid.hold_asset, bid.held) == ("USDT", 18_000 * UNIT)  # 0.3 left at 60000
    guard = again.venue.order(SYMBOL, ALICE, orders["guard"].order_id)
    assert guard is not None and not guard.working  # still waiting for its stop price
    assert (guard.hold_asset, guard.held) == ("BTC", UNIT // 10)
    # Alice holds 0.3 * 60000 for her bid and 0.01 * 59500; her 0.2 BTC cost a maker fee
    assert again.balances(ALICE) == {
        "USDT": (69_405 * UNIT, 18_595 * UNIT),
        "BTC": (9_980 * UNIT // 100_000, UNIT // 10),
    }
    # Bob sold 0.2 BTC for 12000 USDT less the taker fee, and offers 0.3 more
    assert again.balances(BOB) == {
        "BTC": (15 * UNIT // 10, 3 * UNIT // 10),
        "USDT": (11_988 * UNIT, 0),
    }


@pytest.mark.parametrize("durability", ["group", "transaction"])
def test_after_a_restart_the_books_trade_on_and_order_ids_continue(
    open_service: Open, durability: Durability
) -> None:
    orders = _trade_a_little(open_service(durability=durability))
    again = open_service(durability=durability, now=NOW + 60_000)
    t = NOW + 61_000

    # Alice's restored bid is in the book: Bob's sell fills what is left of it
    fill = placed(again, sell("0.3", "60000", account=BOB), t)
    assert fill.order_id == orders["small"].order_id + 1
    assert fill.status is OrderStatus.FILLED
    bid = asyncio.run(again.trading.find_order(ALICE, SYMBOL, orders["bid"].order_id, None))
    assert bid is not None and bid.status is OrderStatus.FILLED and bid.held == 0
    # her order is found by its client id after the restart, and cancels
    canceled = again.cancel(CancelOrder(SYMBOL, ALICE, None, "alice-1"), t + 1)
    assert canceled.rejected is None
    # a trade at 58000 triggers her restored stop-loss
    fund(again, CAROL, "BTC", "1", t + 2)
    fund(again, BOB, "USDT", "1000", t + 2)
    placed(again, buy("0.01", "58000", account=BOB), t + 3)
    placed(again, sell("0.01", "58000", account=CAROL), t + 4)
    guard = again.venue.order(SYMBOL, ALICE, orders["guard"].order_id)
    assert guard is not None and guard.working and guard.status is OrderStatus.NEW
    durable(again)

    third = open_service(durability=durability, now=NOW + 120_000)
    assert open_orders(third, ALICE) == open_orders(again, ALICE)
    assert third.balances(ALICE) == again.balances(ALICE)


@pytest.mark.parametrize("durability", ["group", "transaction"])
def test_closed_orders_and_trades_are_queryable_after_a_restart(
    open_service: Open, durability: Durability
) -> None:
    orders = _trade_a_little(open_service(durability=durability))
    again = open_service(durability=durability, now=NOW + 60_000)

    gone = asyncio.run(again.trading.find_order(ALICE, SYMBOL, orders["gone"].order_id, None))
    assert gone is not None and gone.status is OrderStatus.CANCELED and gone.held == 0
    hit = asyncio.run(again.trading.find_order(BOB, SYMBOL, None, orders["hit"].client_order_id))
    assert hit is not None and hit.status is OrderStatus.FILLED
    assert hit.cumulative_quote == px("60000") * qty("0.2")
    assert asyncio.run(again.trading.find_order(BOB, SYMBOL, orders["gone"].order_id, None)) is None
    ids = [o.order_id for o in (orders["bid"], orders["gone"], orders["guard"], orders["small"])]
    assert orders_of(again, ALICE) == list(
        zip(
            ids,
            [
                OrderStatus.PARTIALLY_FILLED,
                OrderStatus.CANCELED,
                OrderStatus.NEW,
                OrderStatus.NEW,
            ],
            strict=True,
        )
    )

    (trade,) = trades_of(again, ALICE)
    assert (trade.buyer, trade.seller) == (ALICE, BOB)
    assert (trade.price, trade.quantity) == (px("60000"), qty("0.2"))
    assert trade.buyer_is_maker
    assert trade.buyer_fee == UNIT // 5000  # 0.1 % of 0.2 BTC, in BTC
    assert trade.seller_fee == 12 * UNIT  # 0.1 % of 12000 USDT, in USDT
    assert trades_of(again, CAROL) == []


def prevented_of(trading: LocalExchange, account: int, **query: int) -> list[PreventedMatch]:
    return asyncio.run(
        trading.trading.prevented_matches(account, SYMBOL, PreventedQuery(**query))  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("durability", ["group", "transaction"])
@pytest.mark.parametrize(
    "mode",
    [
        SelfTradePrevention.EXPIRE_TAKER,
        SelfTradePrevention.EXPIRE_MAKER,
        SelfTradePrevention.EXPIRE_BOTH,
    ],
)
def test_prevented_matches_survive_a_restart_and_their_ids_continue(
    open_service: Open, durability: Durability, mode: SelfTradePrevention
) -> None:
    first = open_service(durability=durability)
    fund(first, ALICE, "USDT", "100000")
    fund(first, ALICE, "BTC", "1")
    t = NOW + 1000
    bid = placed(first, buy("0.5", "60000", account=ALICE), t)
    ask = placed(first, sell("0.2", "60000", account=ALICE, stp=mode), t + 1)
    assert ask.status is OrderStatus.EXPIRED_IN_MATCH or mode is SelfTradePrevention.EXPIRE_MAKER
    durable(first)
    match = PreventedMatch(
        SYMBOL,
        1,
        ask.order_id,
        bid.order_id,
        ALICE,
        px("60000"),
        0 if mode is SelfTradePrevention.EXPIRE_MAKER else qty("0.2"),
        0 if mode is SelfTradePrevention.EXPIRE_TAKER else qty("0.5"),
        mode,
        t + 1,
    )
    assert prevented_of(first, ALICE, order_id=ask.order_id) == [match]

    again = open_service(durability=durability, now=NOW + 60_000)
    assert prevented_of(again, ALICE, order_id=bid.order_id) == [match]
    assert prevented_of(again, ALICE, prevented_match_id=1) == [match]
    assert prevented_of(again, BOB, prevented_match_id=1) == []
    for order, expired in ((ask, match.taker_prevented), (bid, match.maker_prevented)):
        stored = asyncio.run(again.trading.find_order(ALICE, SYMBOL, order.order_id, None))
        assert stored is not None
        assert (stored.prevented_match_id, stored.prevented_quantity) == (
            (1, expired) if expired else (None, 0)
        )
    # the next one after the restart is number 2, not a second number 1
    t = NOW + 61_000
    again.cancel_all(CancelAll(SYMBOL, ALICE), t)  # what the first match left open
    bid2 = placed(again, buy("0.1", "59000", account=ALICE), t + 1)
    ask2 = placed(again, sell("0.1", "59000", account=ALICE, stp=mode), t + 2)
    durable(again)
    [second] = prevented_of(again, ALICE, order_id=ask2.order_id)
    assert (second.prevented_match_id, second.maker_order_id) == (2, bid2.order_id)

    third = open_service(durability=durability, now=NOW + 120_000)
    found = prevented_of(third, ALICE, prevented_match_id=2)
    assert found == [second]


@pytest.mark.parametrize("durability", ["group", "transaction"])
def test_every_request_released_by_durable_is_already_in_storage(
    open_service: Open, durability: Durability
) -> None:
    trading = open_service(durability=durability)
    fund(trading, ALICE, "USDT", "100000")
    fund(trading, BOB, "BTC", "10")

    records: list[OrderRecord] = []

    async def request(i: int) -> None:
        # alternate resting bids and asks that take them, as concurrent clients would
        order = (
            buy("0.01", str(50_000 + i), account=ALICE)
            if i % 2 == 0
            else sell("0.01", str(50_000 + i - 1), account=BOB)
        )
        await asyncio.sleep(i % 5 / 1000)  # arrive while earlier batches are being written
        reply = await trading.trading.place(order, NOW + i)  # answered once durable
        assert reply.rejected is None, reply.events
        record = reply.orders[0]
        records.append(record)
        stored = trading.store.order(record.account, SYMBOL, record.order_id, None)
        assert stored is not None, f"order {record.order_id} acknowledged but not stored"

    async def many() -> None:
        await asyncio.gather(*(request(i) for i in range(40)))

    asyncio.run(many())

    stored = stored_balances(trading)
    for account in (ALICE, BOB):
        for asset, (free, locked) in trading.balances(account).items():
            assert stored[(account, asset)] == (free, locked)
    assert sorted(o.key for o in trading.store.load().open_orders) == sorted(
        o.key for o in trading.venue.orders.values() if o.is_open
    )
    trades = trades_of(trading, ALICE)
    assert sorted(t.trade_id for t in trades) == sorted(
        f.trade_id for r in records for f in r.fills
    )
    assert trades, "some asks met bids"


def test_a_shutdown_writes_what_no_request_waited_for(open_service: Open) -> None:
    trading = open_service()
    fund(trading, ALICE, "USDT", "1000")
    order = placed(trading, buy("0.01", "50000", account=ALICE), NOW + 1)
    trading.close()  # as the server's lifespan does at shutdown

    again = open_service(now=NOW + 10)
    assert open_orders(again, ALICE) == [dataclasses.replace(order, fills=[])]
    assert again.balances(ALICE) == {"USDT": (500 * UNIT, 500 * UNIT)}


def test_a_pending_stop_market_buy_keeps_its_budget_across_a_restart(open_service: Open) -> None:
    trading = open_service()
    fund(trading, ALICE, "USDT", "2000")
    fund(trading, BOB, "BTC", "1")
    fund(trading, CAROL, "USDT", "1000")
    placed(trading, sell("0.01", "60000", account=BOB), NOW)
    placed(trading, buy("0.01", "60000", account=ALICE), NOW + 1)  # the last price: 60000
    # a breakout buy: holds 0.01 * 65000 and 5 % more for a gap past the stop
    breakout = placed(trading, stop(OrderType.STOP_LOSS, Side.BUY, "0.01", "65000"), NOW + 2)
    assert (breakout.held, breakout.working) == (68_250_000_000, False)
    durable(trading)

    again = open_service(now=NOW + 10)
    assert open_orders(again, ALICE) == open_orders(trading, ALICE)
    placed(again, sell("0.05", "66000", account=BOB), NOW + 11)
    placed(again, sell("0.001", "65000", account=BOB), NOW + 12)
    placed(again, buy("0.001", "65000", account=CAROL), NOW + 13)  # the trade that triggers
    done = asyncio.run(again.trading.find_order(ALICE, SYMBOL, breakout.order_id, None))
    assert done is not None and done.status is OrderStatus.FILLED
    assert done.cumulative_quote == px("66000") * qty("0.01") and done.held == 0
    # 2000 - 600 - 660, nothing left locked; 0.01 BTC twice, less two taker fees
    assert again.balances(ALICE) == {"USDT": (740 * UNIT, 0), "BTC": (1_998_000, 0)}


def test_a_failed_write_fails_the_request_and_goes_out_with_the_next_one(
    sandex: Sandex, open_service: Open
) -> None:
    """Per-request transactions: a storage hiccup (PostgreSQL restarted, SQLite busy past
    its timeout) fails the request waiting on that write; what it changed is kept and
    written with the next request, so memory and what a restart loads agree again."""
    trading = open_service(durability="transaction")
    fund(trading, ALICE, "USDT", "1000")
    with sandex.db.begin() as conn:
        conn.execute(text("ALTER TABLE spot_orders RENAME TO spot_orders_gone"))
    with pytest.raises(Exception, match="spot_orders"):  # applied, then its write failed
        trading.place(buy("0.01", "50000", account=ALICE), NOW + 1)
    (first,) = open_orders(trading, ALICE)
    with sandex.db.begin() as conn:
        conn.execute(text("ALTER TABLE spot_orders_gone RENAME TO spot_orders"))
    placed(trading, buy("0.001", "40000", account=ALICE), NOW + 2)
    durable(trading)

    again = open_service(durability="transaction", now=NOW + 10)
    assert again.balances(ALICE) == trading.balances(ALICE)
    assert open_orders(again, ALICE) == open_orders(trading, ALICE)
    assert first.order_id in {o.order_id for o in open_orders(again, ALICE)}


def test_with_group_commit_a_failed_write_is_retried_and_the_request_waits_for_it(
    sandex: Sandex, open_service: Open, caplog: pytest.LogCaptureFixture
) -> None:
    """Group commit: the request waits (the write is retried) rather than failing, and
    is answered once storage is back; nothing it changed is lost. Each failed try is
    one log line naming the cause, with no traceback."""
    trading = open_service(durability="group")
    fund(trading, ALICE, "USDT", "1000")
    with sandex.db.begin() as conn:
        conn.execute(text("ALTER TABLE spot_orders RENAME TO spot_orders_gone"))

    async def scenario() -> bool:
        waiting = asyncio.ensure_future(
            trading.trading.place(buy("0.01", "50000", account=ALICE), NOW + 1)
        )
        await asyncio.sleep(0.3)  # several failed tries
        answered_early = waiting.done()
        await asyncio.to_thread(_rename_back, sandex)
        await asyncio.wait_for(waiting, timeout=10)
        return answered_early

    with caplog.at_level(logging.INFO, logger="sandex"):
        assert asyncio.run(scenario()) is False
    failures = [r for r in caplog.records if "storage write failed" in r.getMessage()]
    assert failures and all(r.levelno == logging.ERROR and r.exc_info is None for r in failures)
    assert "spot_orders" in failures[0].getMessage()  # the cause: no such table
    assert "INSERT" not in failures[0].getMessage()  # not the statement and its parameters
    again = open_service(durability="group", now=NOW + 10)
    assert again.balances(ALICE) == trading.balances(ALICE)
    assert open_orders(again, ALICE) == open_orders(trading, ALICE) != []


def _rename_back(sandex: Sandex) -> None:
    with sandex.db.begin() as conn:
        conn.execute(text("ALTER TABLE spot_orders_gone RENAME TO spot_orders"))


# -- credits and starting balances ------------------------------------------------------


def test_a_new_users_starting_balance_applies_once(sandex: Sandex, open_service: Open) -> None:
    user = make_user(sandex, now=NOW)
    store = SqlExchangeStore(sandex.db)
    (pending,) = store.pending_credits()
    assert (pending.account, pending.asset, pending.amount) == (user.id, "USDT", 10_000 * UNIT)
    assert pending.reason == "starting balance"

    first = open_service()
    assert first.balances(user.id) == {"USDT": (10_000 * UNIT, 0)}
    assert store.credit_applied(pending.id) and store.pending_credits() == []

    again = open_service(now=NOW + 1000)
    assert again.balances(user.id) == {"USDT": (10_000 * UNIT, 0)}


def test_an_operator_credit_applies_exactly_once_across_restarts(open_service: Open) -> None:
    trading = open_service()
    store = trading.store
    credit = store.add_credit(ALICE, "BTC", UNIT // 2, "operator credit", NOW)
    stale = store.pending_credits()
    assert trading.apply_credits(stale, NOW) == 1
    assert trading.apply_credits(stale, NOW) == 0  # read again before the first was stored
    assert not store.credit_applied(credit)
    durable(trading)
    assert store.credit_applied(credit)
    assert trading.balances(ALICE) == {"BTC": (UNIT // 2, 0)}

    again = open_service(now=NOW + 1000)
    assert again.balances(ALICE) == {"BTC": (UNIT // 2, 0)}
    assert again.apply_credits(store.pending_credits(), NOW) == 0


def test_a_credit_queued_while_no_exchange_runs_applies_at_the_next_start(
    sandex: Sandex, open_service: Open
) -> None:
    store = SqlExchangeStore(sandex.db)
    credit = store.add_credit(ALICE, "USDT", 250 * UNIT, "operator credit", NOW)
    trading = open_service(now=NOW + 5)
    assert trading.balances(ALICE) == {"USDT": (250 * UNIT, 0)}
    assert store.credit_applied(credit)


def test_a_credit_applied_but_never_stored_applies_after_a_crash(
    sandex: Sandex, open_service: Open
) -> None:
    store = SqlExchangeStore(sandex.db)
    crashed = new_service(sandex)
    crashed.start(NOW)
    store.add_credit(ALICE, "USDT", 250 * UNIT, "operator credit", NOW)
    assert crashed.apply_credits(store.pending_credits(), NOW) == 1
    crashed.store.close()  # killed before anything made it durable: nothing written
    del crashed

    trading = open_service(now=NOW + 5)
    assert trading.balances(ALICE) == {"USDT": (250 * UNIT, 0)}


# -- shocks --------------------------------------------------------------------------------


def test_a_shock_is_handed_over_once(sandex: Sandex) -> None:
    store = SqlExchangeStore(sandex.db)
    shock = store.add_shock("BTCUSDT", "0.7", 10_000, NOW)
    (pending,) = store.pending_shocks(NOW + 1)
    assert pending == (shock, "BTCUSDT", "0.7", 10_000, ShockKind.PRICE)
    assert store.pending_shocks(NOW + 2) == []


def test_a_crash_moves_the_reference_and_the_makers_quotes_follow(open_service: Open) -> None:
    trading = open_service(simulate=True, seed=11)
    sim = trading.makers
    assert sim is not None
    start = sim.reference(SYMBOL)
    trading.shock(SYMBOL, 0.7, 10_000, NOW)
    trading.tick(NOW + 10_000)
    assert abs(sim.reference(SYMBOL) / start - Decimal("0.7")) < Decimal("0.01")
    best_bid = trading.engine.best_bid(SYMBOL)
    assert best_bid is not None and best_bid.price < px(str(start * Decimal("0.71")))


# -- the key's risk policy ----------------------------------------------------------------


def _refused(trading: LocalExchange, order: PlaceOrder, policy: RiskPolicy, key_id: int = 5) -> str:
    """Place ``order`` under ``policy``; it must be refused with nothing changed."""
    balances = trading.balances(order.account)
    before = open_orders(trading, order.account)
    with pytest.raises(PolicyViolation) as refused:
        trading.place(order, NOW + 100, key_id=key_id, policy=policy)
    assert trading.balances(order.account) == balances
    assert open_orders(trading, order.account) == before
    return str(refused.value)


def test_a_symbol_allowlist_refuses_other_symbols(open_service: Open) -> None:
    trading = open_service()
    fund(trading, ALICE, "USDT", "10000")
    policy = RiskPolicy(symbols=frozenset({"ETHUSDT"}))
    msg = _refused(trading, buy("0.01", "50000", account=ALICE), policy)
    assert "has no operation privilege" in msg and "BTCUSDT" in msg
    eth = trading.symbols["ETHUSDT"]
    allowed = PlaceOrder(
        "ETHUSDT",
        ALICE,
        Side.BUY,
        OrderType.LIMIT,
        quantity=eth.quantity_units("0.1"),
        price=eth.price_units("3000"),
        time_in_force=TimeInForce.GTC,
    )
    assert trading.place(allowed, NOW + 100, key_id=5, policy=policy).rejected is None


def test_max_notional_refuses_a_bigger_order(open_service: Open) -> None:
    trading = open_service()
    fund(trading, ALICE, "USDT", "10000")
    policy = RiskPolicy(max_notional=Decimal(1000))
    msg = _refused(trading, buy("0.02", "60000", account=ALICE), policy)  # 1200 USDT
    assert "exceeds this API key's max order notional 1000" in msg
    placed(trading, buy("0.01", "60000", account=ALICE), NOW, key_id=5, policy=policy)


def test_max_notional_prices_a_market_order_at_the_best_offer(open_service: Open) -> None:
    trading = open_service(simulate=True, seed=11)
    fund(trading, ALICE, "USDT", "10000")
    ask = trading.engine.best_ask(SYMBOL)
    assert ask is not None
    policy = RiskPolicy(max_notional=Decimal(1000))
    # 0.02 BTC at ~60000 is ~1200 USDT: over the cap, though no price was sent
    assert "max order notional" in _refused(
        trading, market(Side.BUY, "0.02", account=ALICE), policy
    )
    result = trading.place(
        market(Side.BUY, "0.01", account=ALICE), NOW + 1, key_id=5, policy=policy
    )
    assert result.rejected is None and result.orders[0].status is OrderStatus.FILLED


def test_max_open_orders_counts_per_key_and_survives_a_restart(open_service: Open) -> None:
    trading = open_service()
    fund(trading, ALICE, "USDT", "10000")
    policy = RiskPolicy(max_open_orders=2)
    first = placed(trading, buy("0.01", "50000", account=ALICE), NOW, key_id=5, policy=policy)
    placed(trading, buy("0.01", "50001", account=ALICE), NOW, key_id=5, policy=policy)
    msg = _refused(trading, buy("0.01", "50002", account=ALICE), policy)
    assert "already has 2 open orders; its limit is 2" in msg
    # another key of the same account has its own count
    placed(trading, buy("0.01", "50003", account=ALICE), NOW, key_id=6, policy=policy)
    durable(trading)

    again = open_service(now=NOW + 1000)
    assert "already has 2 open orders" in _refused(
        again, buy("0.01", "50002", account=ALICE), policy
    )
    assert again.cancel(CancelOrder(SYMBOL, ALICE, first.order_id), NOW + 1001).rejected is None
    placed(again, buy("0.01", "50002", account=ALICE), NOW + 1002, key_id=5, policy=policy)


@pytest.mark.parametrize("mode", [Mode.CANCEL_ONLY, Mode.FROZEN])
def test_a_cancel_only_or_frozen_key_places_nothing_but_may_cancel(
    open_service: Open, mode: Mode
) -> None:
    trading = open_service()
    fund(trading, ALICE, "USDT", "10000")
    order = placed(trading, buy("0.01", "50000", account=ALICE), NOW, key_id=5)
    policy = RiskPolicy(mode=mode)
    msg = _refused(trading, buy("0.01", "50000", account=ALICE), policy)
    assert "has no operation privilege" in msg and mode.value in msg
    with pytest.raises(PolicyViolation):
        trading.check(buy("0.01", "50000", account=ALICE), NOW, key_id=5, policy=policy)
    assert trading.cancel(CancelOrder(SYMBOL, ALICE, order.order_id), NOW + 1).rejected is None


# -- the simulated market ------------------------------------------------------------------


def test_a_market_buy_fills_against_the_makers_and_pays_the_taker_fee(open_service: Open) -> None:
    trading = open_service(simulate=True, seed=11)
    fund(trading, ALICE, "USDT", "10000")
    order = placed(trading, market(Side.BUY, "0.05", account=ALICE), NOW + 1)
    assert order.status is OrderStatus.FILLED and order.executed == qty("0.05")
    assert order.fills and sum(f.quantity for f in order.fills) == qty("0.05")
    assert all(f.commission_asset == "BTC" for f in order.fills)
    fee = sum(f.commission for f in order.fills)
    assert fee == 5 * UNIT // 100_000  # 0.1 % of 0.05 BTC
    spent = order.cumulative_quote * 10 ** (8 - BTC.quote_scale)
    assert trading.balances(ALICE) == {
        "USDT": (10_000 * UNIT - spent, 0),
        "BTC": (5 * UNIT // 100 - fee, 0),
    }
    durable(trading)
    trades = trades_of(trading, ALICE, order.order_id)
    assert [t.trade_id for t in trades] == [f.trade_id for f in order.fills]
    assert all(t.seller in (MAKER, TAKER) and t.seller_fee == 0 for t in trades)
    assert sum(t.buyer_fee for t in trades) == fee


def test_a_restarted_market_keeps_the_users_funds_and_its_reference_price(
    open_service: Open,
) -> None:
    trading = open_service(simulate=True, seed=11)
    fund(trading, ALICE, "USDT", "10000")
    placed(trading, market(Side.BUY, "0.05", account=ALICE), NOW + 1)
    resting = placed(trading, buy("0.01", "40000", account=ALICE), NOW + 2)
    for i in range(1, 6):
        trading.tick(NOW + i * 500)
    durable(trading)
    assert trading.makers is not None
    reference = trading.makers.reference(SYMBOL)
    balances = trading.balances(ALICE)

    again = open_service(simulate=True, seed=11, now=NOW + 3000)
    assert again.balances(ALICE) == balances
    assert [o.order_id for o in open_orders(again, ALICE)] == [resting.order_id]
    assert again.makers is not None and again.makers.reference(SYMBOL) == reference
    assert again.engine.best_ask(SYMBOL) is not None  # the makers quote again
    nxt = placed(again, buy("0.01", "40000", account=ALICE), NOW + 3001)
    assert nxt.order_id > resting.order_id


def _agrees_with_its_minutes(trading: LocalExchange, now: int) -> None:
    """Every interval's current and recent candles are the aggregation of the 1m ones."""
    md = trading.market_data
    minutes = md.klines(SYMBOL, "1m", start=now - 4 * 3600_000, limit=1000, now=now)
    for interval in ("5m", "15m", "1h", "4h"):
        for candle in md.klines(SYMBOL, interval, start=minutes[0].open_time, now=now):
            parts = [m for m in minutes if candle.open_time <= m.open_time <= candle.close_time]
            traded = [m for m in parts if m.volume]
            assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
                traded[0].open,
                max(m.high for m in traded),
                min(m.low for m in traded),
                traded[-1].close,
                sum(m.volume for m in parts),
            ), interval
            assert candle.trades == sum(m.trades for m in parts)


def test_candles_agree_across_intervals_before_and_after_a_restart(open_service: Open) -> None:
    start = NOW + 37 * 60_000 + 1234  # mid-hour, as a server starts
    trading = open_service(simulate=True, seed=11, now=start)
    for i in range(1, 241):
        trading.tick(start + i * 500)
    durable(trading)
    later = start + 240 * 500
    _agrees_with_its_minutes(trading, later)
    assert trading.market_data.klines(SYMBOL, "1h", limit=1, now=later)[0].trades > 0

    again = open_service(simulate=True, seed=11, now=later + 60_000)
    for i in range(1, 121):
        again.tick(later + 60_000 + i * 500)
    _agrees_with_its_minutes(again, later + 120_000)


# -- a retried client order id -------------------------------------------------------------


def test_a_retried_client_order_id_never_places_twice_even_after_a_fill_and_a_restart(
    open_service: Open,
) -> None:
    """A client that got -1007 (execution status unknown) and sends the order again with
    the same newClientOrderId gets -2010 "Duplicate order sent." while the first one
    exists, open or filled, for RETRY_WINDOW_MS; canceling frees the id (the client knows)."""
    trading = open_service()
    fund(trading, ALICE, "USDT", "100000")
    fund(trading, BOB, "BTC", "1")
    placed(trading, sell("0.01", "60000", account=BOB), NOW)
    filled = placed(trading, buy("0.01", "60000", account=ALICE, cid="retry-1"), NOW + 1)
    assert filled.status is OrderStatus.FILLED
    again = trading.place(buy("0.01", "60000", account=ALICE, cid="retry-1"), NOW + 2)
    assert again.rejected == (-2010, "Duplicate order sent.")
    durable(trading)

    restarted = open_service(now=NOW + 1000)
    retried = restarted.place(buy("0.01", "60000", account=ALICE, cid="retry-1"), NOW + 1001)
    assert retried.rejected == (-2010, "Duplicate order sent.")
    assert [o for o in orders_of(restarted, ALICE)] == [(filled.order_id, OrderStatus.FILLED)]

    resting = placed(restarted, buy("0.01", "50000", account=ALICE, cid="mine"), NOW + 1002)
    restarted.cancel(CancelOrder(SYMBOL, ALICE, resting.order_id), NOW + 1003)
    placed(restarted, buy("0.01", "50000", account=ALICE, cid="mine"), NOW + 1004)

    later = NOW + 1 + RETRY_WINDOW_MS
    placed(restarted, buy("0.001", "40000", account=ALICE, cid="retry-1"), later)

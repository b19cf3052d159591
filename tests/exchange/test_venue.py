"""The venue: orders hold their funds before they match, trades settle with fees,
what an order still holds comes back when it ends, and a restore rebuilds it all."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_support import NOW, SYMBOL, buy, market, px, qty, sell, stop
from sandex.exchange import CancelAll, CancelOrder, OrderStatus, OrderType, Side, default_symbols
from sandex.exchange.venue import INSUFFICIENT_BALANCE, MAKER, Venue

USDT = 10**8  # one USDT in ledger units
BTC_UNIT = 10**8


def funded(*, usdt: int = 10_000, btc: str = "1") -> Venue:
    venue = Venue(default_symbols())
    for account in (1, 2):
        venue.ledger.credit(account, "USDT", usdt * USDT)
        venue.ledger.credit(account, "BTC", int(Decimal(btc) * BTC_UNIT))
    return venue


def test_a_limit_buy_locks_price_times_quantity_and_a_cancel_frees_it():
    venue = funded()
    placed = venue.place(buy("0.1", "50000", account=1), NOW)
    assert placed.rejected is None
    assert venue.ledger.balance(1, "USDT").locked == 5_000 * USDT
    assert venue.ledger.balance(1, "USDT").free == 5_000 * USDT
    order_id = placed.orders[0].order_id
    canceled = venue.cancel(CancelOrder(SYMBOL, 1, order_id), NOW)
    assert canceled.orders[0].status is OrderStatus.CANCELED
    assert venue.ledger.balance(1, "USDT").free == 10_000 * USDT
    assert venue.ledger.balance(1, "USDT").locked == 0


def test_an_order_the_account_cannot_pay_for_is_refused_and_changes_nothing():
    venue = funded(usdt=100)
    placed = venue.place(buy("0.1", "50000", account=1), NOW)
    assert placed.rejected == INSUFFICIENT_BALANCE
    assert placed.rejected.msg == "Account has insufficient balance for requested action."
    assert venue.ledger.balance(1, "USDT").free == 100 * USDT
    assert venue.engine.open_orders(SYMBOL) == []
    assert not venue.pending()


def test_a_trade_moves_both_assets_and_takes_maker_and_taker_fees():
    venue = funded()
    venue.place(sell("0.1", "50000", account=2), NOW)  # maker
    taken = venue.place(buy("0.1", "50000", account=1), NOW)  # taker
    order = taken.orders[0]
    assert order.status is OrderStatus.FILLED
    assert order.executed == qty("0.1")
    [fill] = order.fills
    # the buyer (taker) pays 0.1 % of the BTC it receives; the seller of the USDT
    assert fill.commission == BTC_UNIT // 10 // 1000
    assert fill.commission_asset == "BTC"
    assert venue.ledger.balance(1, "BTC").free == BTC_UNIT + BTC_UNIT // 10 - fill.commission
    assert venue.ledger.balance(1, "USDT").free == 5_000 * USDT
    assert venue.ledger.balance(2, "USDT").free == 10_000 * USDT + 5_000 * USDT - 5 * USDT
    assert venue.ledger.balance(2, "BTC").locked == 0
    assert venue.ledger.balance(-2, "USDT").free == 5 * USDT  # the fees account
    assert all(total == 0 for total in venue.ledger.totals().values())


def test_a_limit_buy_filled_below_its_price_gets_the_difference_back():
    venue = funded()
    venue.place(sell("0.1", "40000", account=2), NOW)
    venue.place(buy("0.1", "50000", account=1), NOW)
    assert venue.ledger.balance(1, "USDT").locked == 0
    assert venue.ledger.balance(1, "USDT").free == 6_000 * USDT


def test_a_market_buy_by_quantity_holds_exactly_what_the_book_will_take():
    venue = funded()
    venue.place(sell("0.05", "40000", account=2), NOW)
    venue.place(sell("0.05", "41000", account=2), NOW)
    bought = venue.place(market(Side.BUY, "0.2", account=1), NOW)
    order = bought.orders[0]
    assert order.status is OrderStatus.EXPIRED  # the book ran out after 0.1
    assert order.executed == qty("0.1")
    assert venue.ledger.balance(1, "USDT").free == (10_000 - 2_000 - 2_050) * USDT
    assert venue.ledger.balance(1, "USDT").locked == 0


def test_a_market_sell_for_a_quote_amount_locks_the_base_it_will_sell():
    venue = funded()
    venue.place(buy("0.1", "50000", account=2), NOW)
    sold = venue.place(market(Side.SELL, quote="2500", account=1), NOW)
    order = sold.orders[0]
    assert order.executed == qty("0.05")
    assert venue.ledger.balance(1, "BTC").free == BTC_UNIT - BTC_UNIT // 20
    assert venue.ledger.balance(1, "BTC").locked == 0


def test_a_stop_market_buy_never_spends_more_than_it_holds_when_the_market_gaps():
    venue = funded(usdt=10_000)
    venue.place(sell("0.01", "50000", account=2), NOW)
    venue.place(buy("0.01", "50000", account=1), NOW)  # last price 50000
    order = stop(OrderType.STOP_LOSS, Side.BUY, "0.1", "51000", account=1)
    parked = venue.place(order, NOW).orders[0]
    assert parked.working is False
    # holds 0.1 * 51000 plus 5 %
    assert parked.held == int(Decimal("5100") * Decimal("1.05") * USDT)
    # the market gaps to 60000: the stop triggers, but the hold only buys part
    venue.place(sell("0.5", "60000", account=2), NOW)
    venue.place(sell("0.001", "51000", account=2), NOW)
    venue.place(buy("0.001", "51000", account=1), NOW)  # trades at 51000: triggers the stop
    record = venue.orders.get((SYMBOL, parked.order_id)) or parked
    assert record.status is OrderStatus.EXPIRED
    spent = record.cumulative_quote * 10  # quote units (1e-7) to ledger units (1e-8)
    assert 0 < spent <= int(Decimal("5100") * Decimal("1.05") * USDT)
    assert record.executed < qty("0.1")
    assert venue.ledger.balance(1, "USDT").locked == 0
    assert all(total == 0 for total in venue.ledger.totals().values())


def test_cancel_all_releases_every_hold_including_pending_stops():
    venue = funded()
    venue.place(buy("0.01", "40000", account=1), NOW)
    venue.place(sell("0.01", "60000", account=1), NOW)
    venue.place(stop(OrderType.STOP_LOSS_LIMIT, Side.SELL, "0.01", "39000", "38000"), NOW)
    result = venue.cancel_all(CancelAll(SYMBOL, 1), NOW)
    assert [o.status for o in result.orders] == [OrderStatus.CANCELED] * 3
    assert venue.ledger.balance(1, "USDT").locked == 0
    assert venue.ledger.balance(1, "BTC").locked == 0


def test_the_drained_changes_restore_an_identical_venue():
    venue = funded()
    venue.place(sell("0.3", "50000", account=2), NOW)
    venue.place(buy("0.1", "50000", account=1), NOW)
    assert venue.place(buy("0.1", "45000", account=1, cid="mine"), NOW).rejected is None
    venue.place(stop(OrderType.STOP_LOSS_LIMIT, Side.SELL, "0.05", "44000", "43000"), NOW)
    venue.ledger.credit(MAKER, "BTC", BTC_UNIT)
    maker = venue.place(sell("0.5", "70000", account=MAKER), NOW)  # not kept in storage
    assert maker.rejected is None
    stored_orders = {}
    changes = venue.drain()
    stored_orders.update(changes.orders)
    balances = [(a, asset, b.free, b.locked) for (a, asset), b in _all_balances(venue)]
    books = [(s, *venue.book_state(s)) for s in venue.symbols]

    again = Venue(default_symbols())
    again.restore(balances=balances, orders=stored_orders.values(), books=books)
    for account in (1, 2):
        assert again.ledger.balances(account) == venue.ledger.balances(account)
    assert again.ledger.balance(MAKER, "BTC").locked == 0
    mine = [(o.order_id, o.remaining) for o in again.engine.open_orders(SYMBOL, 1)]
    assert mine == [(o.order_id, o.remaining) for o in venue.engine.open_orders(SYMBOL, 1)]
    assert again.order_by_client_id(SYMBOL, 1, "mine") is not None
    assert len(again.engine.pending_stops(SYMBOL, 1)) == 1
    # the next order continues the numbering
    nxt = again.place(buy("0.01", "1000", account=1), NOW).orders[0]
    assert nxt.order_id == venue.book_state(SYMBOL)[0]


def _all_balances(venue: Venue):
    return list(venue.ledger._balances.items())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 2, MAKER]),
            st.sampled_from(["limit", "market", "quote", "cancel", "stop"]),
            st.booleans(),
            st.integers(1, 30),
            st.integers(-20, 20),
        ),
        max_size=60,
    )
)
def test_balances_always_sum_to_zero_and_locked_equals_what_open_orders_hold(ops):
    venue = funded(usdt=50_000, btc="2")
    venue.ledger.credit(MAKER, "USDT", 10**6 * USDT)
    venue.ledger.credit(MAKER, "BTC", 100 * BTC_UNIT)
    for account, kind, is_buy, size, offset in ops:
        side = Side.BUY if is_buy else Side.SELL
        amount = f"{size / 100:.2f}"
        price = str(50_000 + offset * 100)
        if kind == "limit":
            venue.place((buy if is_buy else sell)(amount, price, account=account), NOW)
        elif kind == "market":
            venue.place(market(side, amount, account=account), NOW)
        elif kind == "quote":
            venue.place(market(side, quote=str(size * 100), account=account), NOW)
        elif kind == "stop":
            venue.place(
                stop(
                    OrderType.STOP_LOSS,
                    side,
                    amount,
                    str(50_000 + (abs(offset) + 1) * 100 * (1 if is_buy else -1)),
                    account=account,
                ),
                NOW,
            )
        else:
            venue.cancel_all(CancelAll(SYMBOL, account), NOW)
        assert all(t == 0 for t in venue.ledger.totals().values())
        assert venue.ledger.locked_by_holds() == {
            k: b.locked for k, b in venue.ledger._balances.items() if b.locked
        }
        for (acct, _asset), b in venue.ledger._balances.items():
            if acct > 0:
                assert b.free >= 0 and b.locked >= 0
        for record in venue.orders.values():
            if record.is_open:
                assert record.held == venue.ledger.held(record.key)
    assert px("1") == 100

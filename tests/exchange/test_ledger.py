"""The double-entry ledger: balanced entries, holds for open orders, fees."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandex.exchange.errors import InsufficientBalance, LedgerError
from sandex.exchange.ledger import FEES, FUNDING, Balance, Ledger, fee_units

ALICE, BOB = 1, 2
BTC = 100_000_000  # one BTC in 1e-8 units


def test_credit_comes_from_funding_and_balances() -> None:
    ledger = Ledger()
    entry = ledger.credit(ALICE, "USDT", 10_000 * BTC)
    assert ledger.balance(ALICE, "USDT") == Balance(10_000 * BTC, 0)
    assert ledger.balance(FUNDING, "USDT").free == -10_000 * BTC
    assert sum(p.amount for p in entry.postings) == 0
    assert ledger.totals() == {"USDT": 0}


def test_a_trade_moves_held_funds_and_takes_fees() -> None:
    ledger = Ledger()
    ledger.credit(ALICE, "USDT", 70_000 * BTC)
    ledger.credit(BOB, "BTC", 2 * BTC)
    ledger.hold(("BTCUSDT", 1), ALICE, "USDT", 60_000 * BTC)  # buy 1 BTC at 60,000
    ledger.hold(("BTCUSDT", 2), BOB, "BTC", BTC)  # sell 1 BTC
    rate = Decimal("0.001")
    ledger.settle(
        buy=("BTCUSDT", 1),
        sell=("BTCUSDT", 2),
        base_asset="BTC",
        quote_asset="USDT",
        base=BTC // 2,
        quote=29_000 * BTC,  # half, at a better price than the buyer's limit
        buyer_fee=fee_units(BTC // 2, rate),
        seller_fee=fee_units(29_000 * BTC, rate),
    )
    assert ledger.balance(ALICE, "BTC") == Balance(BTC // 2 - BTC // 2000, 0)
    assert ledger.balance(ALICE, "USDT") == Balance(10_000 * BTC, 31_000 * BTC)
    assert ledger.balance(BOB, "USDT") == Balance(29_000 * BTC - 29 * BTC, 0)
    assert ledger.balance(BOB, "BTC") == Balance(BTC, BTC // 2)
    assert ledger.balance(FEES, "USDT").free == 29 * BTC
    # the buy order ends: what it still holds (incl. the price improvement) is released
    ledger.release(("BTCUSDT", 1))
    assert ledger.balance(ALICE, "USDT") == Balance(41_000 * BTC, 0)
    assert ledger.totals() == {"USDT": 0, "BTC": 0}


def test_insufficient_balance_is_binances_error_and_changes_nothing() -> None:
    ledger = Ledger()
    ledger.credit(ALICE, "USDT", 100)
    with pytest.raises(InsufficientBalance) as caught:
        ledger.hold(("X", 1), ALICE, "USDT", 101)
    assert caught.value.code == -2010
    assert caught.value.msg == "Account has insufficient balance for requested action."
    assert ledger.balance(ALICE, "USDT") == Balance(100, 0)
    assert ledger.holds() == {}


def test_rules_the_ledger_keeps() -> None:
    ledger = Ledger()
    ledger.credit(ALICE, "USDT", 100)
    ledger.credit(BOB, "BTC", 100)
    ledger.hold("buy", ALICE, "USDT", 50)
    ledger.hold("sell", BOB, "BTC", 10)
    with pytest.raises(LedgerError):
        ledger.hold("buy", ALICE, "USDT", 1)  # one hold per order
    with pytest.raises(LedgerError):
        ledger.credit(ALICE, "USDT", 0)
    with pytest.raises(LedgerError):  # more than the buy holds
        ledger.settle(
            buy="buy",
            sell="sell",
            base_asset="BTC",
            quote_asset="USDT",
            base=1,
            quote=51,
            buyer_fee=0,
            seller_fee=0,
        )
    with pytest.raises(LedgerError):  # wrong way round
        ledger.settle(
            buy="sell",
            sell="buy",
            base_asset="BTC",
            quote_asset="USDT",
            base=1,
            quote=1,
            buyer_fee=0,
            seller_fee=0,
        )
    assert ledger.release("unknown") is None


def test_fee_rounds_up_to_a_unit() -> None:
    assert fee_units(1000, Decimal("0.001")) == 1
    assert fee_units(1001, Decimal("0.001")) == 2
    assert fee_units(0, Decimal("0.001")) == 0


_op = st.one_of(
    st.tuples(
        st.just("credit"),
        st.sampled_from([ALICE, BOB]),
        st.sampled_from(["BTC", "USDT"]),
        st.integers(1, 10**6),
    ),
    st.tuples(st.just("buy"), st.integers(1, 10**5)),
    st.tuples(st.just("sell"), st.integers(1, 10**5)),
    st.tuples(st.just("trade"), st.integers(1, 10**4), st.integers(1, 10**4)),
    st.tuples(st.just("end"), st.integers(0, 20)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_op, max_size=60))
def test_postings_sum_to_zero_and_locked_equals_what_open_orders_hold(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    ledger = Ledger()
    open_buys: list[int] = []
    open_sells: list[int] = []
    next_id = 0
    for op in ops:
        kind = op[0]
        before = {(a, s): ledger.balance(a, s) for a in (ALICE, BOB) for s in ("BTC", "USDT")}
        try:
            if kind == "credit":
                ledger.credit(op[1], op[2], op[3])
            elif kind == "buy":
                next_id += 1
                ledger.hold(next_id, ALICE, "USDT", op[1])
                open_buys.append(next_id)
            elif kind == "sell":
                next_id += 1
                ledger.hold(next_id, BOB, "BTC", op[1])
                open_sells.append(next_id)
            elif kind == "trade" and open_buys and open_sells:
                buy, sell = open_buys[0], open_sells[0]
                quote = min(op[1], ledger.held(buy))
                base = min(op[2], ledger.held(sell))
                if quote and base:
                    ledger.settle(
                        buy=buy,
                        sell=sell,
                        base_asset="BTC",
                        quote_asset="USDT",
                        base=base,
                        quote=quote,
                        buyer_fee=base // 1000,
                        seller_fee=quote // 1000,
                    )
            elif kind == "end":
                orders = open_buys + open_sells
                if orders:
                    key = orders[op[1] % len(orders)]
                    ledger.release(key)
                    (open_buys if key in open_buys else open_sells).remove(key)
        except InsufficientBalance:
            after = {(a, s): ledger.balance(a, s) for a in (ALICE, BOB) for s in ("BTC", "USDT")}
            assert after == before  # a refusal changes nothing
        assert all(v == 0 for v in ledger.totals().values())
        for account in (ALICE, BOB):
            for asset in ("BTC", "USDT"):
                b = ledger.balance(account, asset)
                assert b.free >= 0 and b.locked >= 0
                held = sum(r for a, s, r in ledger.holds().values() if (a, s) == (account, asset))
                assert b.locked == held

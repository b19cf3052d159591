"""The broker codec carries the account events (order updates with their order, fill and
prevented match; balances; credits) and comes back with them equal."""

from __future__ import annotations

from exchange_support import NOW, SYMBOL, buy, sell
from sandex.broker.codec import decode, encode
from sandex.exchange import SelfTradePrevention, default_symbols
from sandex.exchange.account_events import (
    AccountEvent,
    BalanceDelta,
    BalancesChanged,
    Execution,
    ListStatus,
    OrderUpdate,
)
from sandex.exchange.order_lists import ContingencyType, OrderList
from sandex.exchange.venue import Venue

UNIT = 10**8


def test_account_events_come_back_equal() -> None:
    venue = Venue(default_symbols())
    for account in (1, 2):
        venue.ledger.credit(account, "USDT", 100_000 * UNIT)
        venue.ledger.credit(account, "BTC", UNIT)
    updates: list[OrderUpdate] = []
    venue.on_order_update(updates.append)
    venue.place(sell("0.5", "50000", account=1), NOW)
    venue.place(buy("0.2", "50000", account=2), NOW + 1)
    venue.place(buy("0.1", "50000", account=1, stp=SelfTradePrevention.EXPIRE_TAKER), NOW + 2)
    kinds = {u.execution for u in updates}
    assert kinds == {Execution.NEW, Execution.TRADE, Execution.TRADE_PREVENTION}
    assert any(u.prevented is not None for u in updates)
    events: list[AccountEvent] = [
        *(u._replace(execution_id=n, expiry_reason="OCO_TRIGGER") for n, u in enumerate(updates)),
        ListStatus(
            1, NOW, OrderList(3, ContingencyType.OCO, SYMBOL, 1, "l", NOW, (1, 2)), True, ["a", "b"]
        ),
        BalancesChanged(1, NOW, [("BTC", 5, 6), ("USDT", 7, 0)]),
        BalanceDelta(2, "BTC", -UNIT, NOW),
    ]
    back = decode(encode(events))
    assert back == events
    assert all(type(b) is type(e) for b, e in zip(back, events, strict=True))
    assert back[0].order.symbol == SYMBOL and type(back[0].execution) is Execution

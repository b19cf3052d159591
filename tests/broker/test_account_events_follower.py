"""Account events over real Redis Streams: the engine publishes each committed batch's
order updates and balances with its market events, and a gateway's MarketFollower hands
them to its ``publish_accounts`` in order, while its read model follows the market."""

from __future__ import annotations

import asyncio
import time

from exchange_support import NOW, SYMBOL, buy, sell
from sandex.bootstrap import Sandex
from sandex.broker.engine_server import EngineServer
from sandex.broker.redis_streams import (
    MarketFollower,
    RedisEngineLink,
    StreamNames,
    connect,
    connect_gateway,
)
from sandex.exchange import MarketData
from sandex.exchange.account_events import AccountEvent, BalancesChanged, OrderUpdate
from sandex.service.engine_commands import Place, Watch
from sandex.service.market_feed import MarketFeed, MarketReadModel
from sandex.storage.exchange_store import SqlExchangeStore
from support import REDIS_URL
from trading_support import new_exchange

ALICE, BOB = 1, 2
UNIT = 10**8


class FixedClock:
    def now(self) -> int:
        return NOW


def test_a_gateway_hands_the_engines_account_events_to_publish_accounts(
    sandex: Sandex, redis_namespace: str
) -> None:
    store = SqlExchangeStore(sandex.db)
    store.add_credit(ALICE, "USDT", 100_000 * UNIT, "credit", NOW)
    store.add_credit(BOB, "BTC", 10 * UNIT, "credit", NOW)
    store.add_credit(77, "BTC", 10 * UNIT, "credit", NOW)
    published: list[list[AccountEvent]] = []

    async def main() -> None:
        core = new_exchange(sandex).core
        core.start(NOW)
        client = connect(REDIS_URL)
        names = StreamNames(redis_namespace)
        feed = MarketFeed(core.venue.engine, core.symbols, now=NOW)
        core.venue.on_trade(feed.record)
        server = EngineServer(core, feed, client, names, FixedClock())
        gateway = connect_gateway(REDIS_URL)
        link = RedisEngineLink(gateway, names, timeout_s=5)
        link.start()
        serving = asyncio.get_running_loop().create_task(server.run())
        model = MarketReadModel(core.symbols, MarketData(core.symbols.values()))
        follower = MarketFollower(
            gateway, names, link, model, history=store, publish_accounts=published.append
        )
        try:
            follower.start()
            deadline = time.monotonic() + 5
            while not model.ready:
                assert time.monotonic() < deadline, "the gateway never loaded the books"
                await asyncio.sleep(0.02)
            # the engine makes account events only for watched accounts (a subscription
            # somewhere): Alice and Bob are, 77 is not
            await link.submit(Watch((ALICE, BOB), NOW + 60_000), NOW)
            unwatched = await link.submit(Place(sell("0.1", "51000", account=77)), NOW + 1)
            assert unwatched.orders and unwatched.rejected is None  # it rests, unheard
            maker = await link.submit(Place(sell("0.5", "50000", account=BOB)), NOW + 1)
            await link.submit(Place(buy("0.2", "50000", account=ALICE)), NOW + 2)
            while sum(isinstance(e, OrderUpdate) for b in published for e in b) < 4:
                assert time.monotonic() < deadline, f"account events never came: {published}"
                await asyncio.sleep(0.02)
            events = [e for batch in published for e in batch]
            updates = [e for e in events if isinstance(e, OrderUpdate)]
            assert [(u.account, u.execution.value, u.order.status.value) for u in updates] == [
                (BOB, "NEW", "NEW"),
                (ALICE, "NEW", "NEW"),
                (ALICE, "TRADE", "FILLED"),
                (BOB, "TRADE", "PARTIALLY_FILLED"),
            ]
            assert updates[0].order.order_id == maker.orders[0].order_id
            ids = [u.execution_id for u in updates]
            assert ids == sorted(ids) and len(set(ids)) == 4
            assert all(e.account in (ALICE, BOB) for e in events)
            while not any(
                isinstance(e, BalancesChanged) and e.account == ALICE for b in published for e in b
            ):
                assert time.monotonic() < deadline, "no balances for Alice"
                await asyncio.sleep(0.02)
            alice = [
                e
                for b in published
                for e in b
                if isinstance(e, BalancesChanged) and e.account == ALICE
            ][-1]
            assert {a: (f, lk) for a, f, lk in alice.balances} == core.balances(ALICE)
            while model.last_price(SYMBOL) is None:  # the market still reaches the model
                assert time.monotonic() < deadline, "the read model never saw the trade"
                await asyncio.sleep(0.02)
        finally:
            follower.stop()
            serving.cancel()
            link.stop()
            await asyncio.sleep(0.01)
            core.close()
            await client.aclose()

    asyncio.run(main())

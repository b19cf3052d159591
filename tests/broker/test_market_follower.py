"""A gateway's market read model over real Redis Streams: it starts from the stored
history (trades and candles the engine committed before the gateway came up) and then
follows the engine's events, so it answers trades and klines as the engine's process
does, each trade counted once."""

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
from sandex.service.engine_commands import Place
from sandex.service.market_feed import MarketFeed, MarketReadModel
from sandex.storage.exchange_store import SqlExchangeStore
from support import REDIS_URL
from trading_support import new_exchange

ALICE, BOB = 1, 2
UNIT = 10**8


class FixedClock:
    def now(self) -> int:
        return NOW


def test_a_gateway_starts_from_storage_and_then_follows_the_engine(
    sandex: Sandex, redis_namespace: str
) -> None:
    store = SqlExchangeStore(sandex.db)
    store.add_credit(ALICE, "USDT", 100_000 * UNIT, "credit", NOW)
    store.add_credit(BOB, "BTC", 10 * UNIT, "credit", NOW)

    async def cross(link: RedisEngineLink, at: int, price: str) -> None:
        await link.submit(Place(sell("0.01", price, account=BOB)), at)
        await link.submit(Place(buy("0.01", price, account=ALICE)), at)

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
        follower = MarketFollower(gateway, names, link, model, history=store)
        try:
            for i in range(5):  # before the gateway starts: it reads these from storage
                await cross(link, NOW + i * 20_000, f"{60_000 + i}")
            follower.start()
            for i in range(5, 8):  # while it follows the engine's events
                await cross(link, NOW + i * 20_000, f"{60_000 + i}")
            deadline = time.monotonic() + 5
            engine_md = core.market_data
            while model.next_trade_id(SYMBOL) <= engine_md.recent_trades(SYMBOL, 1)[0].id:
                assert time.monotonic() < deadline, "the gateway never caught up"
                await asyncio.sleep(0.02)
            now = NOW + 8 * 20_000
            gateway_md = model.market_data
            assert gateway_md.recent_trades(SYMBOL, 100) == engine_md.recent_trades(SYMBOL, 100)
            assert len(gateway_md.recent_trades(SYMBOL, 100)) == 8
            for interval in ("1s", "1m", "1h"):
                assert gateway_md.klines(SYMBOL, interval, now=now) == engine_md.klines(
                    SYMBOL, interval, now=now
                )
            assert gateway_md.ticker(SYMBOL, now) == engine_md.ticker(SYMBOL, now)
        finally:
            follower.stop()
            serving.cancel()
            link.stop()
            await asyncio.sleep(0.01)
            core.close()
            await client.aclose()

    asyncio.run(main())

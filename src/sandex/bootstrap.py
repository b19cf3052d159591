"""The composition root: the only module that knows both the service layer and storage.

``open_sandex(settings)`` builds everything; the CLI and the HTTP app receive what it
builds. Nothing happens at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import redis
from limits.storage import RedisStorage, Storage
from sqlalchemy import Engine

from sandex.accounts import PasswordHasher
from sandex.broker.redis_streams import (
    MarketFollower,
    RedisEngineLink,
    StreamNames,
    connect_gateway,
)
from sandex.broker.redis_streams import connect as connect_broker
from sandex.config import ConfigError, Settings
from sandex.exchange import default_symbols
from sandex.exchange.marketdata import MarketData
from sandex.exchange.money import ASSET_DECIMALS
from sandex.exchange.symbols import symbols_by_name
from sandex.exchange.venue import Venue
from sandex.http.absent_markets import routes as absent_market_routes
from sandex.http.account_info import routes as account_info_routes
from sandex.http.binance import routes as binance_routes
from sandex.http.capital import routes as capital_routes
from sandex.http.client_ip import ClientIpResolver, parse_networks
from sandex.http.gateway import Gateway, Services
from sandex.http.management import management_app
from sandex.http.market_data import routes as market_data_routes
from sandex.http.order_lists import routes as order_list_routes
from sandex.http.ratelimit import LocalStorage, RateLimiter, RateLimits
from sandex.http.spot import routes as spot_routes
from sandex.http.tickers import routes as ticker_routes
from sandex.runtime import BackgroundWork, EngineParts, SystemClock, tune_gc
from sandex.service import (
    ActivityLog,
    AuditService,
    Authenticator,
    KeyCache,
    KeyPolicyConfig,
    KeyService,
    MasterKeyRotation,
    MemoryReplayGuard,
    UserService,
)
from sandex.service.account_streams import AccountStreams
from sandex.service.exchange_core import ExchangeCore, LocalEngineLink
from sandex.service.journal import Durability
from sandex.service.keyring import KeyringHolder, ServerSecrets, load_server_secrets
from sandex.service.keywatch import KeyChangeWatcher
from sandex.service.local_market import DeliveringLink, LocalMarket
from sandex.service.market_feed import MarketReadModel
from sandex.service.market_streams import MarketStreams
from sandex.service.operator import ExchangeOperator
from sandex.service.ports import KeyringSource, ReplayGuard
from sandex.service.sessions import SessionService
from sandex.service.trading import EngineReads, StoredReads, Trading
from sandex.storage import (
    MASTER_KEY_FILE,
    EnvKeyringSource,
    FileKeyringSource,
    SqlUnitOfWorkFactory,
    make_engine,
    sqlite_url,
    upgrade,
)
from sandex.storage.audit_digests import DigestDirectory
from sandex.storage.engine_lock import EngineLock
from sandex.storage.exchange_store import SqlExchangeStore
from sandex.storage.redis_state import RedisReplayGuard, request_gate

__all__ = [
    "Sandex",
    "open_sandex",
    "build_gateway",
    "build_core",
    "engine_parts",
    "app_from_env",
]

_log = logging.getLogger(__name__)


@dataclass
class Sandex:
    """Everything a running Sandex needs, wired together."""

    settings: Settings
    db: Engine
    """The database (SQLAlchemy's engine; not the exchange's matching engine)."""
    uow: SqlUnitOfWorkFactory
    keyring: KeyringHolder
    secrets: ServerSecrets
    cache: KeyCache
    activity: ActivityLog
    users: UserService
    keys: KeyService
    auth: Authenticator
    audit: AuditService
    master_keys: MasterKeyRotation
    sessions: SessionService
    key_watch: KeyChangeWatcher
    operator: ExchangeOperator
    background: BackgroundWork
    redis: Any = None
    clock: SystemClock = field(default_factory=SystemClock)

    def close(self) -> None:
        """Stop the background work (writing what it has queued), release the database."""
        try:
            self.background.stop()
        finally:
            self.db.dispose()
            if self.redis is not None:
                self.redis.close()

    def __enter__(self) -> Sandex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def keyring_source(settings: Settings) -> KeyringSource:
    if settings.master_key:
        return EnvKeyringSource(settings.master_key)
    return FileKeyringSource(settings.data_dir / MASTER_KEY_FILE)


def open_sandex(settings: Settings) -> Sandex:
    """Create the data directory, migrate the database, unseal the server secrets, wire up."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = settings.database_url or sqlite_url(settings.data_dir)
    engine = make_engine(url, schema=settings.database_schema)
    try:
        upgrade(engine)
        holder = KeyringHolder(keyring_source(settings))
        bare = SqlUnitOfWorkFactory(engine)
        server_secrets = load_server_secrets(bare, holder)
    except BaseException:
        engine.dispose()
        raise
    uow = SqlUnitOfWorkFactory(engine, server_secrets.audit_key)
    cache = KeyCache()
    activity = ActivityLog(uow)
    users = UserService(
        uow=uow,
        hasher=PasswordHasher(settings.password_hash),
        keyring=holder,
        pepper=server_secrets.pepper,
        starting_balance=[
            (asset, int(amount.scaleb(ASSET_DECIMALS)))
            for asset, amount in settings.starting_balance
        ],
        signup=settings.signup,
        signup_per_hour=settings.signup_per_hour,
    )
    keys = KeyService(
        uow=uow,
        keyring=holder,
        pepper=server_secrets.pepper,
        cache=cache,
        users=users,
        config=KeyPolicyConfig(unrestricted_trade_days=settings.unrestricted_trade_days),
    )
    redis_client = None
    replay: ReplayGuard = MemoryReplayGuard()
    if settings.redis_url:
        redis_client = redis.Redis.from_url(settings.redis_url)
        replay = RedisReplayGuard(redis_client, namespace=settings.redis_namespace)
    auth = Authenticator(
        uow=uow,
        keyring=holder,
        pepper=server_secrets.pepper,
        cache=cache,
        replay=replay,
        activity=activity,
    )
    clock = SystemClock()
    audit = AuditService(
        uow=uow,
        audit_key=server_secrets.audit_key,
        digests=DigestDirectory(settings.digest_dir),
    )
    key_watch = KeyChangeWatcher(uow, cache)
    return Sandex(
        settings=settings,
        db=engine,
        uow=uow,
        keyring=holder,
        secrets=server_secrets,
        cache=cache,
        activity=activity,
        users=users,
        keys=keys,
        auth=auth,
        audit=audit,
        master_keys=MasterKeyRotation(uow=uow, keyring=holder),
        sessions=SessionService(uow=uow, users=users, pepper=server_secrets.pepper),
        key_watch=key_watch,
        operator=ExchangeOperator(SqlExchangeStore(engine)),
        background=BackgroundWork(settings, activity, key_watch, cache, audit, clock),
        redis=redis_client,
        clock=clock,
    )


def build_gateway(sx: Sandex) -> Gateway:
    """The ASGI app over an opened Sandex: Binance routes, management API, rate limits."""
    s = sx.settings
    storage: Storage
    gate = None
    if s.redis_url:
        storage = RedisStorage(s.redis_url, key_prefix=f"{s.redis_namespace}:limits")
        gate = request_gate(s.redis_url, namespace=s.redis_namespace)
    else:
        storage = LocalStorage()
    try:
        trusted = parse_networks(s.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"SANDEX_TRUSTED_PROXIES: {exc}") from None
    services = Services(
        auth=sx.auth,
        keys=sx.keys,
        users=sx.users,
        sessions=sx.sessions,
        audit=sx.audit,
        activity=sx.activity,
        clock=sx.clock,
        limiter=RateLimiter(
            storage,
            RateLimits(
                ip_weight_1m=s.ip_weight_1m,
                key_weight_1m=s.key_weight_1m,
                orders_10s=s.orders_10s,
                orders_1d=s.orders_1d,
            ),
            gate=gate,
        ),
        ip=ClientIpResolver(trusted, s.forwarded_header),
        on_startup=[sx.background.start],
        on_shutdown=[sx.close],
    )
    routes = binance_routes
    if s.exchange:
        if s.engine == "remote":
            services.exchange = remote_exchange(sx, services)
        else:
            services.exchange = embedded_exchange(sx, services)
        routes = binance_routes.merged(
            spot_routes,
            market_data_routes,
            capital_routes,
            absent_market_routes,
            account_info_routes,
            ticker_routes,
            order_list_routes,
        )
    return Gateway(services, routes, management_app(services))


def build_core(sx: Sandex) -> ExchangeCore:
    """The engine side of the spot exchange over this Sandex's database (not started)."""
    s = sx.settings
    venue = Venue(default_symbols(), maker_fee=s.maker_fee, taker_fee=s.taker_fee)
    durability: Durability = "transaction" if s.durability == "transaction" else "group"
    return ExchangeCore(
        venue,
        SqlExchangeStore(sx.db),
        durability=durability,
        simulate=s.simulate,
        seed=s.market_seed,
    )


def engine_lock(sx: Sandex) -> EngineLock:
    s = sx.settings
    return EngineLock(sx.db, s.data_dir, s.database_schema)


def embedded_exchange(sx: Sandex, services: Services) -> Trading:
    """The exchange in this process: the gateway reaches the engine by a call. The engine
    starts with the server (rebuilt from storage) and writes what is left as it stops.
    Public market data comes from a read model fed by the engine's committed events, as
    in a gateway of a remote engine."""
    core = build_core(sx)
    lock = engine_lock(sx)
    accounts = AccountStreams(core.symbols, sx.clock)
    services.accounts = accounts
    market = LocalMarket(core, publish_accounts=accounts.publish)
    link = DeliveringLink(LocalEngineLink(core), market)
    accounts.link = link
    streams = MarketStreams(core.symbols, market.model, sx.clock)
    services.streams = streams

    def start() -> None:
        lock.acquire()
        now = sx.clock.now()
        core.start(now)
        market.start(now)
        tune_gc()
        core.run_background(sx.clock, sx.settings.market_tick_ms)
        market.run_background()
        streams.start()
        accounts.start()

    def stop() -> None:
        try:
            accounts.stop()
            streams.stop()
            market.stop()
            core.close()
        finally:
            lock.release()

    services.on_startup.insert(0, start)  # the engine's lock first: nothing else starts without it
    services.on_shutdown.insert(0, stop)
    venue = core.venue
    return Trading(
        link,
        EngineReads(core),
        venue.symbols,
        maker_fee=venue.maker_fee,
        taker_fee=venue.taker_fee,
        book=market.model,
        market_data=core.market_data,
    )


def _redis_url(s: Settings, what: str) -> str:
    if not s.redis_url:
        raise ConfigError(f"{what} needs SANDEX_REDIS_URL: the engine is reached over Redis")
    return s.redis_url


def remote_exchange(sx: Sandex, services: Services) -> Trading:
    """A gateway without an engine: commands go to ``sandex engine`` over Redis Streams,
    account reads come from storage, public market data from a read model fed by the
    engine's events."""
    s = sx.settings
    client = connect_gateway(_redis_url(s, "SANDEX_ENGINE=remote"))
    names = StreamNames(s.redis_namespace)
    link = RedisEngineLink(client, names, timeout_s=s.engine_timeout_ms / 1000)
    symbols = symbols_by_name(default_symbols())
    market_data = MarketData(symbols.values())
    model = MarketReadModel(symbols, market_data)
    store = SqlExchangeStore(sx.db)
    accounts = AccountStreams(symbols, sx.clock, link)
    services.accounts = accounts
    follower = MarketFollower(
        client, names, link, model, history=store, publish_accounts=accounts.publish
    )
    reads = StoredReads(store)
    streams = MarketStreams(symbols, model, sx.clock)
    services.streams = streams

    def start() -> None:
        link.start()
        follower.start()
        streams.start()
        accounts.start()

    def stop() -> None:
        accounts.stop()
        streams.stop()
        link.stop()
        follower.stop()
        reads.close()

    services.on_startup.append(start)
    services.on_shutdown.insert(0, stop)
    return Trading(
        link,
        reads,
        symbols,
        maker_fee=s.maker_fee,
        taker_fee=s.taker_fee,
        book=model,
        market_data=market_data,
    )


def engine_parts(sx: Sandex) -> EngineParts:
    """``sandex engine`` over this Sandex: the exchange, its lock and the broker (not
    started; :func:`sandex.runtime.serve_engine` runs them)."""
    s = sx.settings
    return EngineParts(
        core=build_core(sx),
        lock=engine_lock(sx),
        broker=connect_broker(_redis_url(s, "sandex engine")),
        names=StreamNames(s.redis_namespace),
        clock=sx.clock,
        tick_ms=s.market_tick_ms,
    )


def app_from_env() -> Gateway:
    """The ASGI app for ``sandex serve`` (each worker process calls this once)."""
    return build_gateway(open_sandex(Settings.from_env()))

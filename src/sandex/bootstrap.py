"""The composition root: the only module that knows both the service layer and storage.

``open_sandex(settings)`` builds everything; the CLI and the HTTP app receive what it
builds. Nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import redis
from limits.storage import RedisStorage, Storage
from sqlalchemy import Engine

from sandex.accounts import PasswordHasher
from sandex.audit_writer import AuditWriter
from sandex.config import ConfigError, Settings
from sandex.exchange import default_symbols
from sandex.exchange.money import ASSET_DECIMALS
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
from sandex.service.failures import report_failure
from sandex.service.keyring import KeyringHolder, ServerSecrets, load_server_secrets
from sandex.service.keywatch import KeyChangeWatcher
from sandex.service.ports import KeyringSource, ReplayGuard
from sandex.service.sessions import SessionService
from sandex.service.trading import Durability, TradingService
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
from sandex.storage.exchange_store import SqlExchangeStore
from sandex.storage.redis_state import RedisReplayGuard

__all__ = ["Sandex", "SystemClock", "open_sandex", "build_gateway", "app_from_env"]

_log = logging.getLogger(__name__)


class SystemClock:
    """The real clock, in epoch milliseconds. Only adapters read it; the domain never does."""

    def now(self) -> int:
        return time.time_ns() // 1_000_000


@dataclass
class Sandex:
    """Everything a running Sandex needs, wired together."""

    settings: Settings
    engine: Engine
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
    redis: Any = None
    audit_writer: AuditWriter | None = None
    clock: SystemClock = field(default_factory=SystemClock)
    _flusher: threading.Thread | None = None
    _watcher: threading.Thread | None = None
    _digester: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start_background_flush(self, interval: float = 0.2) -> None:
        """Flush queued audit events every ``interval`` seconds in a daemon thread."""
        if self._flusher is not None:
            return

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self._hand_over_audit()
                except Exception:  # logged by ActivityLog; keep trying
                    _log.debug("background audit flush failed", exc_info=True)

        self._flusher = threading.Thread(target=run, name="sandex-audit-flush", daemon=True)
        self._flusher.start()

    def start_key_watch(self, interval: float = 0.1) -> None:
        """Poll the key change feed every ``interval`` seconds, so that changes made by
        other processes (workers, servers, the CLI) reach this process's cache."""
        if self._watcher is not None:
            return
        self.key_watch.start(self.clock.now())

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.key_watch.poll(self.clock.now())
                except Exception as exc:
                    report_failure(
                        _log,
                        "key change poll failed; clearing the key cache",
                        exc,
                        level=logging.WARNING,
                    )
                    self.cache.clear()

        self._watcher = threading.Thread(target=run, name="sandex-key-watch", daemon=True)
        self._watcher.start()

    def start_audit_digests(self, interval: float | None = None) -> None:
        """Sign the audit chain's head into the digest directory now, then every
        ``interval`` seconds (``SANDEX_AUDIT_DIGEST_INTERVAL``) when it has moved, and
        once more at :meth:`close`, in a daemon thread."""
        if self._digester is not None:
            return
        wait = self.settings.audit_digest_interval if interval is None else interval

        def run() -> None:
            self.write_audit_digest()
            while not self._stop.wait(wait):
                self.write_audit_digest()

        self._digester = threading.Thread(target=run, name="sandex-audit-digest", daemon=True)
        self._digester.start()

    def write_audit_digest(self) -> bool:
        """One digest if the head moved; a failure is one log line (no traceback), and
        nothing is written, so the next attempt chains from the newest digest on disk."""
        try:
            self.audit.write_digest(self.clock.now())
        except Exception as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            _log.error("audit digest not written: %s", reason)
            return False
        return True

    def _hand_over_audit(self) -> None:
        """Give queued decisions to the writer process, or write them here without one."""
        writer = self.audit_writer
        if writer is None:
            self.activity.flush()
            return
        batch = self.activity.drain()
        if batch and not writer.send(batch):
            _log.warning("audit writer process is gone; writing the audit log in process")
            self.audit_writer = None
            self.activity.requeue(batch)
            self.activity.flush()

    def start_background(self, *, audit_process: bool = True) -> None:
        """What a server runs beside requests: the key watch, and the audit flusher that
        hands decisions to a writer process of its own (``audit_process``)."""
        if audit_process and self.audit_writer is None:
            self.audit_writer = AuditWriter(self.settings)
        self.start_key_watch()
        self.start_background_flush()
        self.start_audit_digests()

    def close(self) -> None:
        """Stop the background threads, write what is queued (and a last audit digest if
        they were writing digests), release the database."""
        self._stop.set()
        digests = self._digester is not None
        for thread in (self._flusher, self._watcher, self._digester):
            if thread is not None:
                thread.join()
        self._flusher = self._watcher = self._digester = None
        try:
            if self.audit_writer is not None:
                self._hand_over_audit()
                if self.audit_writer is not None:
                    self.audit_writer.close()
                    self.audit_writer = None
            self.activity.flush()
            if digests:
                self.write_audit_digest()
        finally:
            self.engine.dispose()
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
    return Sandex(
        settings=settings,
        engine=engine,
        uow=uow,
        keyring=holder,
        secrets=server_secrets,
        cache=cache,
        activity=activity,
        users=users,
        keys=keys,
        auth=auth,
        audit=AuditService(
            uow=uow,
            audit_key=server_secrets.audit_key,
            digests=DigestDirectory(settings.digest_dir),
        ),
        master_keys=MasterKeyRotation(uow=uow, keyring=holder),
        sessions=SessionService(uow=uow, users=users, pepper=server_secrets.pepper),
        key_watch=KeyChangeWatcher(uow, cache),
        redis=redis_client,
    )


def build_gateway(sx: Sandex) -> Gateway:
    """The ASGI app over an opened Sandex: Binance routes, management API, rate limits."""
    s = sx.settings
    storage: Storage
    if s.redis_url:
        storage = RedisStorage(s.redis_url, key_prefix=f"{s.redis_namespace}:limits")
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
        ),
        ip=ClientIpResolver(trusted, s.forwarded_header),
        on_startup=[sx.start_background],
        on_shutdown=[sx.close],
    )
    routes = binance_routes
    if s.exchange:
        market = MarketSchedule(sx, build_trading(sx))
        services.exchange = market.trading
        services.on_startup.append(market.start)
        services.on_shutdown.insert(0, market.stop)
        routes = binance_routes.merged(
            spot_routes,
            market_data_routes,
            capital_routes,
            absent_market_routes,
            account_info_routes,
            ticker_routes,
        )
        routes = routes.merged(order_list_routes)
    return Gateway(services, routes, management_app(services))


def build_trading(sx: Sandex) -> TradingService:
    """The spot exchange over this Sandex's database (not started)."""
    s = sx.settings
    venue = Venue(default_symbols(), maker_fee=s.maker_fee, taker_fee=s.taker_fee)
    durability: Durability = "transaction" if s.durability == "transaction" else "group"
    return TradingService(
        venue,
        SqlExchangeStore(sx.engine),
        durability=durability,
        simulate=s.simulate,
        seed=s.market_seed,
    )


def tune_gc() -> None:
    """Keep Python's cyclic garbage collector off the request path of a server: what
    start-up built (books, order records, market history, imported modules) is moved
    out of its reach, and it runs less often. Measured with bench/orders.py: p99 at 32
    connections from 70-110 ms to about 20 ms, throughput up by a quarter. Reference
    counting still frees everything that is not a cycle at once."""
    gc.freeze()
    gc.set_threshold(20_000, 50, 1000)


class MarketSchedule:
    """Runs the exchange inside the server's event loop: rebuilds it from storage at
    start-up, steps the simulated market every ``market_tick_ms``, applies operator
    credits and crash/pump orders from storage, writes what is left at shutdown."""

    CHECKPOINT_EVERY_S = 0.25
    """How often SQLite's write-ahead log is copied back into the database: at a few
    thousand orders a second that keeps it near SQLite's own default of 4 MB."""

    def __init__(self, sx: Sandex, trading: TradingService) -> None:
        self.sx = sx
        self.trading = trading
        self._task: asyncio.Task[None] | None = None
        self._checkpoints: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.trading.start(self.sx.clock.now())
        tune_gc()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run())
        if not self.trading.store.network:
            self._checkpoints = loop.create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """Checkpoint SQLite in a thread (the exchange writer never does, so that no
        order waits on it)."""
        loop = asyncio.get_running_loop()
        failing = False
        while True:
            await asyncio.sleep(self.CHECKPOINT_EVERY_S)
            try:
                await loop.run_in_executor(None, self.trading.store.checkpoint)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:  # once, not four times a second
                    report_failure(_log, "checkpoints of the database fail; retrying quietly", exc)
                failing = True
            else:
                if failing:
                    _log.warning("checkpoints of the database succeed again")
                failing = False

    async def _run(self) -> None:
        trading = self.trading
        clock = self.sx.clock
        store = trading.store
        loop = asyncio.get_running_loop()
        interval = self.sx.settings.market_tick_ms / 1000
        polls = 0
        while True:
            await asyncio.sleep(interval)
            try:
                for symbol in sorted(trading.symbols):  # a symbol at a time, requests between
                    trading.tick(clock.now(), symbol)
                    await asyncio.sleep(0)
                now = clock.now()
                polls += 1
                if polls % max(1, round(0.5 / interval)) == 0:
                    # SQLite answers these small reads faster than a thread hop, which
                    # would also fight the loop for the GIL; PostgreSQL waits on the network
                    if store.network:
                        credits = await loop.run_in_executor(None, store.pending_credits)
                        shocks = await loop.run_in_executor(None, store.pending_shocks, now)
                    else:
                        credits, shocks = store.pending_credits(), store.pending_shocks(now)
                    trading.apply_credits(credits)
                    for shock in shocks:
                        trading.apply_shock(shock, now)
                await trading.durable()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                report_failure(_log, "the market schedule failed a step; it goes on", exc)

    def stop(self) -> None:
        for task in (self._task, self._checkpoints):
            if task is not None:
                task.cancel()
        self._task = self._checkpoints = None
        self.trading.close()


def app_from_env() -> Gateway:
    """The ASGI app for ``sandex serve`` (each worker process calls this once)."""
    return build_gateway(open_sandex(Settings.from_env()))

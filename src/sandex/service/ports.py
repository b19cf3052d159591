"""The ports the service layer needs; storage implements them (``sandex.storage``)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Protocol

from sandex.accounts import ThrottleState, TotpSetup, User
from sandex.accounts.sessions import Session
from sandex.exchange.marketdata import MarketHistory, TapeTrade
from sandex.exchange.order_lists import OrderList
from sandex.exchange.venue import OrderRecord, PreventedMatch, TradeRecord
from sandex.keys import ApiKey, AuditEvent, AuditRecord, Keyring, MasterKey

if TYPE_CHECKING:
    from sandex.service.journal import Batch

__all__ = [
    "Clock",
    "UserRepository",
    "RecoveryCodeRepository",
    "InviteRepository",
    "ThrottleRepository",
    "KeyRepository",
    "AuditRepository",
    "DigestStore",
    "ServerSecretRepository",
    "SealedValue",
    "SealedStore",
    "SessionRepository",
    "UnitOfWork",
    "CreditRepository",
    "UnitOfWorkFactory",
    "KeyringSource",
    "ReplayGuard",
    "BookRow",
    "PendingCredit",
    "PendingShock",
    "ShockKind",
    "StoredExchange",
    "StoredOrderList",
    "History",
    "ExchangeStore",
    "StorageBusy",
    "PreventedQuery",
]


class Clock(Protocol):
    def now(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class UserRepository(Protocol):
    def add(self, email: str, password_hash: str, created_at: int) -> User: ...
    def get(self, user_id: int, *, for_update: bool = False) -> User | None: ...
    def by_email(self, email: str) -> User | None: ...
    def all(self) -> list[User]: ...
    def set_password_hash(self, user_id: int, password_hash: str) -> None: ...
    def set_totp(self, user_id: int, totp: TotpSetup | None) -> None: ...


class RecoveryCodeRepository(Protocol):
    def replace(self, user_id: int, digests: Sequence[bytes], created_at: int) -> None: ...
    def consume(self, user_id: int, digest: bytes, used_at: int) -> bool:
        """Mark an unused code used; False when there is no such unused code."""
        ...

    def remaining(self, user_id: int) -> int: ...


class InviteRepository(Protocol):
    def add(self, digest: bytes, created_at: int, expires_at: int) -> int: ...
    def consume(self, digest: bytes, used_at: int) -> int | None:
        """Mark an unused, unexpired code used (atomically); its id, or None."""
        ...


class ThrottleRepository(Protocol):
    def get(self, subject: str) -> ThrottleState: ...
    def lock(self, subjects: Sequence[str]) -> dict[str, ThrottleState]:
        """The states of ``subjects``, locked until the transaction ends (so that counting
        an attempt is atomic: two callers never both see the count before the other's)."""
        ...

    def put(self, subject: str, state: ThrottleState) -> None:
        """Store the state of a subject :meth:`lock` holds."""
        ...

    def clear(self, subject: str) -> None: ...


class KeyRepository(Protocol):
    def add(self, key: ApiKey) -> ApiKey:
        """Store a new key and return it with its id."""
        ...

    def get(self, key_id: int, *, for_update: bool = False) -> ApiKey | None: ...
    def by_lookup_hash(self, lookup_hash: bytes) -> ApiKey | None: ...
    def by_prefix(self, prefix: str) -> list[ApiKey]: ...
    def for_user(self, user_id: int) -> list[ApiKey]: ...
    def update(self, key: ApiKey) -> None: ...
    def record_use(self, uses: Iterable[tuple[int, int, str]]) -> None:
        """Record (key id, time, ip) last uses; never moves a key's last use backwards."""
        ...

    def count(self) -> int: ...
    def changes_since(self, since: int) -> list[tuple[int, int]]:
        """``(seq, key_id)`` of changes noted at or after ``since`` (every ``update`` notes one)."""
        ...

    def prune_changes(self, before: int) -> int: ...


class AuditRepository(Protocol):
    def append(self, events: Sequence[AuditEvent]) -> None:
        """Append to the hash chain, serialised against every other writer."""
        ...

    def head(self) -> tuple[int, bytes] | None: ...
    def hash_at(self, seq: int) -> bytes | None:
        """The stored hash of entry ``seq``; None if there is no such entry."""
        ...

    def records(self, *, batch: int = 5000) -> Iterator[AuditRecord]:
        """Every record in sequence order."""
        ...

    def tail(
        self, *, limit: int, key_prefix: str | None = None, user_id: int | None = None
    ) -> list[AuditRecord]:
        """The newest records, newest last."""
        ...


class DigestStore(Protocol):
    """Where signed audit digests are kept: a directory, possibly on another host."""

    @property
    def location(self) -> str: ...
    def names(self) -> list[str]:
        """The names of the files there, sorted; empty if there is nothing yet."""
        ...

    def read(self, name: str) -> bytes: ...
    def add(self, name: str, data: bytes) -> bool:
        """Store a new file; False (and nothing changed) if ``name`` exists already."""
        ...


class ServerSecretRepository(Protocol):
    def get(self, name: str) -> bytes | None: ...
    def add(self, name: str, envelope: bytes) -> None: ...


class SealedValue(NamedTuple):
    """A sealed secret somewhere in storage, for master-key rotation."""

    kind: str
    row: str
    envelope: bytes


class SealedStore(Protocol):
    def scan(self, *, batch: int = 1000) -> Iterator[list[SealedValue]]:
        """Every sealed value, in batches."""
        ...

    def replace(self, value: SealedValue, envelope: bytes) -> bool:
        """Swap ``value``'s envelope for ``envelope`` if unchanged since scanned."""
        ...


class SessionRepository(Protocol):
    def add(
        self,
        user_id: int,
        access_hash: bytes,
        refresh_hash: bytes,
        *,
        now: int,
        access_expires_at: int,
        refresh_expires_at: int,
        ip: str | None,
    ) -> Session: ...
    def by_access_hash(self, access_hash: bytes) -> Session | None: ...
    def by_refresh_hash(self, refresh_hash: bytes) -> tuple[Session, bool] | None:
        """The session and whether ``refresh_hash`` is its current (unused) refresh token."""
        ...

    def renew(
        self,
        session_id: int,
        access_hash: bytes,
        refresh_hash: bytes,
        *,
        access_expires_at: int,
        refresh_expires_at: int,
        ip: str | None,
    ) -> None: ...
    def revoke(self, session_id: int, now: int) -> None: ...


class CreditRepository(Protocol):
    """Credits for the exchange to apply (operator funding, a new user's starting balance)."""

    def add(self, account: int, asset: str, amount: int, reason: str, now: int) -> int: ...


class UnitOfWork(Protocol):
    """One transaction. Use as ``with factory() as uow: ...; uow.commit()``."""

    @property
    def users(self) -> UserRepository: ...
    @property
    def recovery_codes(self) -> RecoveryCodeRepository: ...
    @property
    def invites(self) -> InviteRepository: ...
    @property
    def throttles(self) -> ThrottleRepository: ...
    @property
    def keys(self) -> KeyRepository: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def server_secrets(self) -> ServerSecretRepository: ...
    @property
    def sealed(self) -> SealedStore: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def credits(self) -> CreditRepository: ...

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, readonly: bool = False) -> UnitOfWork: ...


class KeyringSource(Protocol):
    """Where the master keys live (a 0600 file, or ``SANDEX_MASTER_KEY``)."""

    description: str
    can_generate: bool

    def load(self) -> Keyring: ...
    def add_primary(self, key: MasterKey) -> Keyring: ...
    def keep_only_primary(self) -> Keyring: ...


class ReplayGuard(Protocol):
    def claim(
        self,
        token: bytes,
        method: str,
        path: str,
        client: str,
        repeatable: bool,
        expires_at: int,
        now: int,
    ) -> bool:
        """Record that ``client`` (an address) used the signature ``token`` on the route
        ``method path``, until ``expires_at``; whether the request may go on.

        True for a signature not seen before. A signature first used by another client
        is refused on every route. From the same client it is refused on a route it was
        already used on, unless ``repeatable`` (a read), and accepted on another route
        (a client may GET and DELETE an order with identical parameters in one
        millisecond).

        Atomic: of two callers presenting one token on one route, exactly one gets True
        unless the route is repeatable and both are the same client.
        """
        ...


class BookRow(NamedTuple):
    """A symbol's sequence numbers, last trade price and simulated reference price."""

    symbol: str
    next_order_id: int
    next_trade_id: int
    last_price: int | None
    reference_price: str | None


class PendingCredit(NamedTuple):
    """An operator credit (or a new user's starting balance) the venue has not applied."""

    id: int
    account: int
    asset: str
    amount: int
    reason: str


class ShockKind(enum.StrEnum):
    PRICE = "price"
    """``sandex market crash/pump``: move the reference price by the factor over the
    duration."""
    LIQUIDITY = "liquidity"
    """``sandex market liquidity``: scale the makers' quote sizes by the factor for the
    duration (0: until changed again)."""


class PendingShock(NamedTuple):
    """An operator's order for the simulated market, waiting for the server to apply it."""

    id: int
    symbol: str
    factor: str
    duration_ms: int
    kind: ShockKind = ShockKind.PRICE


class History(NamedTuple):
    """Which stretch of an account's orders or trades to read, as Binance pages them:
    from an id on, or in a time window (oldest first from ``start`` alone, newest
    ``limit`` otherwise)."""

    from_id: int | None = None
    start: int | None = None
    end: int | None = None
    limit: int = 500


class StoredExchange(NamedTuple):
    balances: list[tuple[int, str, int, int]]
    open_orders: list[OrderRecord]
    books: list[BookRow]
    order_lists: Sequence[OrderList] = ()
    """The order lists of the open orders."""
    next_list_id: int = 1
    next_prevented: Sequence[tuple[str, int]] = ()
    """Per symbol, the next ``preventedMatchId``."""


class StoredOrderList(NamedTuple):
    """An order list as read back, with its orders."""

    order_list: OrderList
    orders: list[OrderRecord]


class PreventedQuery(NamedTuple):
    """Which prevented matches ``myPreventedMatches`` asks for: one by id, or those of
    an order (from ``from_id`` on, ``limit`` of them)."""

    prevented_match_id: int | None = None
    order_id: int | None = None
    from_id: int | None = None
    limit: int = 500


class StorageBusy(Exception):
    """Another writer holds the database right now; try again in a moment (raised only
    where waiting would block the event loop: the SQLite exchange writer)."""


class ExchangeStore(Protocol):
    network: bool
    """Whether its calls wait on a network round trip (then worth a thread)."""

    def write(self, batch: Batch) -> None: ...
    def close(self) -> None: ...
    def checkpoint(self) -> None: ...
    def load(self) -> StoredExchange: ...
    def balances(self, account: int) -> dict[str, tuple[int, int]]: ...
    def open_orders(self, account: int, symbol: str | None) -> list[OrderRecord]: ...
    def open_order_lists(self, account: int) -> list[StoredOrderList]: ...
    def command_replies(self, command_ids: list[str]) -> dict[str, bytes]: ...
    def recent_client_ids(self, since: int) -> list[tuple[int, str, str, int]]: ...
    def prune_commands(self, before: int) -> int: ...
    def market_history(self, keep_trades: int) -> dict[str, MarketHistory]: ...
    def public_trades(self, symbol: str, from_id: int, limit: int) -> list[TapeTrade]: ...
    def prune_market_history(self, before: int, keep_trades: int) -> int: ...
    def add_credit(self, account: int, asset: str, amount: int, reason: str, now: int) -> int: ...
    def credit_applied(self, credit_id: int) -> bool: ...
    def pending_credits(self) -> list[PendingCredit]: ...
    def add_shock(
        self,
        symbol: str,
        factor: str,
        duration_ms: int,
        now: int,
        kind: ShockKind = ShockKind.PRICE,
    ) -> int: ...
    def pending_shocks(self, now: int) -> list[PendingShock]: ...
    def order(
        self, account: int, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> OrderRecord | None: ...
    def orders(self, account: int, symbol: str, window: History) -> list[OrderRecord]: ...
    def trades(
        self, account: int, symbol: str, window: History, order_id: int | None = None
    ) -> list[TradeRecord]: ...
    def prevented_matches(
        self, account: int, symbol: str, query: PreventedQuery
    ) -> list[PreventedMatch]: ...
    def order_lists(
        self,
        account: int,
        window: History,
        list_id: int | None = None,
        list_client_order_id: str | None = None,
    ) -> list[StoredOrderList]: ...

"""Rate limits (DESIGN §3 step 8) on the ``limits`` library's storage.

Fixed windows, as Binance counts them: request weight per IP and per key per minute,
orders per account per 10 s and per day. Over a limit → 429 with ``Retry-After``;
a client that keeps sending while limited is banned (418) for 2 minutes, doubling
with each ban in a day up to 3 days. Failed authentications have their own, much
smaller budget, checked before any signature is verified, and charged to the party
that failed, never to another: a made-up or malformed key to the sending IP alone; a
bad signature or a refused IP on a real key to that key *from that IP* (so a stranger
cannot lock a key out for its owner); a revoked or expired key to no one. A ban comes
only from a client that ignores its own 429s.

The counters live in memory by default, or in Redis (``SANDEX_REDIS_URL``) so that
every worker shares them. With Redis, the gateway asks everything of a request in one
awaited round trip (:meth:`RateLimiter.settle`, over a :class:`Gate`): the admission
checks, the replay claim (or the failure to note), and the weight and order counters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.storage import MemoryStorage, Storage

from sandex.http.errors import (
    ENGINE_TIMEOUT,
    ENGINE_TIMEOUT_MSG,
    TOO_MANY_ORDERS,
    TOO_MANY_REQUESTS,
    Banned,
    Headers,
    HttpError,
    RateLimited,
)

if TYPE_CHECKING:
    from sandex.service.auth import Claim

__all__ = ["Gate", "RateLimits", "RateLimiter", "Usage", "LocalStorage"]

_DAY_S: Final = 86_400


class LocalStorage(MemoryStorage):
    """The ``limits`` memory storage, made cheap for one event loop (measured: the stock
    one takes a lock and may start a timer thread on every write).

    Counters are read and written by the gateway's event loop only, so no lock is
    needed; an expired counter reads as zero and restarts on its next write, and
    expired entries are swept every few thousand new windows.
    """

    _SWEEP_EVERY: Final = 10_000

    def __init__(self) -> None:
        super().__init__()
        self._new_windows = 0

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        if self.expirations.get(key, 0.0) <= now:
            self.storage[key] = amount
            self.expirations[key] = now + expiry
            self._new_windows += 1
            if self._new_windows >= self._SWEEP_EVERY:
                self._sweep(now)
            return amount
        value = self.storage[key] + amount
        self.storage[key] = value
        return value

    def get(self, key: str) -> int:
        if self.expirations.get(key, 0.0) <= time.time():
            return 0
        return self.storage.get(key, 0)

    def _sweep(self, now: float) -> None:
        self._new_windows = 0
        for key, until in list(self.expirations.items()):
            if until <= now:
                self.storage.pop(key, None)
                del self.expirations[key]


class Gate(Protocol):
    """The shared state's per-request script (``sandex.storage.redis_state``)."""

    limits_prefix: str
    """What the ``limits`` storage puts before each of its keys."""

    def replay_key(self, token: bytes) -> bytes: ...
    async def run(self, keys: list[str | bytes], args: list[str | int]) -> list[int]: ...
    async def read(self, keys: list[str]) -> list[int]:
        """The counters at ``keys`` (0 for one absent or expired), in one round trip."""
        ...

    async def aclose(self) -> None: ...


def _keys_for(item: RateLimitItem) -> Callable[[str], str]:
    """``ident -> item.key_for(ident)``, without rebuilding the constant parts each time."""
    head, tail = item.key_for("\x00").split("\x00")
    return lambda ident: head + ident + tail


@dataclass(frozen=True)
class RateLimits:
    ip_weight_1m: int = 6000
    key_weight_1m: int = 6000
    orders_10s: int = 100
    orders_1d: int = 200_000
    failed_auth_ip_1m: int = 30
    failed_auth_key_1m: int = 10
    ignored_429_before_ban: int = 5
    """Requests refused with 429 in one window before the IP is banned."""
    first_ban_s: int = 120
    longest_ban_s: int = 3 * _DAY_S


@dataclass(slots=True)
class Usage:
    ip_weight: int = 0
    key_weight: int | None = None
    orders_10s: int | None = None
    orders_1d: int | None = None
    settled: bool = False
    """Whether :meth:`RateLimiter.settle` has admitted this request (or refused it)."""

    def headers(self) -> Headers:
        out = [(b"x-mbx-used-weight-1m", str(self.ip_weight).encode())]
        if self.orders_10s is not None:
            out.append((b"x-mbx-order-count-10s", str(self.orders_10s).encode()))
            out.append((b"x-mbx-order-count-1d", str(self.orders_1d).encode()))
        return out


class RateLimiter:
    def __init__(
        self,
        storage: Storage,
        limits: RateLimits | None = None,
        *,
        clock: Callable[[], float] = time.time,
        gate: Gate | None = None,
    ) -> None:
        self.storage = storage
        self.gate = gate
        """Set: the gateway settles each request in one round trip (:meth:`settle`)."""
        self.limits = lim = limits or RateLimits()
        self._clock = clock
        self._ip_weight = RateLimitItemPerMinute(lim.ip_weight_1m, namespace="W-IP")
        self._key_weight = RateLimitItemPerMinute(lim.key_weight_1m, namespace="W-KEY")
        self._orders_10s = RateLimitItemPerSecond(lim.orders_10s, 10, namespace="O-10S")
        self._orders_1d = RateLimitItemPerDay(lim.orders_1d, namespace="O-1D")
        self._fail_ip = RateLimitItemPerMinute(lim.failed_auth_ip_1m, namespace="F-IP")
        self._fail_key = RateLimitItemPerMinute(lim.failed_auth_key_1m, namespace="F-KEY")
        self._violations = RateLimitItemPerMinute(lim.ignored_429_before_ban, namespace="V-IP")
        self._bans = RateLimitItemPerDay(1, namespace="BANS")
        self._incr = storage.incr
        self._get = storage.get
        self._ip_weight_key = _keys_for(self._ip_weight)
        self._key_weight_key = _keys_for(self._key_weight)
        self._fail_ip_key = _keys_for(self._fail_ip)
        self._fail_key_key = _keys_for(self._fail_key)
        self._ip_weight_expiry = self._ip_weight.get_expiry()
        self._key_weight_expiry = self._key_weight.get_expiry()
        self._limits_args: list[str | int] = [
            lim.ignored_429_before_ban,
            self._violations.get_expiry(),
            self._bans.get_expiry(),
            lim.first_ban_s,
            lim.longest_ban_s,
        ]

    # -- admission, before any work --------------------------------------------------

    def admit(self, ip: str) -> None:
        """Refuse a banned IP (418), or one with too many failed authentications (429)."""
        ban = "SANDEX-BAN/" + ip
        if self._get(ban) > 0:
            retry = self._retry_after(ban)
            raise Banned(ip, int(self._clock()) + retry, retry)
        key = self._fail_ip_key(ip)
        if self._get(key) >= self.limits.failed_auth_ip_1m:
            self._refuse(ip, key, _failed_ip_msg(ip))

    def admit_key(self, ip: str, key_tag: str, key_ref: str) -> None:
        """Refuse a key, from this IP, that too many requests from this IP failed to
        authenticate (``key_tag`` is a digest of the whole key: keys that merely share a
        display prefix ``key_ref`` are counted apart)."""
        key = self._fail_key_key(key_tag + "@" + ip)
        if self._get(key) >= self.limits.failed_auth_key_1m:
            self._refuse(ip, key, _failed_key_msg(ip, key_ref))

    # -- charging ----------------------------------------------------------------------

    def charge_ip(self, ip: str, weight: int, usage: Usage) -> None:
        item = self._ip_weight
        key = self._ip_weight_key(ip)
        used = self._incr(key, self._ip_weight_expiry, weight)
        usage.ip_weight = used
        if used > item.amount:
            self._refuse(ip, key, _ip_weight_msg(item.amount))

    def charge_key(self, ip: str, key_id: int, weight: int, usage: Usage) -> None:
        item = self._key_weight
        key = self._key_weight_key(str(key_id))
        used = self._incr(key, self._key_weight_expiry, weight)
        usage.key_weight = used
        if used > item.amount:
            self._refuse(ip, key, _key_weight_msg(item.amount))

    def charge_order(self, ip: str, user_id: int, usage: Usage, orders: int = 1) -> None:
        """Count ``orders`` new orders (an order list counts each of its orders)."""
        account = str(user_id)
        k10 = self._orders_10s.key_for(account)
        k1d = self._orders_1d.key_for(account)
        usage.orders_10s = self._incr(k10, self._orders_10s.get_expiry(), orders)
        usage.orders_1d = self._incr(k1d, self._orders_1d.get_expiry(), orders)
        if usage.orders_10s > self._orders_10s.amount:
            self._refuse(ip, k10, _orders_10s_msg(self._orders_10s.amount), TOO_MANY_ORDERS)
        if usage.orders_1d > self._orders_1d.amount:
            self._refuse(ip, k1d, _orders_1d_msg(self._orders_1d.amount), TOO_MANY_ORDERS)

    async def order_counts(self, user_id: int) -> tuple[int, int]:
        """The account's orders in the current 10 s and day windows, without counting one
        (``GET /api/v3/rateLimit/order``): read through the :attr:`gate`, awaited, when
        there is one, as every worker counts them there."""
        account = str(user_id)
        keys = [self._orders_10s.key_for(account), self._orders_1d.key_for(account)]
        gate = self.gate
        if gate is None:
            return self._get(keys[0]), self._get(keys[1])
        try:
            ten_seconds, day = await gate.read([gate.limits_prefix + key for key in keys])
        except OSError:  # Redis is away, as in settle
            raise HttpError(503, ENGINE_TIMEOUT, ENGINE_TIMEOUT_MSG) from None
        return ten_seconds, day

    def note_ip_failure(self, ip: str) -> None:
        """An unknown or malformed key from ``ip``: someone guessing, charged to them."""
        self._incr(self._fail_ip_key(ip), self._fail_ip.get_expiry(), 1)

    def note_key_failure(self, ip: str, key_tag: str) -> None:
        """A real key failed (bad signature, IP not allowed) from ``ip``: charged to that
        key from that IP only, so its owner elsewhere is not limited by it."""
        self._incr(self._fail_key_key(key_tag + "@" + ip), self._fail_key.get_expiry(), 1)

    # -- everything at once, in the shared state -------------------------------------------

    async def settle(
        self,
        ip: str,
        usage: Usage,
        weight: int,
        *,
        admit: bool = True,
        key_tag: str | None = None,
        key_ref: str = "",
        failed: bool = False,
        note: str | None = None,
        claim: Claim | None = None,
        key_id: int | None = None,
        user_id: int | None = None,
        orders: int = 0,
    ) -> bool | HttpError:
        """One round trip to the :attr:`gate` for a request: what :meth:`admit`,
        :meth:`admit_key` (``key_tag``), the replay ``claim``, :meth:`charge_ip`,
        :meth:`charge_key` (``key_id``) and :meth:`charge_order` (``orders`` for
        ``user_id``) do in turn, with the same counters, refusals and bans.

        ``failed``: the request failed to authenticate; ``note`` ("ip" or "key") charges
        the failure to its party, and the weight is charged with any refusal swallowed
        (the authentication error is the answer).

        An admission refusal is raised; then True (go on), False (the claim was refused:
        a replay), or the 429/418 that charging the request earned it (for the caller to
        raise after auditing the request it authenticated).
        """
        gate = self.gate
        assert gate is not None
        head = gate.limits_prefix
        ban = head + "SANDEX-BAN/" + ip
        fail_ip = head + self._fail_ip_key(ip)
        fail_key = head + self._fail_key_key(key_tag + "@" + ip) if key_tag else ban
        account = str(user_id)
        keys: list[str | bytes] = [
            ban,
            fail_ip,
            fail_key,
            gate.replay_key(claim[0]) if claim is not None else ban,
            head + self._ip_weight_key(ip),
            head + self._key_weight_key(str(key_id)) if key_id is not None else ban,
            head + self._orders_10s.key_for(account) if orders else ban,
            head + self._orders_1d.key_for(account) if orders else ban,
            head + self._violations.key_for(ip),
            head + self._bans.key_for(ip),
            fail_ip if note == "ip" else fail_key,
        ]
        lim = self.limits
        failure: str | int = ""  # not failed; "0": failed, charged to no one; else the expiry
        if failed:
            noted = self._fail_ip if note == "ip" else self._fail_key
            failure = "0" if note is None else noted.get_expiry()
        args: list[str | int] = [
            1 if admit else 0,
            lim.failed_auth_ip_1m,
            lim.failed_auth_key_1m if key_tag else 0,
            failure,
            claim[3] if claim is not None else "",
            f"{claim[1]} {claim[2]}" if claim is not None else "",
            max(1, claim[5] - claim[6]) if claim is not None else 0,
            weight,
            self._ip_weight_expiry,
            lim.ip_weight_1m,
            lim.key_weight_1m if key_id is not None else 0,
            self._key_weight_expiry,
            1 if claim is not None and claim[4] else 0,
            orders,
            lim.orders_10s,
            self._orders_10s.get_expiry(),
            lim.orders_1d,
            self._orders_1d.get_expiry(),
            *self._limits_args,
        ]
        try:
            status, which, seconds, ip_used, key_used, o10, o1d = await gate.run(keys, args)
        except OSError:  # Redis is away (refused, reset, timed out): Binance's -1007
            raise HttpError(503, ENGINE_TIMEOUT, ENGINE_TIMEOUT_MSG) from None
        usage.settled = True
        if ip_used >= 0:
            usage.ip_weight = ip_used
        if key_used >= 0:
            usage.key_weight = key_used
        if o10 >= 0:
            usage.orders_10s = o10
            usage.orders_1d = o1d
        if status == 0:
            return True
        if status == 3:
            return False
        error: HttpError
        if status == 1:
            error = Banned(ip, int(self._clock()) + seconds, seconds)
        elif which == -1:
            error = RateLimited(_failed_ip_msg(ip), seconds)
        elif which == -2:
            error = RateLimited(_failed_key_msg(ip, key_ref), seconds)
        elif which == 1:
            error = RateLimited(_ip_weight_msg(lim.ip_weight_1m), seconds)
        elif which == 2:
            error = RateLimited(_key_weight_msg(lim.key_weight_1m), seconds)
        elif which == 3:
            error = RateLimited(_orders_10s_msg(lim.orders_10s), seconds, code=TOO_MANY_ORDERS)
        else:
            error = RateLimited(_orders_1d_msg(lim.orders_1d), seconds, code=TOO_MANY_ORDERS)
        if which <= 0:
            raise error
        return error

    # -- refusing and banning ------------------------------------------------------------

    def _retry_after(self, key: str) -> int:
        return max(1, math.ceil(self.storage.get_expiry(key) - self._clock()))

    def _refuse(self, ip: str, key: str, msg: str, code: int = TOO_MANY_REQUESTS) -> None:
        """429 for ``key``'s window; the IP is banned if it keeps ignoring 429s.

        The usage headers are the gateway's to send (once each, on every answer)."""
        item = self._violations
        ignored = self._incr(item.key_for(ip), item.get_expiry(), 1)
        if ignored > item.amount:
            self._ban(ip)
        raise RateLimited(msg, self._retry_after(key), code=code)

    def _ban(self, ip: str) -> None:
        bans = self._incr(self._bans.key_for(ip), self._bans.get_expiry(), 1)
        seconds = min(self.limits.first_ban_s * 2 ** (bans - 1), self.limits.longest_ban_s)
        self._incr("SANDEX-BAN/" + ip, seconds, 1)
        self.storage.clear(self._violations.key_for(ip))
        raise Banned(ip, int(self._clock()) + seconds, seconds)


def _failed_ip_msg(ip: str) -> str:
    return f"Too many failed authentications from IP {ip}; wait before retrying."


def _failed_key_msg(ip: str, key_ref: str) -> str:
    return (
        f"Too many failed authentications for API key {key_ref}... from IP {ip};"
        " wait before retrying."
    )


def _ip_weight_msg(limit: int) -> str:
    return (
        f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE."
        " Please use WebSocket Streams for live updates to avoid polling the API."
    )


def _key_weight_msg(limit: int) -> str:
    return f"Too much request weight used by this API key; the limit is {limit} per 1 MINUTE."


def _orders_10s_msg(limit: int) -> str:
    return f"Too many new orders; current limit is {limit} orders per 10 SECOND."


def _orders_1d_msg(limit: int) -> str:
    return f"Too many new orders; current limit is {limit} orders per DAY."

"""``authenticate(request, now)``: Binance SIGNED semantics, stricter (DESIGN §3, steps 1-7).

Sans-I/O on the hot path: a cached key is checked with no database access. Every
decision, allowed or denied, is queued for the audit chain.

Reasons given to the client before the signature is verified are deliberately
vague; after it, precise (the caller has proven it holds the key). The precise
reason always goes to the audit log.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from sandex.keys import (
    Access,
    AccessDenied,
    ApiKey,
    BadSignature,
    InvalidPublicKey,
    KeyKind,
    Mode,
    check_access,
    is_api_key,
    is_secret,
)
from sandex.keys.formats import display_prefix
from sandex.keys.lookup import keyed_hash
from sandex.keys.material import load_public_key
from sandex.keys.signing import hmac_verifier, public_key_verifier, read_signed, verify
from sandex.service.activity import ActivityLog, Decision
from sandex.service.errors import (
    ApiKeyFormatInvalid,
    ApiKeyRejected,
    AuthenticationFailed,
    IllegalParameter,
    IpNotAllowed,
    MandatoryParameterMissing,
    PermissionMissing,
    RecvWindowTooLarge,
    RequestReplayed,
    SignatureInvalid,
    TimestampOutsideWindow,
    UnknownApiKey,
)
from sandex.service.keycache import NEVER, CachedKey, KeyCache
from sandex.service.keyring import KeyringHolder
from sandex.service.ports import ReplayGuard, UnitOfWorkFactory
from sandex.service.requests import Principal, Request

__all__ = [
    "Authenticator",
    "Checked",
    "Claim",
    "DEFAULT_RECV_WINDOW_MS",
    "MAX_RECV_WINDOW_MS",
    "secret_context",
]

DEFAULT_RECV_WINDOW_MS: Final = 5_000
MAX_RECV_WINDOW_MS: Final = 60_000
_FUTURE_TOLERANCE_US: Final = 1_000_000
_MICROS_THRESHOLD: Final = 10**14
"""A timestamp at or above this is in microseconds (ms timestamps have 13 digits)."""
_UNKNOWN_TTL_MS: Final = 60_000
_READ: Final = Access.READ
_HEADER: Final = "x-mbx-apikey"
_DEFAULT_RW_US: Final = DEFAULT_RECV_WINDOW_MS * 1000
_MAX_RW_US: Final = MAX_RECV_WINDOW_MS * 1000


Claim = tuple[bytes, str, str, str, bool, int, int]
"""The arguments of :meth:`ReplayGuard.claim`: token, method, path, client, repeatable,
expires_at, now."""


class Checked(NamedTuple):
    """A request through the checks before the replay claim: its key (when known), the
    refusal (when one of them failed), else the claim to make."""

    entry: CachedKey | None
    api_key: str | None
    failure: AuthenticationFailed | None
    claim: Claim | None


def secret_context(lookup_hash: bytes) -> bytes:
    """The envelope context binding an HMAC secret to its key record."""
    return b"api-key-secret:" + lookup_hash


def _parse_recv_window(raw: bytes) -> int:
    """recvWindow in microseconds: up to 5 integer digits and 3 decimals (Binance)."""
    if raw.isdigit() and len(raw) <= 5:
        micros = int(raw) * 1000
        if micros > _MAX_RW_US:
            raise RecvWindowTooLarge
        return micros
    whole, dot, frac = raw.partition(b".")
    if not whole.isdigit() or len(whole) > 6 or (dot and (not frac.isdigit() or len(frac) > 3)):
        raise IllegalParameter("recvWindow", "^[0-9]{1,5}(\\.[0-9]{1,3})?$")
    micros = int(whole) * 1000 + (int(frac.ljust(3, b"0")) if dot else 0)
    if micros > _MAX_RW_US:
        raise RecvWindowTooLarge
    return micros


def _stale(ts_us: int, rw_us: int, now_us: int) -> TimestampOutsideWindow:
    if ts_us >= now_us + _FUTURE_TOLERANCE_US:
        return TimestampOutsideWindow(
            "Timestamp for this request was 1000ms ahead of the server's time.",
            reason=f"timestamp {(ts_us - now_us) // 1000} ms ahead",
        )
    return TimestampOutsideWindow(
        "Timestamp for this request is outside of the recvWindow.",
        reason=f"timestamp {(now_us - ts_us) // 1000} ms old, window {rw_us // 1000} ms",
    )


def _never_verifies(payload: bytes, signature: bytes) -> None:
    """The verifier of a key that is refused before its signature is looked at."""
    return None


class Authenticator:
    """Checks signed requests against the keys in storage, through an in-process cache."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        keyring: KeyringHolder,
        pepper: bytes,
        cache: KeyCache,
        replay: ReplayGuard,
        activity: ActivityLog,
    ) -> None:
        self._uow = uow
        self._keyring = keyring
        self._pepper = pepper
        self.cache = cache
        self._cached = cache.entries.get
        self._claim = replay.claim
        self._record = activity.record_decision

    def authenticate(
        self, request: Request, now: int, access: Access = _READ, *, signed: bool = True
    ) -> Principal:
        """The principal a signed request acts for, or :class:`AuthenticationFailed`.

        ``now`` is the server time in epoch milliseconds. ``signed`` False: a request of a
        WebSocket API session logged on with its key (``session.logon``), which carries no
        signature; every other check is made.
        """
        checked = self.check(request, now, access, signed=signed)
        claim = checked.claim
        return self.conclude(checked, request, now, claim is None or self._claim(*claim))

    def identify(self, request: Request, now: int) -> Principal:
        """The principal of an API-key-only request (Binance's USER_STREAM security: no
        signature): steps 1, 2 and 6. Audited like :meth:`authenticate`."""
        return self.conclude(self.check_identity(request, now), request, now)

    def check(
        self, request: Request, now: int, access: Access = _READ, *, signed: bool = True
    ) -> Checked:
        """Steps 1-6 of :meth:`authenticate`, recording nothing: the replay claim (step 7)
        is the caller's, then :meth:`conclude` (a gateway with shared state makes the claim
        in the same round trip as its rate limits). ``signed`` False: no signature (step
        4) and so nothing to claim (a logged-on WebSocket API session's request)."""
        entry: CachedKey | None = None
        api_key = request.headers.get(_HEADER)
        try:
            # 1. key present and well-formed; 2. known and alive
            entry = self._cached(api_key) if api_key is not None else None
            if entry is None:
                entry = self._load(api_key, now)
            if entry.dead is not None or now >= entry.dies_at:
                raise ApiKeyRejected(reason=entry.dead or entry.dies_reason)
            # 3. freshness
            payload, signature, ts_raw, rw_raw = read_signed(request.query, request.body)
            if not ts_raw:
                raise MandatoryParameterMissing("timestamp")
            if len(ts_raw) > 20 or not ts_raw.isdigit():
                raise IllegalParameter("timestamp", "^[0-9]{1,20}$")
            ts_us = int(ts_raw)
            if ts_us < _MICROS_THRESHOLD:
                ts_us *= 1000
            if rw_raw is None:
                rw_us = _DEFAULT_RW_US
            elif len(rw_raw) <= 5 and rw_raw.isdigit():
                rw_us = int(rw_raw) * 1000
                if rw_us > _MAX_RW_US:
                    raise RecvWindowTooLarge
            else:
                rw_us = _parse_recv_window(rw_raw)
            now_us = now * 1000
            if ts_us >= now_us + _FUTURE_TOLERANCE_US or now_us - ts_us > rw_us:
                raise _stale(ts_us, rw_us, now_us)
            # 4. signature over the raw query + body (a logged-on session has none)
            token: bytes | None = None
            if signed:
                if not signature:
                    raise MandatoryParameterMissing("signature")
                token = entry.verify(payload, signature)
                if token is None:  # maybe python-binance's unquoted form; else refuse
                    try:
                        token = verify(entry.verify, payload, signature)
                    except BadSignature:
                        raise SignatureInvalid from None
            # 5. IP allowlist
            if entry.allowlist is not None and not entry.ip_allowed(request.client_ip):
                raise IpNotAllowed(request.client_ip)
            # 6. permission, mode, trading lapse
            if access is not _READ or not entry.normal:
                try:
                    check_access(
                        access,
                        permissions=entry.permissions,
                        mode=entry.mode,
                        trade_lapses_at=entry.trade_lapses_at,
                        now=now,
                    )
                except AccessDenied as exc:
                    raise PermissionMissing(str(exc), reason=str(exc)) from None
        except AuthenticationFailed as exc:
            return Checked(entry, api_key, exc, None)
        if token is None:  # not signed: nothing to claim
            return Checked(entry, api_key, None, None)
        # 7. replay, checked last so that only a request that passed every other
        # check uses up its signature (someone outside the allowlist who saw it
        # first cannot spoil it). A replay is the same signature on the same method
        # and path; a read may repeat from the address that sent it (an unmodified
        # client can send two identical reads inside one millisecond), a trade
        # request never; a signature first used from another address is refused on
        # every route.
        claim = (
            token,
            request.method,
            request.path,
            request.client_ip,
            access is _READ,
            (ts_us + rw_us) // 1000 + 1,
            now,
        )
        return Checked(entry, api_key, None, claim)

    def check_identity(self, request: Request, now: int) -> Checked:
        """Steps 1, 2 and 6 of :meth:`identify`, recording nothing (nothing to claim)."""
        entry: CachedKey | None = None
        api_key = request.headers.get(_HEADER)
        try:
            entry = self._cached(api_key) if api_key is not None else None
            if entry is None:
                entry = self._load(api_key, now)
            if entry.dead is not None or now >= entry.dies_at:
                raise ApiKeyRejected(reason=entry.dead or entry.dies_reason)
            if entry.allowlist is not None and not entry.ip_allowed(request.client_ip):
                raise IpNotAllowed(request.client_ip)
        except AuthenticationFailed as exc:
            return Checked(entry, api_key, exc, None)
        return Checked(entry, api_key, None, None)

    def conclude(
        self, checked: Checked, request: Request, now: int, claimed: bool = True
    ) -> Principal:
        """Audit a checked request and answer for it: its principal, or its refusal
        raised (``claimed`` False: its signature was a replay)."""
        exc = checked.failure
        entry = checked.entry
        if exc is None and not claimed:
            exc = RequestReplayed()
        if exc is not None:
            self._refused(exc, entry, checked.api_key, request, now)
            raise exc
        assert entry is not None
        return self._allowed(entry, request, now)

    def _allowed(self, entry: CachedKey, request: Request, now: int) -> Principal:
        """Queue the audit record of an allowed request; the principal it acts for."""
        self._record(
            Decision(
                now,
                entry.key_id,
                entry.user_id,
                entry.prefix,
                request.client_ip,
                request.method,
                request.path,
                None,
            )
        )
        return entry.principal

    def _refused(
        self,
        exc: AuthenticationFailed,
        entry: CachedKey | None,
        api_key: str | None,
        request: Request,
        now: int,
    ) -> None:
        """Queue the audit record of a refusal, with as much of the key as may be logged."""
        if entry is None:
            who: tuple[int | None, int | None, str | None] = (
                None,
                None,
                self._prefix_for_audit(api_key),
            )
        else:
            who = (entry.key_id, entry.user_id, entry.prefix)
        key_id, user_id, prefix = who
        self._record(
            Decision(
                now,
                key_id,
                user_id,
                prefix,
                request.client_ip,
                request.method,
                request.path,
                exc.reason,
            )
        )

    @staticmethod
    def _prefix_for_audit(api_key: str | None) -> str | None:
        """What of an unrecognised key may be logged: a well-formed key's display prefix.

        Anything else might be a secret pasted in the wrong field, so none of it is kept.
        """
        if api_key is not None and is_api_key(api_key):
            return display_prefix(api_key)
        return None

    def _load(self, api_key: str | None, now: int) -> CachedKey:
        """Cache miss: check the format, look the key up by its keyed hash, unseal it."""
        if api_key is None:
            raise ApiKeyFormatInvalid(reason="no X-MBX-APIKEY header")
        if not is_api_key(api_key):
            if is_secret(api_key):
                reason = "a Sandex secret was sent as the API key (key and secret swapped?)"
            else:
                reason = f"malformed API key ({len(api_key)} characters)"
            raise ApiKeyFormatInvalid(reason=reason)
        if self.cache.known_unknown(api_key, now):
            raise UnknownApiKey
        lookup_hash = keyed_hash(self._pepper, api_key)
        generation = self.cache.generation
        with self._uow(readonly=True) as uow:
            key = uow.keys.by_lookup_hash(lookup_hash)
        if key is None:
            self.cache.note_unknown(api_key, now + _UNKNOWN_TTL_MS)
            raise UnknownApiKey
        entry = self.entry_for(key)
        self.cache.put(api_key, entry, generation=generation)  # this request uses what it read
        return entry

    def entry_for(self, key: ApiKey) -> CachedKey:
        """Build the cache entry for ``key`` (unsealing its secret or loading its public key)."""
        dead = None if key.revoked_at is None else "key revoked"
        if key.kind is KeyKind.HMAC_SHA256:
            assert key.secret_envelope is not None
            secret = self._keyring.open(key.secret_envelope, secret_context(key.lookup_hash))
            verify = hmac_verifier(secret)
        else:
            assert key.public_key_pem is not None
            try:
                verify = public_key_verifier(load_public_key(key.public_key_pem).key)
            except InvalidPublicKey as exc:  # stored before today's rules: refused, never verified
                verify, dead = _never_verifies, dead or f"stored public key not accepted: {exc}"
        dies_at = key.dies_at
        if key.grace_ends_at is not None and dies_at == key.grace_ends_at:
            dies_reason = "key was rotated and its grace period has ended"
        else:
            dies_reason = "key expired"
        settings = key.settings
        return CachedKey(
            key_id=key.id,
            user_id=key.user_id,
            prefix=key.prefix,
            kind=key.kind,
            verify=verify,
            dies_at=NEVER if dies_at is None else dies_at,
            dies_reason=dies_reason,
            dead=dead,
            allowlist=settings.allowlist if settings.allowlist else None,
            permissions=settings.permissions,
            mode=settings.policy.mode,
            normal=settings.policy.mode is Mode.NORMAL,
            trade_lapses_at=key.trade_lapses_at,
            principal=Principal(
                key.user_id,
                key.id,
                key.prefix,
                key.kind,
                settings.permissions,
                settings.policy,
                settings.allowlist,
                key.created_at,
                settings.expires_at,
                key.trade_lapses_at,
            ),
        )

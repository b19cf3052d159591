"""Use cases for API keys: create, list, show, update, rotate, revoke, freeze, unfreeze.

Every change is one transaction that also appends its audit event, and drops the
key from the authentication cache before it returns.
"""

from __future__ import annotations

import enum
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final

from sandex.accounts import User
from sandex.keys import (
    ApiKey,
    IpAllowlist,
    KeyKind,
    KeySettings,
    KeyStatus,
    Mode,
    Permission,
    RiskPolicy,
    generate_api_key,
    generate_secret,
    load_public_key,
    permission_names,
)
from sandex.keys.audit import details_text
from sandex.keys.errors import InvalidPublicKey
from sandex.keys.formats import display_prefix
from sandex.keys.lookup import keyed_hash
from sandex.keys.model import DAY_MS, HOUR_MS, trade_lapse
from sandex.keys.reference import KeyByApiKey, KeyById, KeyByPrefix, KeyRef
from sandex.service.actors import Actor
from sandex.service.auth import secret_context
from sandex.service.errors import Conflict, InvalidRequest, LimitReached, NotFound
from sandex.service.keycache import KeyCache
from sandex.service.keyring import KeyringHolder
from sandex.service.ports import UnitOfWork, UnitOfWorkFactory
from sandex.service.users import UserService, user_for

__all__ = ["KeyService", "KeyPolicyConfig", "IssuedKey", "KeyPatch", "UNSET"]

MAX_KEYS_PER_USER: Final = 30


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET


@dataclass(frozen=True)
class KeyPolicyConfig:
    unrestricted_trade_days: int = 30
    max_keys_per_user: int = MAX_KEYS_PER_USER
    default_grace_ms: int = 24 * HOUR_MS
    max_grace_ms: int = 7 * DAY_MS


@dataclass(frozen=True)
class IssuedKey:
    """A newly created or rotated key. ``api_key`` and ``secret`` exist only here."""

    api_key: str
    secret: str | None
    key: ApiKey


@dataclass(frozen=True)
class KeyPatch:
    """Changes to a key's settings; fields left UNSET are kept."""

    label: str | _Unset = UNSET
    permissions: Permission | _Unset = UNSET
    allowlist: IpAllowlist | _Unset = UNSET
    expires_at: int | _Unset | None = UNSET
    symbols: frozenset[str] | _Unset | None = UNSET
    max_notional: Decimal | _Unset | None = UNSET
    max_open_orders: int | _Unset | None = UNSET
    mode: Mode | _Unset = UNSET

    def apply(self, settings: KeySettings) -> KeySettings:
        policy = settings.policy
        policy = RiskPolicy(
            policy.symbols if self.symbols is UNSET else self.symbols,
            policy.max_notional if self.max_notional is UNSET else self.max_notional,
            policy.max_open_orders if self.max_open_orders is UNSET else self.max_open_orders,
            policy.mode if self.mode is UNSET else self.mode,
        )
        return KeySettings(
            settings.label if self.label is UNSET else self.label,
            settings.permissions if self.permissions is UNSET else self.permissions,
            settings.allowlist if self.allowlist is UNSET else self.allowlist,
            settings.expires_at if self.expires_at is UNSET else self.expires_at,
            policy,
        )


def _describe(key: ApiKey) -> dict[str, object]:
    s = key.settings
    return {
        "label": s.label,
        "type": key.kind.value,
        "permissions": permission_names(s.permissions),
        "ips": list(s.allowlist.entries),
        "expiresAt": s.expires_at,
        "symbols": None if s.policy.symbols is None else sorted(s.policy.symbols),
        "maxNotional": None if s.policy.max_notional is None else str(s.policy.max_notional),
        "maxOpenOrders": s.policy.max_open_orders,
        "mode": s.policy.mode.value,
    }


class KeyService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        keyring: KeyringHolder,
        pepper: bytes,
        cache: KeyCache,
        users: UserService,
        config: KeyPolicyConfig,
    ) -> None:
        self._uow = uow
        self._keyring = keyring
        self._pepper = pepper
        self._cache = cache
        self._users = users
        self.config = config

    # -- reading ---------------------------------------------------------------------

    def count(self) -> int:
        """How many API keys exist, in every state (for the operator's summary)."""
        with self._uow(readonly=True) as uow:
            return uow.keys.count()

    def for_user(self, user_id: int, *, actor: Actor) -> list[ApiKey]:
        if actor.user_id is not None and actor.user_id != user_id:
            raise NotFound(f"no user with id {user_id}")
        with self._uow(readonly=True) as uow:
            if uow.users.get(user_id) is None:
                raise NotFound(f"no user with id {user_id}")
            return uow.keys.for_user(user_id)

    def find(self, ref: KeyRef, *, actor: Actor) -> ApiKey:
        """A key by its id, its full API key, or an unambiguous display prefix."""
        with self._uow(readonly=True) as uow:
            return self._resolve(uow, ref, actor)

    # -- creating ----------------------------------------------------------------------

    def create(
        self,
        user_id: int,
        settings: KeySettings,
        *,
        now: int,
        actor: Actor,
        kind: KeyKind = KeyKind.HMAC_SHA256,
        public_key_pem: str | bytes | None = None,
    ) -> IssuedKey:
        settings = settings.validated(now=now)
        kind, public_pem = self._material(kind, public_key_pem)
        with self._recorded(actor, now):
            with self._uow() as uow:
                user = user_for(uow, user_id, actor)
                live = [k for k in uow.keys.for_user(user.id) if k.counts_toward_limit(now)]
                if len(live) >= self.config.max_keys_per_user:
                    raise LimitReached(
                        f"{user.email} already has {len(live)} active keys; the limit is"
                        f" {self.config.max_keys_per_user} (revoke one first)"
                    )
                self._check_label_free(live, settings.label, user)
                if settings.permissions != Permission.READ:
                    extra = permission_names(settings.permissions & ~Permission.READ)
                    self._users.require_second_factor(
                        uow,
                        user,
                        actor,
                        now=now,
                        purpose="create a key with " + ", ".join(extra),
                    )
                issued = self._issue(uow, user.id, settings, kind, public_pem, now=now)
                uow.audit.append(
                    [
                        actor.event(
                            now,
                            "key.created",
                            user_id=user.id,
                            key_prefix=issued.key.prefix,
                            details=details_text(_describe(issued.key)),
                        )
                    ]
                )
                uow.commit()
        return issued

    # -- changing ----------------------------------------------------------------------

    def update(self, ref: KeyRef, patch: KeyPatch, *, now: int, actor: Actor) -> ApiKey:
        if patch == KeyPatch():
            raise InvalidRequest("nothing to change")
        with self._recorded(actor, now):
            with self._uow() as uow:
                key = self._resolve(uow, ref, actor, for_update=True)
                self._require_changeable(key, now)
                user = user_for(uow, key.user_id, actor)
                new = patch.apply(key.settings).validated(now=now)
                if new.label != key.settings.label:
                    others = [
                        k
                        for k in uow.keys.for_user(user.id)
                        if k.id != key.id and k.counts_toward_limit(now)
                    ]
                    self._check_label_free(others, new.label, user)
                wider = key.settings.widened_in(new)
                lapse = key.trade_lapses_at
                if (
                    patch.permissions is not UNSET
                    and lapse is not None
                    and now >= lapse
                    and new.permissions & key.settings.permissions & ~Permission.READ
                ):
                    wider.append("renewed trading after it lapsed")
                    lapse = None
                if wider:
                    self._users.require_second_factor(
                        uow, user, actor, now=now, purpose="widen a key (" + ", ".join(wider) + ")"
                    )
                updated = replace(
                    key,
                    settings=new,
                    updated_at=now,
                    trade_lapses_at=trade_lapse(
                        new.permissions,
                        new.allowlist,
                        now=now,
                        days=self.config.unrestricted_trade_days,
                        current=lapse,
                    ),
                )
                uow.keys.update(updated)
                details = {"before": _describe(key), "after": _describe(updated), "widened": wider}
                uow.audit.append(
                    [
                        actor.event(
                            now,
                            "key.updated",
                            user_id=key.user_id,
                            key_prefix=key.prefix,
                            details=details_text(details),
                        )
                    ]
                )
                uow.commit()
        self._cache.invalidate(key.id)
        return updated

    def freeze(self, ref: KeyRef, *, now: int, actor: Actor) -> ApiKey:
        """Quarantine a key: it can still read and cancel, nothing else. Needs no 2FA."""
        return self._set_mode(ref, Mode.FROZEN, "key.frozen", now=now, actor=actor)

    def unfreeze(self, ref: KeyRef, *, now: int, actor: Actor) -> ApiKey:
        """Lift a freeze (back to NORMAL); from a user this needs a 2FA code."""
        return self._set_mode(ref, Mode.NORMAL, "key.unfrozen", now=now, actor=actor)

    def revoke(self, ref: KeyRef, *, now: int, actor: Actor) -> ApiKey:
        """Kill a key now. Takes effect in this process before the call returns."""
        with self._uow() as uow:
            key = self._resolve(uow, ref, actor, for_update=True)
            if key.revoked_at is not None:
                raise Conflict(f"key {key.prefix} is already revoked")
            revoked = replace(key, revoked_at=now, updated_at=now)
            uow.keys.update(revoked)
            uow.audit.append(
                [actor.event(now, "key.revoked", user_id=key.user_id, key_prefix=key.prefix)]
            )
            uow.commit()
        self._cache.invalidate(key.id)
        return revoked

    def rotate(
        self,
        ref: KeyRef,
        *,
        now: int,
        actor: Actor,
        grace_ms: int | None = None,
        public_key_pem: str | bytes | None = None,
    ) -> IssuedKey:
        """Replace a key with a new key (and secret) with the same settings.

        The old key keeps working for ``grace_ms`` (default 24 h, at most 7 days, never
        past its own expiry); the new key never outlives the old key's expiry.
        """
        grace = self.config.default_grace_ms if grace_ms is None else grace_ms
        if not 0 <= grace <= self.config.max_grace_ms:
            raise InvalidRequest(
                f"the grace period must be between 0 and {self.config.max_grace_ms // HOUR_MS} h"
            )
        with self._recorded(actor, now):
            with self._uow() as uow:
                old = self._resolve(uow, ref, actor, for_update=True)
                self._require_changeable(old, now)
                if old.kind is KeyKind.HMAC_SHA256:
                    if public_key_pem is not None:
                        raise InvalidRequest("an HMAC key rotates to a new secret; no public key")
                    kind, pem = KeyKind.HMAC_SHA256, None
                else:
                    if public_key_pem is None:
                        raise InvalidRequest(
                            f"rotating an {old.kind.value} key needs the new public key"
                            " (--public-key FILE or --generate FILE)"
                        )
                    kind, pem = self._material(old.kind, public_key_pem)
                user = user_for(uow, old.user_id, actor)
                self._users.require_second_factor(uow, user, actor, now=now, purpose="rotate a key")
                issued = self._issue(
                    uow,
                    old.user_id,
                    old.settings,
                    kind,
                    pem,
                    now=now,
                    rotated_from=old.id,
                    trade_lapses_at=old.trade_lapses_at,
                )
                grace_end = now + grace
                if old.settings.expires_at is not None:
                    grace_end = min(grace_end, old.settings.expires_at)
                uow.keys.update(
                    replace(old, rotated_to=issued.key.id, grace_ends_at=grace_end, updated_at=now)
                )
                uow.audit.append(
                    [
                        actor.event(
                            now,
                            "key.rotated",
                            user_id=old.user_id,
                            key_prefix=old.prefix,
                            details=details_text(
                                {"successor": issued.key.prefix, "graceEndsAt": grace_end}
                            ),
                        )
                    ]
                )
                uow.commit()
        self._cache.invalidate(old.id)
        return issued

    # -- internals ---------------------------------------------------------------------

    def _set_mode(self, ref: KeyRef, mode: Mode, event: str, *, now: int, actor: Actor) -> ApiKey:
        with self._recorded(actor, now):
            with self._uow() as uow:
                key = self._resolve(uow, ref, actor, for_update=True)
                self._require_changeable(key, now)
                current = key.settings.policy.mode
                if mode is Mode.FROZEN and current is Mode.FROZEN:
                    raise Conflict(f"key {key.prefix} is already frozen")
                if mode is Mode.NORMAL and current is not Mode.FROZEN:
                    raise Conflict(f"key {key.prefix} is not frozen")
                if mode.strictness < current.strictness:
                    self._users.require_second_factor(
                        uow,
                        user_for(uow, key.user_id, actor),
                        actor,
                        now=now,
                        purpose="unfreeze a key",
                    )
                updated = replace(
                    key,
                    settings=replace(key.settings, policy=replace(key.settings.policy, mode=mode)),
                    updated_at=now,
                )
                uow.keys.update(updated)
                uow.audit.append(
                    [actor.event(now, event, user_id=key.user_id, key_prefix=key.prefix)]
                )
                uow.commit()
        self._cache.invalidate(key.id)
        return updated

    def _issue(
        self,
        uow: UnitOfWork,
        user_id: int,
        settings: KeySettings,
        kind: KeyKind,
        public_pem: str | None,
        *,
        now: int,
        rotated_from: int | None = None,
        trade_lapses_at: int | None = None,
    ) -> IssuedKey:
        api_key = generate_api_key()
        lookup_hash = keyed_hash(self._pepper, api_key)
        secret = generate_secret() if kind is KeyKind.HMAC_SHA256 else None
        envelope = (
            None
            if secret is None
            else self._keyring.seal(secret.encode("ascii"), secret_context(lookup_hash))
        )
        key = uow.keys.add(
            ApiKey(
                id=0,
                user_id=user_id,
                kind=kind,
                prefix=display_prefix(api_key),
                lookup_hash=lookup_hash,
                settings=settings,
                created_at=now,
                updated_at=now,
                secret_envelope=envelope,
                public_key_pem=public_pem,
                trade_lapses_at=trade_lapse(
                    settings.permissions,
                    settings.allowlist,
                    now=now,
                    days=self.config.unrestricted_trade_days,
                    current=trade_lapses_at,
                ),
                rotated_from=rotated_from,
            )
        )
        return IssuedKey(api_key, secret, key)

    @staticmethod
    def _material(kind: KeyKind, public_key_pem: str | bytes | None) -> tuple[KeyKind, str | None]:
        if public_key_pem is None:
            if kind is not KeyKind.HMAC_SHA256:
                raise InvalidPublicKey(f"an {kind.value} key needs a public key PEM")
            return kind, None
        loaded = load_public_key(public_key_pem)
        if kind is KeyKind.HMAC_SHA256:
            return loaded.kind, loaded.pem
        if loaded.kind is not kind:
            raise InvalidPublicKey(
                f"the public key is {loaded.kind.value}, but type {kind.value} was asked for"
            )
        return kind, loaded.pem

    @staticmethod
    def _check_label_free(live: list[ApiKey], label: str, user: User) -> None:
        if any(k.settings.label == label for k in live):
            raise Conflict(f"{user.email} already has an active key labelled {label!r}")

    @staticmethod
    def _require_changeable(key: ApiKey, now: int) -> None:
        status = key.status(now)
        if status in (KeyStatus.REVOKED, KeyStatus.EXPIRED):
            raise Conflict(f"key {key.prefix} is {status.value.lower()}")
        if status is KeyStatus.ROTATED:
            raise Conflict(f"key {key.prefix} was rotated; change its successor instead")

    def _recorded(self, actor: Actor, now: int) -> AbstractContextManager[None]:
        """Count a wrong 2FA code against the acting user even though the change rolls back."""
        if actor.user_id is None:
            return nullcontext()
        return self._users.failures_recorded(self._users.get(actor.user_id), actor, now)

    def _resolve(
        self, uow: UnitOfWork, ref: KeyRef, actor: Actor, *, for_update: bool = False
    ) -> ApiKey:
        key: ApiKey | None = None
        match ref:
            case KeyByApiKey(api_key):
                key = uow.keys.by_lookup_hash(keyed_hash(self._pepper, api_key))
            case KeyById(key_id):
                key = uow.keys.get(key_id)
            case KeyByPrefix(prefix):
                matches = uow.keys.by_prefix(prefix)
                if actor.user_id is not None:
                    matches = [k for k in matches if k.user_id == actor.user_id]
                if len(matches) > 1:
                    raise Conflict(f"{prefix!r} matches {len(matches)} keys; give more characters")
                key = matches[0] if matches else None
        if key is None or (actor.user_id is not None and key.user_id != actor.user_id):
            raise NotFound(f"no key {ref.shown!r}")
        if for_update:
            locked = uow.keys.get(key.id, for_update=True)
            assert locked is not None
            return locked
        return key

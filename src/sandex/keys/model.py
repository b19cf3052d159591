"""The API key entity and the settings a user chooses for it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from sandex.keys.allowlist import IpAllowlist
from sandex.keys.errors import InvalidExpiry, InvalidLabel
from sandex.keys.material import KeyKind
from sandex.keys.permissions import TRADING, Permission, check_permission_rules, permission_names
from sandex.keys.policy import Mode, RiskPolicy

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "MAX_LABEL_LENGTH",
    "KeyStatus",
    "KeySettings",
    "ApiKey",
    "validate_label",
    "trade_lapse",
]

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
MAX_LABEL_LENGTH: Final = 64


class KeyStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    FROZEN = "FROZEN"
    ROTATED = "ROTATED"
    """Replaced by a successor; still valid until its grace period ends."""
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


def validate_label(label: str) -> str:
    """Return the label stripped of surrounding spaces, or raise :class:`InvalidLabel`."""
    text = label.strip()
    if not 1 <= len(text) <= MAX_LABEL_LENGTH:
        raise InvalidLabel(f"a label must be 1 to {MAX_LABEL_LENGTH} characters")
    if not text.isprintable():
        raise InvalidLabel("a label must contain printable characters only")
    return text


def trade_lapse(
    permissions: Permission, allowlist: IpAllowlist, *, now: int, days: int, current: int | None
) -> int | None:
    """When trading lapses on a key without an IP allowlist (None: it does not lapse)."""
    if not permissions & TRADING or allowlist:
        return None
    return current if current is not None else now + days * DAY_MS


@dataclass(frozen=True)
class KeySettings:
    """Everything a user chooses about a key (label, permissions, restrictions, policy)."""

    label: str
    permissions: Permission = Permission.READ
    allowlist: IpAllowlist = field(default_factory=IpAllowlist)
    expires_at: int | None = None
    policy: RiskPolicy = field(default_factory=RiskPolicy)

    def validated(self, *, now: int) -> KeySettings:
        """These settings with the label normalised; raises when a rule is broken."""
        check_permission_rules(
            self.permissions | Permission.READ, has_allowlist=bool(self.allowlist)
        )
        if self.expires_at is not None and self.expires_at <= now:
            raise InvalidExpiry("the expiry date is in the past")
        return KeySettings(
            validate_label(self.label),
            self.permissions | Permission.READ,
            self.allowlist,
            self.expires_at,
            self.policy,
        )

    def widened_in(self, new: KeySettings) -> list[str]:
        """What ``new`` allows that these settings did not: the changes that need 2FA."""
        wider = []
        added = new.permissions & ~self.permissions
        if added:
            wider.append("permissions " + ",".join(permission_names(added)))
        if not self.allowlist.covers(new.allowlist):
            wider.append("IP allowlist")
        if self.expires_at is not None and (
            new.expires_at is None or new.expires_at > self.expires_at
        ):
            wider.append("expiry")
        wider.extend(self.policy.loosened_in(new.policy))
        return wider


@dataclass(frozen=True)
class ApiKey:
    """A stored API key. Holds no plaintext secret: a lookup hash, and either an
    envelope-sealed HMAC secret or the user's public key."""

    id: int
    user_id: int
    kind: KeyKind
    prefix: str
    lookup_hash: bytes
    settings: KeySettings
    created_at: int
    updated_at: int
    secret_envelope: bytes | None = field(default=None, repr=False)
    public_key_pem: str | None = None
    trade_lapses_at: int | None = None
    revoked_at: int | None = None
    rotated_from: int | None = None
    rotated_to: int | None = None
    grace_ends_at: int | None = None
    last_used_at: int | None = None
    last_used_ip: str | None = None

    @property
    def dies_at(self) -> int | None:
        """The first moment the key stops authenticating on its own (expiry or grace end)."""
        ends = [t for t in (self.settings.expires_at, self.grace_ends_at) if t is not None]
        return min(ends) if ends else None

    def status(self, now: int) -> KeyStatus:
        if self.revoked_at is not None and self.revoked_at <= now:
            return KeyStatus.REVOKED
        expires = self.settings.expires_at
        if expires is not None and now >= expires:
            return KeyStatus.EXPIRED
        if self.grace_ends_at is not None and now >= self.grace_ends_at:
            return KeyStatus.REVOKED  # rotated, and the grace period is over
        if self.rotated_to is not None:
            return KeyStatus.ROTATED
        if self.settings.policy.mode is Mode.FROZEN:
            return KeyStatus.FROZEN
        return KeyStatus.ACTIVE

    def counts_toward_limit(self, now: int) -> bool:
        """Active and frozen keys count toward the per-user limit; keys being rotated out do not."""
        return self.status(now) in (KeyStatus.ACTIVE, KeyStatus.FROZEN)

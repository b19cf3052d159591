"""How keys and audit records are shown (CLI ``--json`` and the management API)."""

from __future__ import annotations

from typing import Any

from sandex.keys import ApiKey, AuditRecord, KeyKind, permission_names
from sandex.keys.model import DAY_MS

__all__ = ["key_view", "audit_view", "LAPSE_WARNING_DAYS"]

LAPSE_WARNING_DAYS = 7


def key_view(key: ApiKey, *, now: int) -> dict[str, Any]:
    """A key as the user may see it: never the secret, never the full API key."""
    s = key.settings
    p = s.policy
    warnings = []
    lapse = key.trade_lapses_at
    if lapse is not None:
        if now >= lapse:
            warnings.append("trading permissions lapsed: the key has no IP allowlist")
        elif lapse - now <= LAPSE_WARNING_DAYS * DAY_MS:
            days = max(1, (lapse - now) // DAY_MS)
            warnings.append(f"trading lapses in {days} day(s) unless an IP allowlist is added")
    expires = s.expires_at
    if expires is not None and now < expires and expires - now <= LAPSE_WARNING_DAYS * DAY_MS:
        warnings.append(f"the key expires in {max(1, (expires - now) // DAY_MS)} day(s)")
    return {
        "id": key.id,
        "userId": key.user_id,
        "prefix": key.prefix,
        "label": s.label,
        "type": key.kind.value,
        "permissions": permission_names(s.permissions),
        "ipRestrict": bool(s.allowlist),
        "ips": list(s.allowlist.entries),
        "status": key.status(now).value,
        "createdAt": key.created_at,
        "updatedAt": key.updated_at,
        "expiresAt": expires,
        "tradingAuthorityExpirationTime": lapse,
        "lastUsedAt": key.last_used_at,
        "lastUsedIp": key.last_used_ip,
        "rotatedFrom": key.rotated_from,
        "rotatedTo": key.rotated_to,
        "graceEndsAt": key.grace_ends_at,
        "revokedAt": key.revoked_at,
        "policy": {
            "mode": p.mode.value,
            "symbols": None if p.symbols is None else sorted(p.symbols),
            "maxNotional": None if p.max_notional is None else str(p.max_notional),
            "maxOpenOrders": p.max_open_orders,
        },
        "signatureFormat": "hex" if key.kind is KeyKind.HMAC_SHA256 else "base64",
        "warnings": warnings,
    }


def audit_view(record: AuditRecord) -> dict[str, Any]:
    e = record.event
    return {
        "seq": record.seq,
        "ts": e.ts,
        "event": e.event,
        "actor": e.actor,
        "userId": e.user_id,
        "keyPrefix": e.key_prefix,
        "ip": e.ip,
        "endpoint": e.endpoint,
        "outcome": e.outcome,
        "reason": e.reason,
        "details": e.details,
    }

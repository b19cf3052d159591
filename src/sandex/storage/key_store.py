"""API keys in SQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update

from sandex.keys import ApiKey, IpAllowlist, KeyKind, KeySettings, Mode, Permission, RiskPolicy
from sandex.storage.tables import api_keys, key_changes

__all__ = ["SqlKeyRepository", "key_row"]


def key_row(key: ApiKey) -> dict[str, Any]:
    """The column values for ``key`` (without its id)."""
    s = key.settings
    p = s.policy
    return {
        "user_id": key.user_id,
        "kind": key.kind.value,
        "prefix": key.prefix,
        "lookup_hash": key.lookup_hash,
        "label": s.label,
        "permissions": int(s.permissions),
        "ip_allowlist": ",".join(s.allowlist.entries),
        "expires_at": s.expires_at,
        "symbols": None if p.symbols is None else ",".join(sorted(p.symbols)),
        "max_notional": None if p.max_notional is None else str(p.max_notional),
        "max_open_orders": p.max_open_orders,
        "mode": p.mode.value,
        "secret_envelope": key.secret_envelope,
        "public_key_pem": key.public_key_pem,
        "created_at": key.created_at,
        "updated_at": key.updated_at,
        "trade_lapses_at": key.trade_lapses_at,
        "revoked_at": key.revoked_at,
        "rotated_from": key.rotated_from,
        "rotated_to": key.rotated_to,
        "grace_ends_at": key.grace_ends_at,
        "last_used_at": key.last_used_at,
        "last_used_ip": key.last_used_ip,
    }


def _key(row: Any) -> ApiKey:
    policy = RiskPolicy(
        None if row.symbols is None else frozenset(row.symbols.split(",")),
        None if row.max_notional is None else Decimal(row.max_notional),
        row.max_open_orders,
        Mode(row.mode),
    )
    settings = KeySettings(
        row.label,
        Permission(row.permissions),
        IpAllowlist(tuple(row.ip_allowlist.split(","))) if row.ip_allowlist else IpAllowlist(),
        row.expires_at,
        policy,
    )
    return ApiKey(
        id=row.id,
        user_id=row.user_id,
        kind=KeyKind(row.kind),
        prefix=row.prefix,
        lookup_hash=bytes(row.lookup_hash),
        settings=settings,
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret_envelope=None if row.secret_envelope is None else bytes(row.secret_envelope),
        public_key_pem=row.public_key_pem,
        trade_lapses_at=row.trade_lapses_at,
        revoked_at=row.revoked_at,
        rotated_from=row.rotated_from,
        rotated_to=row.rotated_to,
        grace_ends_at=row.grace_ends_at,
        last_used_at=row.last_used_at,
        last_used_ip=row.last_used_ip,
    )


_RECORD_USE = (
    update(api_keys)
    .where(
        and_(
            api_keys.c.id == bindparam("key_id"),
            or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < bindparam("at")),
        )
    )
    .values(last_used_at=bindparam("at"), last_used_ip=bindparam("ip"))
)


class SqlKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, key: ApiKey) -> ApiKey:
        result = self._conn.execute(insert(api_keys).values(**key_row(key)))
        (key_id,) = result.inserted_primary_key or (None,)
        assert key_id is not None
        return replace(key, id=int(key_id))

    def add_many(self, keys: Iterable[ApiKey]) -> None:
        """Bulk insert (imports and benchmarks); ids are assigned by the database."""
        self._conn.execute(insert(api_keys), [key_row(k) for k in keys])

    def get(self, key_id: int, *, for_update: bool = False) -> ApiKey | None:
        if not 0 < key_id < 2**31:  # no such id fits the column (PostgreSQL would refuse it)
            return None
        query = select(api_keys).where(api_keys.c.id == key_id)
        if for_update:
            query = query.with_for_update()
        row = self._conn.execute(query).first()
        return None if row is None else _key(row)

    def by_lookup_hash(self, lookup_hash: bytes) -> ApiKey | None:
        row = self._conn.execute(
            select(api_keys).where(api_keys.c.lookup_hash == lookup_hash)
        ).first()
        return None if row is None else _key(row)

    def by_prefix(self, prefix: str) -> list[ApiKey]:
        """Keys whose display prefix starts with ``prefix``."""
        rows = self._conn.execute(
            select(api_keys)
            .where(api_keys.c.prefix.startswith(prefix, autoescape=True))
            .order_by(api_keys.c.id)
        )
        return [_key(r) for r in rows]

    def for_user(self, user_id: int) -> list[ApiKey]:
        rows = self._conn.execute(
            select(api_keys).where(api_keys.c.user_id == user_id).order_by(api_keys.c.id)
        )
        return [_key(r) for r in rows]

    def update(self, key: ApiKey) -> None:
        """Store ``key`` and note the change in the feed other server processes watch."""
        self._conn.execute(update(api_keys).where(api_keys.c.id == key.id).values(**key_row(key)))
        self._conn.execute(insert(key_changes).values(key_id=key.id, changed_at=key.updated_at))

    def changes_since(self, since: int) -> list[tuple[int, int]]:
        """``(seq, key_id)`` of every change noted at or after ``since`` (epoch ms)."""
        rows = self._conn.execute(
            select(key_changes.c.seq, key_changes.c.key_id)
            .where(key_changes.c.changed_at >= since)
            .order_by(key_changes.c.seq)
        )
        return [(int(seq), int(key_id)) for seq, key_id in rows]

    def prune_changes(self, before: int) -> int:
        """Forget changes noted before ``before``; how many were removed."""
        result = self._conn.execute(delete(key_changes).where(key_changes.c.changed_at < before))
        return int(result.rowcount or 0)

    def record_use(self, uses: Iterable[tuple[int, int, str]]) -> None:
        params = [{"key_id": k, "at": at, "ip": ip} for k, at, ip in uses]
        if params:
            self._conn.execute(_RECORD_USE, params)

    def count(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(api_keys)).scalar_one())

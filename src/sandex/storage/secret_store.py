"""Server secrets, and the scan over every sealed value that master-key rotation needs."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from sandex.service.errors import Conflict
from sandex.service.ports import SealedValue
from sandex.storage.tables import api_keys, server_secrets, users

__all__ = ["SqlServerSecretRepository", "SqlSealedStore"]


class SqlServerSecretRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, name: str) -> bytes | None:
        value = self._conn.execute(
            select(server_secrets.c.envelope).where(server_secrets.c.name == name)
        ).scalar_one_or_none()
        return None if value is None else bytes(value)

    def add(self, name: str, envelope: bytes) -> None:
        try:
            with self._conn.begin_nested():
                self._conn.execute(insert(server_secrets).values(name=name, envelope=envelope))
        except IntegrityError:
            raise Conflict(f"server secret {name!r} exists") from None


_SOURCES = (
    ("api_key_secret", api_keys, api_keys.c.id, api_keys.c.secret_envelope),
    ("totp_secret", users, users.c.id, users.c.totp_envelope),
    ("server_secret", server_secrets, server_secrets.c.name, server_secrets.c.envelope),
)


class SqlSealedStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def scan(self, *, batch: int = 1000) -> Iterator[list[SealedValue]]:
        for kind, _table, id_col, env_col in _SOURCES:
            after: object = None
            while True:
                query = select(id_col, env_col).where(env_col.is_not(None))
                if after is not None:
                    query = query.where(id_col > after)
                rows = self._conn.execute(query.order_by(id_col).limit(batch)).all()
                if not rows:
                    break
                yield [SealedValue(kind, str(r[0]), bytes(r[1])) for r in rows]
                after = rows[-1][0]

    def replace(self, value: SealedValue, envelope: bytes) -> bool:
        for kind, table, id_col, env_col in _SOURCES:
            if kind == value.kind:
                row_id: object = value.row if kind == "server_secret" else int(value.row)
                result = self._conn.execute(
                    update(table)
                    .where(id_col == row_id, env_col == value.envelope)
                    .values({env_col.name: envelope})
                )
                return result.rowcount == 1
        raise ValueError(f"unknown sealed value kind {value.kind!r}")

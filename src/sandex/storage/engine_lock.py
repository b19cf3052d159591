"""One engine per database: the exchange tables have a single writer.

On SQLite the engine holds an exclusive ``flock`` on ``exchange.lock`` in the data
directory; on PostgreSQL a session advisory lock (named after the schema) on a
connection of its own. Both die with the process, so an engine killed with ``kill -9``
leaves no lock behind and its successor starts at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

__all__ = ["EngineLock", "EngineLocked"]


class EngineLocked(Exception):
    """Another engine holds this database."""


class EngineLock:
    def __init__(self, engine: Engine, data_dir: Path, schema: str | None) -> None:
        self._engine = engine
        self._path = data_dir / "exchange.lock"
        self._key = int.from_bytes(
            hashlib.blake2b(f"sandex-engine:{schema or ''}".encode(), digest_size=8).digest(),
            "big",
            signed=True,
        )
        self._held: Any = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`EngineLocked` at once."""
        if self._engine.dialect.name == "sqlite":
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise EngineLocked(
                    f"another Sandex engine is running on this data directory ({self._path});"
                    " to serve more gateways for it, use sandex serve --engine remote"
                ) from None
            self._held = fd
            return
        conn = self._engine.connect()
        conn.detach()  # closed for real on release: the lock must not go back to the pool
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
        conn.commit()
        if not got:
            conn.close()
            raise EngineLocked(
                "another Sandex engine is running on this database; to serve more gateways"
                " for it, use sandex serve --engine remote"
            )
        self._held = conn

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if isinstance(held, int):
            os.close(held)
        else:
            held.close()

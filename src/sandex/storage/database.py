"""Engines: SQLite (WAL) in the data directory by default, PostgreSQL when configured."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

__all__ = ["WAL_SIZE_LIMIT", "sqlite_url", "make_engine", "normalize_url", "reader"]

WAL_SIZE_LIMIT = 4 * 1024 * 1024
"""What the write-ahead log is cut back to when a checkpoint lets it start over (SQLite
otherwise keeps the file at its largest size ever)."""


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'sandex.db'}"


def _private_database(path: Path) -> None:
    """Create the SQLite database file readable and writable by its owner only, and take
    group and world access away from an existing one and its ``-wal`` and ``-shm`` files
    (SQLite creates those with the database file's mode)."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            with contextlib.suppress(PermissionError):  # not ours to change: leave it
                file.chmod(mode & 0o700)


def normalize_url(url: str) -> str:
    """Accept ``postgresql://…`` and ``postgres://…`` and use the psycopg 3 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, schema: str | None = None) -> Engine:
    """An engine for ``url``. ``schema`` (PostgreSQL only) puts every table in that schema.

    Bound values never appear in SQLAlchemy's errors or logs (``hide_parameters``).
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            _private_database(Path(database))
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["options"] = f"-csearch_path={schema}"
    return create_engine(
        url, connect_args=connect_args, pool_pre_ping=True, pool_size=10, hide_parameters=True
    )


def reader(engine: Engine) -> Connection:
    """A connection whose transactions only read: on SQLite they begin DEFERRED, so they
    read a snapshot beside the writer and never wait for (or hold) the write lock."""
    return engine.connect().execution_options(sandex_readonly=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front, so two writers queue instead of deadlocking;
        # readers (``sandex_readonly``) never take it: they read a snapshot beside them.
        readonly = conn.get_execution_options().get("sandex_readonly", False)
        conn.exec_driver_sql("BEGIN DEFERRED" if readonly else "BEGIN IMMEDIATE")

"""Shared fixtures: a real Sandex on SQLite and on PostgreSQL, and a fixed clock.

PostgreSQL tests use ``SANDEX_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), each test in a schema of its own that
is dropped afterwards. Without a reachable server they are skipped with the reason —
unless ``CI`` is set, where an unreachable PostgreSQL fails the run.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from sandex.bootstrap import Sandex, open_sandex
from sandex.config import Settings
from sandex.storage import normalize_url
from support import FAST_HASH, PG_URL, REDIS_URL

pytest_plugins = ["http_support"]


NOW = 1_800_000_000_000
"""A fixed 'now' (2027-01-15T08:00:00Z) in epoch ms; tests move time by passing other values."""

_pg_state: dict[str, str | None] = {}


def _postgres_problem() -> str | None:
    if "problem" not in _pg_state:
        engine = create_engine(normalize_url(PG_URL))
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            _pg_state["problem"] = None
        except OperationalError as exc:
            _pg_state["problem"] = f"PostgreSQL at {PG_URL} is unreachable: {exc.orig}"
        finally:
            engine.dispose()
    return _pg_state["problem"]


def _unavailable(problem: str | None) -> None:
    """Skip the test when a service it needs is unreachable; fail instead when CI is set."""
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem} (CI is set, so this fails instead of skipping)")
        pytest.skip(problem)


def _redis_problem(url: str) -> str | None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis at {url} is unreachable: {exc}"
    finally:
        client.close()
    return None


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    """A Redis key namespace of this test's own, emptied afterwards; skipped (failed when
    CI is set) without Redis."""
    _unavailable(_redis_problem(REDIS_URL))
    namespace = f"sandex-test-{os.getpid()}-{secrets.token_hex(4)}"
    yield namespace
    client = redis.Redis.from_url(REDIS_URL)
    try:
        names = list(client.scan_iter(match=f"{namespace}:*"))
        if names:
            client.delete(*names)
    finally:
        client.close()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped after the test."""
    _unavailable(_postgres_problem())
    schema = f"sandex_test_{os.getpid()}_{secrets.token_hex(4)}"
    engine = create_engine(normalize_url(PG_URL))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings for a fresh Sandex on ``backend`` with its data directory in ``tmp_path``."""
    data_dir = tmp_path / "data"
    if backend == "sqlite":
        return Settings(data_dir=data_dir, password_hash=FAST_HASH)
    schema = request.getfixturevalue("pg_schema")
    return Settings(
        data_dir=data_dir, database_url=PG_URL, database_schema=schema, password_hash=FAST_HASH
    )


@pytest.fixture
def sandex(settings: Settings) -> Iterator[Sandex]:
    with open_sandex(settings) as sx:
        yield sx

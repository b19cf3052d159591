"""The database under concurrent use: readers beside a writer, the SQLite write-ahead log,
the exchange writer's own connection, and who may read the database files.

What was broken: the periodic checkpoint ran inside the ``BEGIN IMMEDIATE`` every pooled
connection opened, so it always failed and the log grew for good; order history reads
took the write lock; and after a lock conflict the exchange writer gave its connection,
with ``busy_timeout=0``, back to the pool, where the next reader or sign-up failed at
once with "database is locked" (a 500).
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from conftest import NOW
from sandex.bootstrap import Sandex, open_sandex
from sandex.config import Settings
from sandex.service.journal import Batch
from sandex.service.ports import History, StorageBusy
from sandex.storage.database import WAL_SIZE_LIMIT, make_engine, sqlite_url
from sandex.storage.exchange_store import SqlExchangeStore
from support import FAST_HASH, OPERATOR, make_user

READ_DEADLINE_S = 5.0
"""A read that has not returned by then is waiting for the writer (SQLite's busy timeout
is 30 s)."""


@pytest.fixture
def sqlite_sandex(tmp_path: Path) -> Iterator[Sandex]:
    with open_sandex(Settings(data_dir=tmp_path / "data", password_hash=FAST_HASH)) as sx:
        yield sx


def _journal_batch(now: int, size: int = 4000) -> Batch:
    """A batch the size of a busy moment's: one ledger journal row of ``size`` bytes."""
    batch = Batch(now)
    batch.journal.append("x" * size)
    return batch


# -- the write-ahead log --------------------------------------------------------------------


def test_a_checkpoint_copies_the_log_into_the_database_and_the_log_stays_small(
    sqlite_sandex: Sandex,
) -> None:
    store = SqlExchangeStore(sqlite_sandex.db)
    db = sqlite_sandex.settings.data_dir / "sandex.db"
    wal = db.with_name("sandex.db-wal")
    size_before = db.stat().st_size
    try:
        for n in range(3000):  # about 12 MB of log, three times the limit
            store.write(_journal_batch(NOW + n))
        assert wal.stat().st_size > 2 * WAL_SIZE_LIMIT
        store.checkpoint()  # raised "database table is locked", every time
        assert db.stat().st_size > size_before + 2 * WAL_SIZE_LIMIT  # the rows are in it
        store.write(_journal_batch(NOW + 3000))  # the log starts over, and is cut back
        assert wal.stat().st_size <= WAL_SIZE_LIMIT
    finally:
        store.close()


def test_the_log_stays_bounded_under_steady_writes_and_reads(sqlite_sandex: Sandex) -> None:
    """Commits keep arriving and a reader keeps reading, as in a busy server: a PASSIVE
    checkpoint alone would never see a moment when the log may start over; past the
    limit the store makes one (RESTART), and the log stays within a few MB."""
    store = SqlExchangeStore(sqlite_sandex.db)
    wal = sqlite_sandex.settings.data_dir / "sandex.db-wal"
    window = History(None, None, None, 50)
    stop = threading.Event()
    sizes: list[int] = []

    def checkpoints() -> None:
        while not stop.wait(0.05):
            store.checkpoint()
            sizes.append(wal.stat().st_size)

    def reads() -> None:
        while not stop.is_set():
            store.orders(1, "BTCUSDT", window)

    helpers = [threading.Thread(target=checkpoints), threading.Thread(target=reads)]
    for thread in helpers:
        thread.start()
    try:
        for n in range(3000):  # about 12 MB of log
            while True:
                try:
                    store.write(_journal_batch(NOW + n))
                    break
                except StorageBusy:  # a RESTART checkpoint holds writers back a moment
                    time.sleep(0.001)
            time.sleep(0.0005)  # a server's writer has requests to answer between batches
    finally:
        stop.set()
        for thread in helpers:
            thread.join()
        store.close()
    assert len(sizes) > 5 and max(sizes) < 3 * WAL_SIZE_LIMIT, sizes


# -- the exchange writer's connection ---------------------------------------------------------


def test_a_lock_conflict_leaves_no_pooled_connection_without_its_busy_timeout(
    sqlite_sandex: Sandex,
) -> None:
    engine = sqlite_sandex.db
    store = SqlExchangeStore(engine)
    try:
        store.write(_journal_batch(NOW))
        with engine.connect() as other:
            other.begin()  # BEGIN IMMEDIATE: another writer has the database
            with pytest.raises(StorageBusy):
                store.write(_journal_batch(NOW + 1))
        # every connection the pool now hands out waits for a writer as configured
        pooled = [engine.raw_connection() for _ in range(engine.pool.checkedin())]
        try:
            for conn in pooled:
                cursor = conn.cursor()
                cursor.execute("PRAGMA busy_timeout")
                assert cursor.fetchone() == (30000,)
                cursor.execute("PRAGMA wal_autocheckpoint")
                assert cursor.fetchone() == (1000,)
        finally:
            for conn in pooled:
                conn.close()
        store.write(_journal_batch(NOW + 2))  # and the writer goes on
    finally:
        store.close()


# -- readers beside a writer -------------------------------------------------------------------


def _reads(sx: Sandex, store: SqlExchangeStore, user_id: int) -> list[Callable[[], object]]:
    window = History(None, None, None, 500)
    return [
        lambda: store.order(1, "BTCUSDT", 1, None),
        lambda: store.orders(1, "BTCUSDT", window),
        lambda: store.trades(1, "BTCUSDT", window),
        lambda: store.trades(1, "BTCUSDT", window, order_id=1),
        store.pending_credits,
        lambda: store.credit_applied(1),
        lambda: store.pending_shocks(NOW),
        store.load,
        lambda: sx.keys.for_user(user_id, actor=OPERATOR),
    ]


def test_history_reads_never_wait_for_a_writer(sandex: Sandex) -> None:
    store = SqlExchangeStore(sandex.db)
    user = make_user(sandex, now=NOW)
    reads = _reads(sandex, store, user.id)
    with sandex.db.connect() as writer, ThreadPoolExecutor(1) as pool:
        writer.begin()  # SQLite: BEGIN IMMEDIATE holds the write lock
        if sandex.db.dialect.name == "postgresql":  # writers wait, readers do not
            writer.execute(text("LOCK TABLE spot_orders, spot_trades, credits IN EXCLUSIVE MODE"))
        try:
            done = pool.submit(lambda: [read() for read in reads])
            done.result(timeout=READ_DEADLINE_S)
        finally:
            writer.rollback()
    store.close()


# -- who may read the files ---------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_its_log_files_are_the_owners_alone(
    sqlite_sandex: Sandex,
) -> None:
    store = SqlExchangeStore(sqlite_sandex.db)
    try:
        store.write(_journal_batch(NOW))  # the -wal and -shm files exist while it is open
        db = sqlite_sandex.settings.data_dir / "sandex.db"
        for path in (db, db.with_name("sandex.db-wal"), db.with_name("sandex.db-shm")):
            assert _mode(path) == 0o600, path.name
    finally:
        store.close()


def test_an_existing_database_readable_by_others_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "sandex.db"
    for path in (db, tmp_path / "sandex.db-wal", tmp_path / "sandex.db-shm"):
        path.touch()
        os.chmod(path, 0o644)
    engine = make_engine(sqlite_url(tmp_path))
    engine.dispose()
    for path in (db, tmp_path / "sandex.db-wal", tmp_path / "sandex.db-shm"):
        assert _mode(path) == 0o600, path.name

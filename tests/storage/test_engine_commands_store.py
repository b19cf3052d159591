"""The answers of broker commands, stored with the batch that applied them (SQLite and
PostgreSQL): read back by id after a crash, and forgotten after a day."""

from __future__ import annotations

from sandex.bootstrap import Sandex
from sandex.service.journal import AppliedCommand, Batch
from sandex.storage.exchange_store import SqlExchangeStore

NOW = 1_800_000_000_000


def test_a_command_answer_is_read_back_by_id_and_pruned_when_old(sandex: Sandex) -> None:
    store = SqlExchangeStore(sandex.db)
    store.write(Batch(NOW, commands=[AppliedCommand("first", b'{"t":"Reply"}')]))
    store.write(Batch(NOW + 10, commands=[AppliedCommand("second", b"{}")]))
    assert store.command_replies(["first", "second", "never"]) == {
        "first": b'{"t":"Reply"}',
        "second": b"{}",
    }
    assert store.prune_commands(NOW + 5) == 1
    assert store.command_replies(["first", "second"]) == {"second": b"{}"}
    store.close()


def test_a_failed_batch_keeps_its_command_for_the_next_write() -> None:
    older = Batch(NOW, commands=[AppliedCommand("a", b"1")])
    newer = Batch(NOW + 1, commands=[AppliedCommand("b", b"2")])
    assert [c.command_id for c in older.merged(newer).commands] == ["a", "b"]

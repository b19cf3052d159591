"""Keeps this process's key cache in step with changes made by other processes.

Every change to a key row is noted in a change feed (storage does it in the same
transaction). Each server process polls the feed a few times a second and drops the
changed keys from its cache, so a key revoked through another worker, another server
or the CLI is refused here within one poll interval.

The feed is read by time with a look-back, not by sequence number alone: on
PostgreSQL a lower sequence number can commit after a higher one is already visible.
"""

from __future__ import annotations

from typing import Final

from sandex.service.keycache import KeyCache
from sandex.service.ports import UnitOfWorkFactory

__all__ = ["KeyChangeWatcher", "LOOKBACK_MS", "KEEP_CHANGES_MS"]

LOOKBACK_MS: Final = 30_000
"""How far back each poll reads: longer than any transaction and any clock skew."""
KEEP_CHANGES_MS: Final = 3_600_000
"""Feed rows older than this are pruned."""
_PRUNE_EVERY: Final = 1000


class KeyChangeWatcher:
    def __init__(self, uow: UnitOfWorkFactory, cache: KeyCache) -> None:
        self._uow = uow
        self._cache = cache
        self._seen: set[int] = set()
        self._polls = 0

    def start(self, now: int) -> None:
        """Remember what the feed holds already (the cache is empty, nothing to drop)."""
        with self._uow(readonly=True) as uow:
            self._seen = {seq for seq, _ in uow.keys.changes_since(now - LOOKBACK_MS)}

    def poll(self, now: int) -> int:
        """Drop every key changed since the last poll from the cache; how many changes."""
        with self._uow(readonly=True) as uow:
            changes = uow.keys.changes_since(now - LOOKBACK_MS)
        fresh = 0
        seen = self._seen
        for seq, key_id in changes:
            if seq not in seen:
                self._cache.invalidate(key_id)
                fresh += 1
        self._seen = {seq for seq, _ in changes}
        self._polls += 1
        if self._polls % _PRUNE_EVERY == 0:
            with self._uow() as uow:
                uow.keys.prune_changes(now - KEEP_CHANGES_MS)
                uow.commit()
        return fresh

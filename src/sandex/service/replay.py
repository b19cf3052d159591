"""In-process replay guard: each valid signature is accepted once inside its window."""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["MemoryReplayGuard"]


class MemoryReplayGuard:
    """Remembers signatures until their request could no longer pass the freshness check.

    Shared by every request of one process. Several processes serving one database
    need a shared guard (Redis), which the gateway provides.
    """

    def __init__(self) -> None:
        self._seen: dict[bytes, int] = {}
        self._order: deque[tuple[int, bytes]] = deque()
        self._lock = threading.Lock()

    def first_use(self, token: bytes, *, expires_at: int, now: int) -> bool:
        with self._lock:
            seen = self._seen
            known = seen.get(token)
            if known is not None and known > now:
                return False
            seen[token] = expires_at
            order = self._order
            order.append((expires_at, token))
            while order and order[0][0] <= now:
                expiry, old = order.popleft()
                if seen.get(old) == expiry:
                    del seen[old]
            return True

    def __len__(self) -> int:
        return len(self._seen)

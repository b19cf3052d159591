"""In-process replay guard: each valid signature is accepted once inside its window."""

from __future__ import annotations

import itertools
from collections import deque

__all__ = ["MemoryReplayGuard"]


class MemoryReplayGuard:
    """Remembers signatures until their request could no longer pass the freshness check.

    Shared by every request of one process. Several processes serving one database
    need a shared guard (Redis), which the gateway provides.

    Safe across threads without a lock: ``dict.setdefault`` is atomic, and each call
    offers a ticket no other call holds, so exactly one caller gets its own ticket back.
    """

    def __init__(self) -> None:
        self._seen: dict[bytes, int] = {}
        self._owners: dict[bytes, bytes] = {}
        self._order: deque[tuple[int, bytes]] = deque()
        self._tickets = itertools.count(1 << 62)  # large ints: never shared cached objects

    def first_use(self, token: bytes, expires_at: int, now: int, owner: bytes = b"") -> bool:
        ticket = next(self._tickets)
        if self._seen.setdefault(token, ticket) is not ticket:
            return bool(owner) and self._owners.get(token) == owner
        if owner:
            self._owners[token] = owner
        order = self._order
        order.append((expires_at, token))
        if order[0][0] <= now:
            self._evict(now)
        return True

    def _evict(self, now: int) -> None:
        """Forget tokens whose window has passed (a request bearing one is refused as stale).

        Tokens leave in arrival order, so one with a long window holds back the shorter
        ones behind it for at most the longest window (60 s).
        """
        seen, order = self._seen, self._order
        while order and order[0][0] <= now:
            try:
                _, token = order.popleft()
            except IndexError:  # another thread emptied it
                return
            seen.pop(token, None)
            self._owners.pop(token, None)

    def __len__(self) -> int:
        return len(self._seen)

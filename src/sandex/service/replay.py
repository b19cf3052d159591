"""In-process replay guard: a signature is used once per route, by one client."""

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
        self._clients: dict[bytes, str] = {}
        self._routes: dict[tuple[bytes, str, str], int] = {}
        self._order: deque[tuple[int, bytes, tuple[bytes, str, str]]] = deque()
        self._tickets = itertools.count(1 << 62)  # large ints: never shared cached objects

    def claim(
        self,
        token: bytes,
        method: str,
        path: str,
        client: str,
        repeatable: bool,
        expires_at: int,
        now: int,
    ) -> bool:
        if self._clients.setdefault(token, client) != client:
            return False  # first used by another address, on whatever route
        used = (token, method, path)
        ticket = next(self._tickets)
        if self._routes.setdefault(used, ticket) is not ticket:
            return repeatable
        order = self._order
        order.append((expires_at, token, used))
        if order[0][0] <= now:
            self._evict(now)
        return True

    def _evict(self, now: int) -> None:
        """Forget tokens whose window has passed (a request bearing one is refused as stale).

        Tokens leave in arrival order, so one with a long window holds back the shorter
        ones behind it for at most the longest window (60 s).
        """
        order = self._order
        while order and order[0][0] <= now:
            try:
                _, token, used = order.popleft()
            except IndexError:  # another thread emptied it
                return
            self._routes.pop(used, None)
            self._clients.pop(token, None)

    def __len__(self) -> int:
        return len(self._clients)

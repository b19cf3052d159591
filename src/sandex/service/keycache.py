"""The in-process cache of keys that authentication reads on every request."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Final

from sandex.keys import IpAllowlist, KeyKind, Mode, Permission
from sandex.keys.signing import Verifier
from sandex.service.requests import Principal

__all__ = ["CachedKey", "KeyCache", "NEVER"]

NEVER: Final = sys.maxsize
_IP_MEMO_LIMIT: Final = 256
_UNKNOWN_LIMIT: Final = 100_000


@dataclass(slots=True, eq=False)
class CachedKey:
    """What authentication needs about one key, ready to use (secret already unsealed).

    A dead key (revoked, or its rotation grace over) is cached too, with ``dead``
    set, so that a client hammering with it costs no database lookup.
    """

    key_id: int
    user_id: int
    prefix: str
    kind: KeyKind
    verify: Verifier
    dies_at: int
    dies_reason: str
    dead: str | None
    allowlist: IpAllowlist | None
    permissions: Permission
    mode: Mode
    normal: bool
    """``mode is NORMAL``, precomputed for the hot path."""
    trade_lapses_at: int | None
    principal: Principal
    ip_memo: dict[str, bool] = field(default_factory=dict)

    def ip_allowed(self, ip: str) -> bool:
        allowlist = self.allowlist
        if allowlist is None:
            return True
        memo = self.ip_memo
        known = memo.get(ip)
        if known is None:
            known = allowlist.allows(ip)
            if len(memo) < _IP_MEMO_LIMIT:
                memo[ip] = known
        return known


class KeyCache:
    """API key → :class:`CachedKey`, plus a bounded memory of keys that do not exist.

    :meth:`invalidate` must be called by every change to a key before the change
    returns to its caller.
    """

    def __init__(self) -> None:
        self.entries: dict[str, CachedKey] = {}
        self._token_by_id: dict[int, str] = {}
        self._unknown: dict[str, int] = {}
        self._lock = threading.Lock()
        self.generation = 0
        """Bumped by every invalidation: a load that started before one must not be cached."""

    def get(self, api_key: str) -> CachedKey | None:
        return self.entries.get(api_key)

    def put(self, api_key: str, entry: CachedKey, *, generation: int) -> bool:
        """Cache ``entry``, read from storage while ``generation`` was current.

        Refused (False) if a key changed since: the read may predate a revocation.
        """
        with self._lock:
            if generation != self.generation:
                return False
            self.entries[api_key] = entry
            self._token_by_id[entry.key_id] = api_key
            return True

    def invalidate(self, key_id: int) -> None:
        with self._lock:
            self.generation += 1
            token = self._token_by_id.pop(key_id, None)
            if token is not None:
                self.entries.pop(token, None)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self.entries.clear()
            self._token_by_id.clear()
            self._unknown.clear()

    def known_unknown(self, api_key: str, now: int) -> bool:
        until = self._unknown.get(api_key)
        return until is not None and now < until

    def note_unknown(self, api_key: str, until: int) -> None:
        with self._lock:
            if len(self._unknown) >= _UNKNOWN_LIMIT:
                self._unknown.clear()
            self._unknown[api_key] = until

    def __len__(self) -> int:
        return len(self.entries)

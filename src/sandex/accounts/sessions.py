"""Management sessions: a short-lived access token and a longer-lived refresh token.

Both are random bearer tokens, shown to the client once and stored only as keyed
hashes. A refresh token is single-use: refreshing issues a new pair, and presenting
a refresh token that was already used ends the session (a copy is in someone else's
hands).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ACCESS_TTL_MS",
    "REFRESH_TTL_MS",
    "ACCESS_PREFIX",
    "REFRESH_PREFIX",
    "Session",
    "SessionTokens",
    "new_session_tokens",
]

ACCESS_TTL_MS: Final = 15 * 60 * 1000
REFRESH_TTL_MS: Final = 7 * 24 * 3600 * 1000
ACCESS_PREFIX: Final = "sdxa_"
REFRESH_PREFIX: Final = "sdxr_"


@dataclass(frozen=True)
class SessionTokens:
    """A fresh pair; exists only in the response that issues it."""

    access: str
    refresh: str


def new_session_tokens() -> SessionTokens:
    return SessionTokens(
        ACCESS_PREFIX + secrets.token_urlsafe(32), REFRESH_PREFIX + secrets.token_urlsafe(32)
    )


@dataclass(frozen=True)
class Session:
    id: int
    user_id: int
    created_at: int
    access_expires_at: int
    refresh_expires_at: int
    revoked_at: int | None
    ip: str | None

    def access_valid(self, now: int) -> bool:
        return self.revoked_at is None and now < self.access_expires_at

    def refresh_valid(self, now: int) -> bool:
        return self.revoked_at is None and now < self.refresh_expires_at

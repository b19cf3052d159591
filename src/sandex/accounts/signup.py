"""Who may sign up through the API: the sign-up mode, one-time invitation codes, and the
per-address sign-up limit.

An invitation code is stored only as a keyed hash (like recovery codes): a database dump
alone does not give out working codes.
"""

from __future__ import annotations

import enum
import hmac
import re
import secrets
from typing import Final

from sandex.accounts.throttle import ThrottlePolicy

__all__ = [
    "SignUpMode",
    "INVITE_PREFIX",
    "INVITE_TTL_MS",
    "MAX_INVITE_TTL_MS",
    "signup_throttle",
    "new_invite_code",
    "normalize_invite_code",
    "invite_digest",
]

INVITE_PREFIX: Final = "sdxi_"
INVITE_TTL_MS: Final = 7 * 86_400_000
"""How long an invitation code works by default: a week."""
MAX_INVITE_TTL_MS: Final = 90 * 86_400_000
_INVITE_ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"
_INVITE_LENGTH: Final = 26  # 26 characters of 31: 128 bits
_INVITE_RE: Final = re.compile(rf"^{INVITE_PREFIX}[{_INVITE_ALPHABET}]{{{_INVITE_LENGTH}}}$")
_HOUR_MS: Final = 3_600_000


class SignUpMode(enum.Enum):
    """``SANDEX_SIGNUP``: whether anyone may sign up through the API."""

    OPEN = "open"
    """Anyone (a limited number of accounts per address and hour)."""
    INVITE = "invite"
    """Only with a one-time code from ``sandex users invite``."""
    CLOSED = "closed"
    """Nobody through the API; the operator creates users with ``sandex users create``."""


def signup_throttle(per_hour: int) -> ThrottlePolicy:
    """``per_hour`` sign-ups from one address, then one an hour until it has been quiet
    for an hour."""
    return ThrottlePolicy(per_hour, _HOUR_MS, _HOUR_MS, _HOUR_MS)


def new_invite_code() -> str:
    """A fresh one-time invitation code, shown once."""
    return INVITE_PREFIX + "".join(secrets.choice(_INVITE_ALPHABET) for _ in range(_INVITE_LENGTH))


def normalize_invite_code(text: str) -> str | None:
    """The canonical form of an invitation code, or None if ``text`` is not shaped like one."""
    cleaned = text.strip().lower()
    return cleaned if _INVITE_RE.match(cleaned) else None


def invite_digest(pepper: bytes, code: str) -> bytes:
    """What is stored for an invitation code: a keyed hash, never the code."""
    return hmac.digest(pepper, b"sandex-invite:" + code.encode("ascii"), "sha256")

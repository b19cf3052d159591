"""Users and their second factor."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TotpSetup", "User"]


@dataclass(frozen=True)
class TotpSetup:
    """A user's TOTP enrolment. The secret is stored sealed, never in the clear."""

    secret_envelope: bytes = field(repr=False)
    enrolled_at: int
    confirmed_at: int | None = None
    last_step: int | None = None


@dataclass(frozen=True)
class User:
    id: int
    email: str
    password_hash: str = field(repr=False)
    created_at: int
    totp: TotpSetup | None = None

    @property
    def has_2fa(self) -> bool:
        """True once TOTP is enrolled *and* confirmed."""
        return self.totp is not None and self.totp.confirmed_at is not None

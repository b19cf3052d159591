"""Errors of the accounts domain.

Our exception hierarchy::

    AccountsError
      InvalidEmail
      WeakPassword
      WrongPassword             password does not match (message never says which of email/password)
      InvalidCode               a TOTP or recovery code is wrong, reused or malformed
      Throttled                 too many failures; ``retry_after_ms`` says when to try again
"""

from __future__ import annotations

__all__ = [
    "AccountsError",
    "InvalidEmail",
    "WeakPassword",
    "WrongPassword",
    "InvalidCode",
    "Throttled",
]


class AccountsError(Exception):
    """Base of every error raised by :mod:`sandex.accounts`."""


class InvalidEmail(AccountsError):
    pass


class WeakPassword(AccountsError):
    pass


class WrongPassword(AccountsError):
    pass


class InvalidCode(AccountsError):
    pass


class Throttled(AccountsError):
    """Too many failed attempts; try again after ``retry_after_ms``."""

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms

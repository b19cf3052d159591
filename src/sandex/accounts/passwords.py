"""Password rules and hashing (argon2id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

from sandex.accounts.errors import WeakPassword, WrongPassword

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "HashParams",
    "DEFAULT_HASH_PARAMS",
    "PasswordHasher",
    "check_password_strength",
]

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024


@dataclass(frozen=True)
class HashParams:
    """argon2id cost parameters."""

    time_cost: int
    memory_kib: int
    parallelism: int = 1


DEFAULT_HASH_PARAMS: Final = HashParams(time_cost=2, memory_kib=32 * 1024)
"""About 70 ms per hash on the 2-core reference machine (above OWASP's 19 MiB, t=2)."""


def check_password_strength(password: str, *, email: str | None = None) -> None:
    """Raise :class:`WeakPassword` with the reason when ``password`` is unacceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"a password must be at most {MAX_PASSWORD_LENGTH} characters")
    if len(set(password)) < 4:
        raise WeakPassword("a password must not be one or a few repeated characters")
    if email is not None and email.lower() in password.lower():
        raise WeakPassword("a password must not contain the e-mail address")


class PasswordHasher:
    """argon2id hashing with Sandex's parameters; verification raises on mismatch."""

    def __init__(self, params: HashParams = DEFAULT_HASH_PARAMS) -> None:
        self.params = params
        self._hasher = _Argon2(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            type=Type.ID,
        )
        self._decoy: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> None:
        """Raise :class:`WrongPassword` unless ``password`` matches."""
        try:
            self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError, ValueError):  # ValueError: corrupt hash text
            raise WrongPassword("wrong e-mail or password") from None

    def burn(self, password: str) -> None:
        """Spend the time of a verification (for unknown users: no timing oracle)."""
        if self._decoy is None:
            self._decoy = self._hasher.hash("sandex decoy password for unknown users")
        try:
            self._hasher.verify(self._decoy, password)
        except (VerificationError, InvalidHashError):
            pass

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

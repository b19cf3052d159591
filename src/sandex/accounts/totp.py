"""TOTP second factor (RFC 6238 via pyotp) and single-use recovery codes.

A code is accepted for the current 30-second step or one step either side, and
only for a step later than the last one accepted: a code cannot be used twice.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Final

import pyotp

from sandex.accounts.errors import InvalidCode

__all__ = [
    "TOTP_STEP_MS",
    "RECOVERY_CODE_COUNT",
    "new_totp_secret",
    "provisioning_uri",
    "match_totp",
    "new_recovery_codes",
    "normalize_recovery_code",
    "recovery_code_digest",
    "is_totp_code",
]

TOTP_STEP_MS: Final = 30_000
_WINDOW: Final = 1
RECOVERY_CODE_COUNT: Final = 10
_TOTP_RE: Final = re.compile(r"^[0-9]{6}$")
_RECOVERY_ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_RE: Final = re.compile(rf"^[{_RECOVERY_ALPHABET}]{{5}}-?[{_RECOVERY_ALPHABET}]{{5}}$")


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, email: str, issuer: str = "Sandex") -> str:
    """The ``otpauth://`` URI an authenticator app scans."""
    uri: str = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)
    return uri


def is_totp_code(code: str) -> bool:
    return bool(_TOTP_RE.match(code.strip()))


def match_totp(secret: str, code: str, *, now: int, last_step: int | None) -> int:
    """Return the time step ``code`` is valid for, or raise :class:`InvalidCode`.

    Steps at or before ``last_step`` (already used) are refused.
    """
    text = code.strip()
    if not _TOTP_RE.match(text):
        raise InvalidCode("a 2FA code is 6 digits")
    totp = pyotp.TOTP(secret)
    current = now // TOTP_STEP_MS
    reused = False
    for step in (current, current - _WINDOW, current + _WINDOW):
        if hmac.compare_digest(totp.generate_otp(step), text):
            if last_step is not None and step <= last_step:
                reused = True
                continue
            return step
    if reused:
        raise InvalidCode("this 2FA code was already used; wait for the next one")
    raise InvalidCode("wrong 2FA code")


def new_recovery_codes() -> list[str]:
    """Ten fresh single-use recovery codes like ``k7m2p-x9q4r`` (about 50 bits each)."""
    return [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5))
        + "-"
        + "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5))
        for _ in range(RECOVERY_CODE_COUNT)
    ]


def normalize_recovery_code(text: str) -> str | None:
    """The canonical form of a recovery code, or None if ``text`` is not shaped like one."""
    cleaned = text.strip().lower().replace(" ", "")
    if not _RECOVERY_RE.match(cleaned):
        return None
    flat = cleaned.replace("-", "")
    return f"{flat[:5]}-{flat[5:]}"


def recovery_code_digest(pepper: bytes, code: str) -> bytes:
    """What is stored for a recovery code: a keyed hash, never the code."""
    return hmac.digest(pepper, b"sandex-recovery:" + code.encode("ascii"), "sha256")

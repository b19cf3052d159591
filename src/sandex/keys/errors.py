"""Errors of the key domain.

Our exception hierarchy::

    KeysError
      InvalidKeySpec            a requested key setting is not acceptable (message says why)
        InvalidLabel
        InvalidPermissions
        InvalidAllowlist
        InvalidExpiry
        InvalidPolicy
        InvalidPublicKey
      BadSignature              a request signature does not verify
      SealError                 an envelope cannot be opened (wrong master key, tampering)
      BadDigest                 an audit digest is malformed, forged or from another database
      AccessDenied              a key may not do what a request asks (permission, mode, lapse)
      PolicyViolation           an order breaks the key's risk policy
"""

from __future__ import annotations

__all__ = [
    "KeysError",
    "InvalidKeySpec",
    "InvalidLabel",
    "InvalidPermissions",
    "InvalidAllowlist",
    "InvalidExpiry",
    "InvalidPolicy",
    "InvalidPublicKey",
    "BadSignature",
    "SealError",
    "BadDigest",
    "AccessDenied",
    "PolicyViolation",
]


class KeysError(Exception):
    """Base of every error raised by :mod:`sandex.keys`."""


class InvalidKeySpec(KeysError):
    """A requested key setting is not acceptable; the message says what is wrong."""


class InvalidLabel(InvalidKeySpec):
    pass


class InvalidPermissions(InvalidKeySpec):
    pass


class InvalidAllowlist(InvalidKeySpec):
    pass


class InvalidExpiry(InvalidKeySpec):
    pass


class InvalidPolicy(InvalidKeySpec):
    pass


class InvalidPublicKey(InvalidKeySpec):
    pass


class BadSignature(KeysError):
    """A signature does not verify over the payload."""


class SealError(KeysError):
    """An envelope cannot be opened: unknown master key, wrong context, or tampering."""


class BadDigest(KeysError):
    """An audit digest file is malformed, forged, altered, renamed or from another database."""


class AccessDenied(KeysError):
    """A key may not perform the requested operation.

    ``permission`` names the missing permission when that is the reason.
    """

    def __init__(self, message: str, *, permission: str | None = None) -> None:
        super().__init__(message)
        self.permission = permission


class PolicyViolation(KeysError):
    """An order breaks the key's risk policy; ``limit`` names the rule."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit

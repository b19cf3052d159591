"""Errors of the service layer.

Our exception hierarchy::

    ServiceError
      NotFound                  no such user or key (or not yours)
      Conflict                  e-mail taken, label in use, key already revoked ...
      LimitReached              too many keys
      SecondFactorRequired      this change needs a valid 2FA code (or 2FA enrolled first)
      InvalidRequest            the request makes no sense for this object (e.g. grace too long)
      SignUpRefused             sign-up through the API is closed, or needs a valid invitation
      MasterKeyProblem          the keyring does not fit the database
      AuditDigestProblem        no audit digest can be written (directory, or a log that was cut)
      AuthenticationFailed      a signed request is refused; carries the Binance code and message
        ApiKeyFormatInvalid       -2014, step 1
        ApiKeyRejected            -2015, step 2 (unknown, revoked, expired: deliberately vague)
          UnknownApiKey             no such key (a guess, or a deleted key)
        MandatoryParameterMissing -1102, step 3 / 4
        IllegalParameter          -1100, step 3
        RecvWindowTooLarge        -1131, step 3
        TimestampOutsideWindow    -1021, step 3
        SignatureInvalid          -1022, step 4
        RequestReplayed           -1021, step 5
        IpNotAllowed              -2015, step 6 (names the IP)
        PermissionMissing         -2015, step 7 (names the permission or mode)

``code`` and ``msg`` are what the client sees; ``reason`` is the precise cause, for the
audit log only. The HTTP status for each is chosen in ``sandex.http.errors``.
"""

from __future__ import annotations

from typing import ClassVar

from sandex.exchange.rejections import illegal, missing

__all__ = [
    "ServiceError",
    "NotFound",
    "Conflict",
    "LimitReached",
    "SecondFactorRequired",
    "InvalidRequest",
    "SignUpRefused",
    "MasterKeyProblem",
    "AuditDigestProblem",
    "AuthenticationFailed",
    "ApiKeyFormatInvalid",
    "ApiKeyRejected",
    "UnknownApiKey",
    "MandatoryParameterMissing",
    "IllegalParameter",
    "RecvWindowTooLarge",
    "TimestampOutsideWindow",
    "SignatureInvalid",
    "RequestReplayed",
    "IpNotAllowed",
    "PermissionMissing",
]


class ServiceError(Exception):
    """Base of every error raised by :mod:`sandex.service`."""


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class LimitReached(ServiceError):
    pass


class SecondFactorRequired(ServiceError):
    pass


class InvalidRequest(ServiceError):
    pass


class SignUpRefused(ServiceError):
    pass


class MasterKeyProblem(ServiceError):
    pass


class AuditDigestProblem(ServiceError):
    pass


class AuthenticationFailed(ServiceError):
    """A signed request is refused."""

    code: ClassVar[int] = -2015
    step: ClassVar[int] = 2

    def __init__(self, msg: str, *, reason: str) -> None:
        super().__init__(msg)
        self.msg = msg
        self.reason = reason


class ApiKeyFormatInvalid(AuthenticationFailed):
    code = -2014
    step = 1

    def __init__(self, *, reason: str) -> None:
        super().__init__("API-key format invalid.", reason=reason)


class ApiKeyRejected(AuthenticationFailed):
    code = -2015
    step = 2

    def __init__(self, *, reason: str) -> None:
        super().__init__("Invalid API-key, IP, or permissions for action.", reason=reason)


class UnknownApiKey(ApiKeyRejected):
    """No key has this value. The client sees what any other refused key gets; the
    gateway charges the failure to the sending address alone, while a revoked or
    expired key's refusal is charged to no one (its bot is merely out of date)."""

    def __init__(self) -> None:
        super().__init__(reason="unknown API key")


class MandatoryParameterMissing(AuthenticationFailed):
    code = -1102
    step = 3

    def __init__(self, name: str) -> None:
        super().__init__(
            missing(name).msg,
            reason=f"missing {name}",
        )


class IllegalParameter(AuthenticationFailed):
    code = -1100
    step = 3

    def __init__(self, name: str, legal: str) -> None:
        super().__init__(
            illegal(name, legal).msg,
            reason=f"malformed {name}",
        )


class RecvWindowTooLarge(AuthenticationFailed):
    code = -1131
    step = 3

    def __init__(self) -> None:
        super().__init__("recvWindow must be less than 60000", reason="recvWindow over 60000")


class TimestampOutsideWindow(AuthenticationFailed):
    code = -1021
    step = 3


class SignatureInvalid(AuthenticationFailed):
    code = -1022
    step = 4

    def __init__(self, *, reason: str = "signature mismatch") -> None:
        super().__init__("Signature for this request is not valid.", reason=reason)


class RequestReplayed(AuthenticationFailed):
    code = -1021
    step = 5

    def __init__(self) -> None:
        super().__init__(
            "Timestamp for this request is outside of the recvWindow: this exact request was"
            " already received (replay refused). Sign each request with a fresh timestamp.",
            reason="replayed signature",
        )


class IpNotAllowed(AuthenticationFailed):
    code = -2015
    step = 6

    def __init__(self, ip: str) -> None:
        super().__init__(
            f"Invalid API-key, IP, or permissions for action: request IP {ip} is not allowed"
            " by this API key's IP allowlist.",
            reason=f"IP {ip} not in allowlist",
        )


class PermissionMissing(AuthenticationFailed):
    code = -2015
    step = 7

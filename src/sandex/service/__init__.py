"""Use cases over ports: users and 2FA, the key lifecycle, authentication, the audit log.

Storage, HTTP and the CLI are adapters around this package; it never imports them.
"""

from sandex.service.activity import ActivityLog
from sandex.service.actors import Actor
from sandex.service.audit import AuditService
from sandex.service.auth import Authenticator
from sandex.service.errors import (
    ApiKeyFormatInvalid,
    ApiKeyRejected,
    AuthenticationFailed,
    Conflict,
    IllegalParameter,
    InvalidRequest,
    IpNotAllowed,
    LimitReached,
    MandatoryParameterMissing,
    MasterKeyProblem,
    NotFound,
    PermissionMissing,
    RecvWindowTooLarge,
    RequestReplayed,
    SecondFactorRequired,
    ServiceError,
    SignatureInvalid,
    TimestampOutsideWindow,
    UnknownApiKey,
)
from sandex.service.keycache import KeyCache
from sandex.service.keys import UNSET, IssuedKey, KeyPatch, KeyPolicyConfig, KeyService
from sandex.service.masterkey import MasterKeyRotation, RotationReport
from sandex.service.replay import MemoryReplayGuard
from sandex.service.requests import Principal, Request
from sandex.service.users import TotpEnrolment, UserService

__all__ = [
    "ActivityLog",
    "Actor",
    "ApiKeyFormatInvalid",
    "ApiKeyRejected",
    "AuditService",
    "AuthenticationFailed",
    "Authenticator",
    "Conflict",
    "IllegalParameter",
    "InvalidRequest",
    "IpNotAllowed",
    "IssuedKey",
    "KeyCache",
    "KeyPatch",
    "KeyPolicyConfig",
    "KeyService",
    "LimitReached",
    "MandatoryParameterMissing",
    "MasterKeyProblem",
    "MasterKeyRotation",
    "MemoryReplayGuard",
    "NotFound",
    "PermissionMissing",
    "Principal",
    "RecvWindowTooLarge",
    "RequestReplayed",
    "RotationReport",
    "SecondFactorRequired",
    "ServiceError",
    "SignatureInvalid",
    "Request",
    "TimestampOutsideWindow",
    "UnknownApiKey",
    "TotpEnrolment",
    "UNSET",
    "UserService",
]

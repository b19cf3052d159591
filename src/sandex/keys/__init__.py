"""The API-key domain: formats, permissions, restrictions, signing, sealing and the audit chain.

Pure: no I/O, no clock reads (time is always a ``now`` parameter in epoch
milliseconds). Platform builders can reuse it on its own.
"""

from sandex.keys.access import Access, Operation, check_access
from sandex.keys.allowlist import MAX_ALLOWLIST_ENTRIES, IpAllowlist
from sandex.keys.audit import AuditEvent, AuditRecord, ChainReport, verify_chain
from sandex.keys.envelope import Keyring, MasterKey
from sandex.keys.errors import (
    AccessDenied,
    BadDigest,
    BadSignature,
    InvalidAllowlist,
    InvalidExpiry,
    InvalidKeySpec,
    InvalidLabel,
    InvalidPermissions,
    InvalidPolicy,
    InvalidPublicKey,
    KeysError,
    PolicyViolation,
    SealError,
)
from sandex.keys.formats import (
    display_prefix,
    find_tokens,
    generate_api_key,
    generate_secret,
    is_api_key,
    is_secret,
)
from sandex.keys.material import KeyKind, generate_ed25519_pair, load_public_key
from sandex.keys.model import ApiKey, KeySettings, KeyStatus
from sandex.keys.permissions import Permission, parse_permissions, permission_names
from sandex.keys.policy import Mode, RiskPolicy

__all__ = [
    "Access",
    "AccessDenied",
    "ApiKey",
    "AuditEvent",
    "AuditRecord",
    "BadDigest",
    "BadSignature",
    "ChainReport",
    "InvalidAllowlist",
    "InvalidExpiry",
    "InvalidKeySpec",
    "InvalidLabel",
    "InvalidPermissions",
    "InvalidPolicy",
    "InvalidPublicKey",
    "IpAllowlist",
    "KeyKind",
    "KeySettings",
    "KeyStatus",
    "Keyring",
    "KeysError",
    "MAX_ALLOWLIST_ENTRIES",
    "MasterKey",
    "Mode",
    "Operation",
    "Permission",
    "PolicyViolation",
    "RiskPolicy",
    "SealError",
    "check_access",
    "display_prefix",
    "find_tokens",
    "generate_api_key",
    "generate_ed25519_pair",
    "generate_secret",
    "is_api_key",
    "is_secret",
    "load_public_key",
    "parse_permissions",
    "permission_names",
    "verify_chain",
]

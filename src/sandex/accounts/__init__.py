"""The accounts domain: users, password hashing, TOTP 2FA, recovery codes, throttling.

Pure: no I/O, no clock reads (``now`` is a parameter in epoch milliseconds).
"""

from sandex.accounts.emails import normalize_email
from sandex.accounts.errors import (
    AccountsError,
    InvalidCode,
    InvalidEmail,
    Throttled,
    WeakPassword,
    WrongPassword,
)
from sandex.accounts.model import TotpSetup, User
from sandex.accounts.passwords import (
    DEFAULT_HASH_PARAMS,
    HashParams,
    PasswordHasher,
    check_password_strength,
)
from sandex.accounts.signup import SignUpMode
from sandex.accounts.throttle import (
    ACCOUNT_THROTTLE,
    PAIR_THROTTLE,
    SOURCE_THROTTLE,
    ThrottlePolicy,
    ThrottleState,
    admit,
    check_throttle,
    record_failure,
    refund,
)
from sandex.accounts.totp import (
    RECOVERY_CODE_COUNT,
    match_totp,
    new_recovery_codes,
    new_totp_secret,
    normalize_recovery_code,
    provisioning_uri,
    recovery_code_digest,
)

__all__ = [
    "ACCOUNT_THROTTLE",
    "AccountsError",
    "DEFAULT_HASH_PARAMS",
    "HashParams",
    "InvalidCode",
    "InvalidEmail",
    "PAIR_THROTTLE",
    "PasswordHasher",
    "RECOVERY_CODE_COUNT",
    "SignUpMode",
    "SOURCE_THROTTLE",
    "ThrottlePolicy",
    "ThrottleState",
    "Throttled",
    "TotpSetup",
    "User",
    "WeakPassword",
    "WrongPassword",
    "admit",
    "check_password_strength",
    "check_throttle",
    "match_totp",
    "new_recovery_codes",
    "new_totp_secret",
    "normalize_email",
    "normalize_recovery_code",
    "provisioning_uri",
    "recovery_code_digest",
    "record_failure",
    "refund",
]

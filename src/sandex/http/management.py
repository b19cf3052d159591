"""The management API under ``/sandex/v1``: accounts, sessions, 2FA, keys, audit.

JSON in and out, described by the OpenAPI document at ``/sandex/v1/openapi.json``.
Every call but sign-up and log-in carries ``Authorization: Bearer <access token>``,
and a user only ever sees or touches their own keys (anything else is "not found").
Errors are Binance-style ``{"code", "msg"}`` bodies, like the rest of Sandex.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandex.accounts import AccountsError
from sandex.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from sandex.accounts.sessions import ACCESS_TTL_MS, Session
from sandex.http.errors import (
    NOT_FOUND,
    UNKNOWN_ERROR,
    HttpError,
    MethodNotAllowed,
    error_for,
)
from sandex.http.gateway import CLIENT_IP_SCOPE_KEY, MANAGEMENT_PREFIX, Services
from sandex.http.management_openapi import allowed_methods, document_refusals, refusals
from sandex.keys import (
    IpAllowlist,
    KeyKind,
    KeysError,
    KeySettings,
    Mode,
    RiskPolicy,
    parse_permissions,
)
from sandex.keys.allowlist import MAX_ALLOWLIST_ENTRIES
from sandex.keys.model import MAX_LABEL_LENGTH
from sandex.keys.policy import MAX_SYMBOLS, parse_notional, parse_symbols
from sandex.keys.reference import KeyById
from sandex.service import UNSET, Actor, IssuedKey, KeyPatch, ServiceError
from sandex.service.sessions import IssuedSession, SessionInvalid
from sandex.service.views import audit_view, key_view

__all__ = ["management_app"]

P = MANAGEMENT_PREFIX
INT32_MAX = 2**31 - 1
"""The largest value of an ``Integer`` column (``api_keys.id``); ids above it are a 400."""
KeyId = Annotated[int, Path(ge=1, le=INT32_MAX, description="The key's id (from the key list).")]


MAX_EPOCH_MS: Final = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the latest expiry a key can have."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class SignUp(_In):
    email: str = Field(max_length=320, json_schema_extra={"format": "email"})
    password: str = Field(
        max_length=MAX_PASSWORD_LENGTH,
        description=f"At least {MIN_PASSWORD_LENGTH} characters, four of them different,"
        " and not the e-mail address.",
    )
    invite: str | None = Field(
        None,
        max_length=64,
        description="A one-time invitation code (sdxi_...), when sign-up is by invitation.",
    )


class SignedUp(BaseModel):
    """The same answer whether or not the address already had an account."""

    email: str
    message: str


class LogIn(_In):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    totp: str | None = Field(None, max_length=64, description="TOTP or recovery code.")


class Refresh(_In):
    refreshToken: str = Field(max_length=256)


class Code(_In):
    code: str = Field(max_length=64, description="A current TOTP code (or a recovery code).")


class TotpOnly(_In):
    totp: str | None = Field(None, max_length=64)


PermissionName = Literal[
    "READ", "SPOT_TRADE", "FUTURES_TRADE", "WITHDRAW", "DEPOSIT", "INTERNAL_TRANSFER"
]
Symbol = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,20}$")]
Notional = Annotated[
    str,
    Field(
        pattern=r"^(?:[1-9][0-9]{0,17}(?:\.[0-9]{1,10})?|0\.[0-9]{0,9}[1-9][0-9]{0,9})$",
        description="A positive decimal number in the quote asset, like 500 or 0.25.",
    ),
]
Label = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_LABEL_LENGTH,
        description="Printable characters; surrounding spaces are dropped.",
    ),
]
IpList = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(max_length=MAX_ALLOWLIST_ENTRIES, description="IPv4/IPv6 addresses or CIDR ranges."),
]
ExpiresAt = Annotated[
    int,
    Field(ge=0, le=MAX_EPOCH_MS, description="Epoch milliseconds, in the future."),
]
NEEDS_IPS = "WITHDRAW and INTERNAL_TRANSFER need ``ips``."


def _read_only() -> list[PermissionName]:
    return ["READ"]


class NewKey(_In):
    label: Label
    permissions: list[PermissionName] = Field(
        default_factory=_read_only, max_length=10, description=NEEDS_IPS
    )
    ips: IpList = Field(default_factory=list)
    expiresAt: ExpiresAt | None = None
    type: Literal["HMAC_SHA256", "ED25519", "RSA"] = "HMAC_SHA256"
    publicKey: str | None = Field(
        None, description="PEM public key, for ED25519 and RSA (and only for them)."
    )
    symbols: list[Symbol] | None = Field(None, max_length=MAX_SYMBOLS)
    maxNotional: Notional | None = None
    maxOpenOrders: int | None = Field(None, ge=1, le=100_000)
    totp: str | None = Field(None, max_length=64)


def _never_null(schema: dict[str, Any]) -> None:
    """Document a field that may be left out but not sent as ``null``."""
    schema.pop("default", None)
    options = schema.pop("anyOf", [])
    schema.update(next((o for o in options if o.get("type") != "null"), {}))


class KeyChange(_In):
    label: Label | None = Field(None, json_schema_extra=_never_null)
    permissions: list[PermissionName] | None = Field(
        None, max_length=10, description=NEEDS_IPS, json_schema_extra=_never_null
    )
    ips: IpList | None = None
    expiresAt: ExpiresAt | None = None
    symbols: list[Symbol] | None = Field(None, max_length=MAX_SYMBOLS)
    maxNotional: Notional | None = None
    maxOpenOrders: int | None = Field(None, ge=1, le=100_000)
    mode: Literal["NORMAL", "CANCEL_ONLY", "FROZEN"] | None = Field(
        None, json_schema_extra=_never_null
    )
    totp: str | None = Field(None, max_length=64)

    @field_validator("label", "permissions", "mode", mode="before")
    @classmethod
    def _not_cleared(cls, value: object) -> object:
        if value is None:  # every key has a label, permissions and a mode
            raise ValueError("cannot be null")
        return value


class Rotation(_In):
    graceSeconds: int | None = Field(None, ge=0, le=7 * 86_400)
    publicKey: str | None = None
    totp: str | None = Field(None, max_length=64)


class Tokens(BaseModel):
    accessToken: str
    refreshToken: str
    tokenType: str = "Bearer"
    expiresIn: int
    refreshExpiresAt: int
    userId: int


def _tokens(issued: IssuedSession) -> dict[str, Any]:
    return Tokens(
        accessToken=issued.access_token,
        refreshToken=issued.refresh_token,
        expiresIn=ACCESS_TTL_MS // 1000,
        refreshExpiresAt=issued.session.refresh_expires_at,
        userId=issued.user.id,
    ).model_dump()


def _issued_view(issued: IssuedKey, now: int) -> dict[str, Any]:
    """A new key as its owner sees it this once: the API key and (HMAC) secret included."""
    return {"apiKey": issued.api_key, "secret": issued.secret, "key": key_view(issued.key, now=now)}


def _ip(request: Request) -> str:
    ip = request.scope.get(CLIENT_IP_SCOPE_KEY)
    if isinstance(ip, str):
        return ip
    return request.client.host if request.client else "0.0.0.0"  # noqa: S104


def _error(exc: BaseException) -> JSONResponse:
    status, code, msg, headers = error_for(exc)
    return JSONResponse(
        {"code": code, "msg": msg},
        status_code=status,
        headers={k.decode(): v.decode() for k, v in headers},
    )


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    kind = str(first.get("type", ""))
    if kind == "missing":
        code, msg = (
            -1102,
            f"Mandatory parameter '{where}' was not sent, was empty/null, or malformed.",
        )
    elif kind.startswith("json"):
        code, msg = -1100, "The request body is not valid JSON."
    else:
        code, msg = -1100, f"Illegal value for parameter '{where}': {first.get('msg', 'invalid')}."
    return JSONResponse({"code": code, "msg": msg}, status_code=400)


_bearer = HTTPBearer(
    auto_error=False, description="The ``accessToken`` from ``POST /sandex/v1/sessions``."
)
"""``Authorization: Bearer <token>``, the scheme name in any case (RFC 7235); declared in
the OpenAPI document as the API's security scheme."""


def _session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Session:
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise SessionInvalid("log in first: send Authorization: Bearer <accessToken>")
    services: Services = request.app.state.services
    return services.sessions.authenticate(token, now=services.clock.now())


Current = Annotated[Session, Depends(_session)]


def management_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Sandex management API",
        version="1",
        description=__doc__,
        openapi_url=f"{P}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        if status == 400:  # FastAPI could not parse the body
            code, msg = -1100, "The request body is not valid JSON (UTF-8)."
        elif status == 404:
            code, msg = NOT_FOUND, f"No such endpoint: {request.url.path}"
        elif status == 405:  # Starlette names one route's methods; the path may have more
            allowed = allowed_methods(app, request.url.path)
            return _error(MethodNotAllowed(request.method, request.url.path, allowed))
        else:
            code, msg = UNKNOWN_ERROR, str(exc.detail)
        return JSONResponse(
            {"code": code, "msg": msg}, status_code=status, headers=getattr(exc, "headers", None)
        )

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        return _error(exc)

    for expected in (ServiceError, AccountsError, KeysError, HttpError):
        app.add_exception_handler(expected, on_error)
    app.add_exception_handler(Exception, on_error)  # a 500: answered, then logged

    app.state.services = services
    document_refusals(app)

    def actor(request: Request, s: Session, second_factor: str | None = None) -> Actor:
        return Actor.user(s.user_id, _ip(request), second_factor)

    def user_view(user_id: int) -> dict[str, Any]:
        user = services.users.get(user_id)
        return {
            "id": user.id,
            "email": user.email,
            "createdAt": user.created_at,
            "totpEnabled": user.has_2fa,
            "recoveryCodesLeft": services.users.recovery_codes_left(user.id) if user.has_2fa else 0,
        }

    # -- accounts and sessions -------------------------------------------------------

    @app.post(f"{P}/users", status_code=202, tags=["account"], responses=refusals(400, 403))
    def sign_up(body: SignUp, request: Request) -> SignedUp:
        """Sign up, then log in. The answer is the same whether or not the address already
        had an account (only a new one gets one), so it tells no one which addresses are
        registered. Refused (403) when sign-up is closed or needs an invitation code;
        limited per address and hour (429)."""
        email = services.users.sign_up(
            body.email,
            body.password,
            now=services.clock.now(),
            source=_ip(request),
            invite=body.invite,
        )
        return SignedUp(
            email=email,
            message="If this address had no account, it has one now: log in with its password.",
        )

    @app.post(f"{P}/sessions", status_code=201, tags=["session"], responses=refusals(400, 401, 403))
    def log_in(body: LogIn, request: Request) -> dict[str, Any]:
        """Log in with e-mail, password and (if 2FA is on) a TOTP code."""
        issued = services.sessions.login(
            body.email,
            body.password,
            now=services.clock.now(),
            source=_ip(request),
            second_factor=body.totp,
        )
        return _tokens(issued)

    @app.post(f"{P}/sessions/refresh", tags=["session"], responses=refusals(400, 401))
    def refresh(body: Refresh, request: Request) -> dict[str, Any]:
        """Trade a refresh token (single use) for a new token pair."""
        issued = services.sessions.refresh(
            body.refreshToken, now=services.clock.now(), source=_ip(request)
        )
        return _tokens(issued)

    @app.delete(f"{P}/sessions/current", tags=["session"], responses=refusals(401))
    def log_out(s: Current, request: Request) -> dict[str, Any]:
        """End this session (its access and refresh tokens stop working)."""
        services.sessions.logout(s, now=services.clock.now(), source=_ip(request))
        return {}

    @app.get(f"{P}/me", tags=["account"], responses=refusals(401))
    def me(s: Current) -> dict[str, Any]:
        """The signed-in user."""
        return user_view(s.user_id)

    @app.post(f"{P}/me/totp", tags=["2fa"], responses=refusals(401, 409))
    def totp_begin(s: Current, request: Request) -> dict[str, Any]:
        """Start 2FA enrolment: the secret and otpauth URI to add to an authenticator app."""
        enrolment = services.users.begin_totp(
            s.user_id, now=services.clock.now(), actor=actor(request, s)
        )
        return {"secret": enrolment.secret, "uri": enrolment.uri}

    @app.post(f"{P}/me/totp/confirm", tags=["2fa"], responses=refusals(400, 401, 403, 409))
    def totp_confirm(body: Code, s: Current, request: Request) -> dict[str, Any]:
        """Confirm enrolment with a first code; returns ten recovery codes, shown once."""
        codes = services.users.confirm_totp(
            s.user_id, body.code, now=services.clock.now(), actor=actor(request, s)
        )
        return {"recoveryCodes": codes}

    @app.post(f"{P}/me/totp/disable", tags=["2fa"], responses=refusals(400, 401, 403))
    def totp_disable(body: Code, s: Current, request: Request) -> dict[str, Any]:
        """Turn 2FA off (needs a current code)."""
        services.users.disable_totp(
            s.user_id, body.code, now=services.clock.now(), actor=actor(request, s)
        )
        return {}

    # -- keys --------------------------------------------------------------------------

    @app.get(f"{P}/keys", tags=["keys"], responses=refusals(401))
    def list_keys(s: Current, request: Request) -> list[dict[str, Any]]:
        """Your keys (never a secret, never a full API key)."""
        now = services.clock.now()
        keys = services.keys.for_user(s.user_id, actor=actor(request, s))
        return [key_view(k, now=now) for k in keys]

    @app.post(f"{P}/keys", status_code=201, tags=["keys"], responses=refusals(400, 401, 403, 409))
    def create_key(body: NewKey, s: Current, request: Request) -> dict[str, Any]:
        """Create a key. The API key and (HMAC) secret are in this response only.

        Any permission beyond READ needs ``totp``."""
        now = services.clock.now()
        settings = KeySettings(
            body.label,
            parse_permissions(body.permissions),
            IpAllowlist.parse(body.ips),
            body.expiresAt,
            RiskPolicy(
                parse_symbols(body.symbols or []),
                parse_notional(body.maxNotional),
                body.maxOpenOrders,
            ),
        )
        issued = services.keys.create(
            s.user_id,
            settings,
            now=now,
            actor=actor(request, s, body.totp),
            kind=KeyKind.parse(body.type),
            public_key_pem=body.publicKey,
        )
        return _issued_view(issued, now)

    @app.get(f"{P}/keys/{{key_id}}", tags=["keys"], responses=refusals(400, 401, 404))
    def show_key(key_id: KeyId, s: Current, request: Request) -> dict[str, Any]:
        """One of your keys."""
        key = services.keys.find(KeyById(key_id), actor=actor(request, s))
        return key_view(key, now=services.clock.now())

    @app.patch(f"{P}/keys/{{key_id}}", tags=["keys"], responses=refusals(400, 401, 403, 404, 409))
    def update_key(key_id: KeyId, body: KeyChange, s: Current, request: Request) -> dict[str, Any]:
        """Change a key. Widening it (permissions, IPs, expiry, policy, unfreezing) needs
        ``totp``. Send ``null`` to clear ``expiresAt``, ``symbols``, ``maxNotional`` or
        ``maxOpenOrders``; leave a field out to keep it."""
        given = body.model_fields_set - {"totp"}
        now = services.clock.now()
        if not given:  # an empty change changes nothing (RFC 7396)
            key = services.keys.find(KeyById(key_id), actor=actor(request, s))
            return key_view(key, now=now)

        def pick(name: str, convert: Any, cleared: Any = None) -> Any:
            """UNSET when left out, the converted value when given, ``cleared`` for null."""
            if name not in given:
                return UNSET
            value = getattr(body, name)
            return cleared if value is None else convert(value)

        patch = KeyPatch(
            label=pick("label", str),
            permissions=pick("permissions", parse_permissions),
            allowlist=pick("ips", IpAllowlist.parse, cleared=IpAllowlist()),
            expires_at=pick("expiresAt", int),
            symbols=pick("symbols", parse_symbols),
            max_notional=pick("maxNotional", parse_notional),
            max_open_orders=pick("maxOpenOrders", int),
            mode=pick("mode", Mode.parse),
        )
        updated = services.keys.update(
            KeyById(key_id), patch, now=now, actor=actor(request, s, body.totp)
        )
        return key_view(updated, now=now)

    @app.post(
        f"{P}/keys/{{key_id}}/rotate",
        tags=["keys"],
        responses=refusals(400, 401, 403, 404, 409),
    )
    def rotate_key(key_id: KeyId, body: Rotation, s: Current, request: Request) -> dict[str, Any]:
        """Replace a key; the old one keeps working for ``graceSeconds`` (default 24 h).
        Needs ``totp``. The new API key and secret are in this response only."""
        now = services.clock.now()
        issued = services.keys.rotate(
            KeyById(key_id),
            now=now,
            actor=actor(request, s, body.totp),
            grace_ms=None if body.graceSeconds is None else body.graceSeconds * 1000,
            public_key_pem=body.publicKey,
        )
        return _issued_view(issued, now)

    @app.post(f"{P}/keys/{{key_id}}/revoke", tags=["keys"], responses=refusals(400, 401, 404, 409))
    def revoke_key(key_id: KeyId, s: Current, request: Request) -> dict[str, Any]:
        """Kill a key now, on every server."""
        now = services.clock.now()
        key = services.keys.revoke(KeyById(key_id), now=now, actor=actor(request, s))
        return key_view(key, now=now)

    @app.post(f"{P}/keys/{{key_id}}/freeze", tags=["keys"], responses=refusals(400, 401, 404, 409))
    def freeze_key(key_id: KeyId, s: Current, request: Request) -> dict[str, Any]:
        """Quarantine a key: it can still read and cancel orders, nothing else."""
        now = services.clock.now()
        key = services.keys.freeze(KeyById(key_id), now=now, actor=actor(request, s))
        return key_view(key, now=now)

    @app.post(
        f"{P}/keys/{{key_id}}/unfreeze",
        tags=["keys"],
        responses=refusals(400, 401, 403, 404, 409),
    )
    def unfreeze_key(
        key_id: KeyId, s: Current, request: Request, body: TotpOnly | None = None
    ) -> dict[str, Any]:
        """Lift a freeze. Needs ``totp``."""
        now = services.clock.now()
        key = services.keys.unfreeze(
            KeyById(key_id), now=now, actor=actor(request, s, body.totp if body else None)
        )
        return key_view(key, now=now)

    # -- audit -------------------------------------------------------------------------

    @app.get(f"{P}/audit", tags=["audit"], responses=refusals(400, 401))
    def my_audit(
        s: Current,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        key: Annotated[str | None, Query(max_length=16, description="A key prefix.")] = None,
    ) -> list[dict[str, Any]]:
        """Your newest audit events (oldest first): sign-ins, key changes, every request
        made with your keys, allowed or refused."""
        services.activity.flush()
        records = services.audit.tail(limit=limit, key_prefix=key, user_id=s.user_id)
        return [audit_view(r) for r in records]

    return app

"""The management API against its own OpenAPI document, driven by schemathesis.

Every operation of ``/sandex/v1/openapi.json`` gets generated requests, valid and
invalid, sent as a logged-in user who has 2FA on (valid requests that carry ``totp``
get a fresh code, so the 2FA-guarded changes succeed too), on SQLite and PostgreSQL.
Each response must pass every schemathesis check: no 5xx, only documented status codes,
content types and bodies, valid data accepted, invalid data refused, authentication
enforced, and a correct ``Allow`` on 405. The number of examples is bounded and the
generation derandomized, so a run is reproducible and takes a minute or two.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from schemathesis import AuthContext, Case
from schemathesis.engine import events
from schemathesis.schemas import BaseSchema

from conftest import NOW
from http_support import AsgiClient
from sandex.accounts import AccountsError
from sandex.accounts.passwords import check_password_strength
from sandex.accounts.totp import TOTP_STEP_MS
from sandex.bootstrap import Sandex, build_gateway, open_sandex
from sandex.config import Settings
from sandex.http import Gateway
from sandex.keys import IpAllowlist, KeysError
from sandex.keys.model import validate_label
from support import PASSWORD

MAX_EXAMPLES = 25
"""Generated requests per operation and phase: enough to reach every status an operation
documents, few enough for a minute or two per backend on two cores."""

OPENAPI = "/sandex/v1/openapi.json"
CURRENT_SESSION = "current-session"
CURRENT_CODE = "current-2fa-code"
"""Stand-ins for the access token and a 2FA code, replaced as the request is sent."""
EMAIL = "schema@example.com"


class SteppingClock:
    """A clock the test moves: each fresh TOTP code is taken from the next 30 s step, so
    no code is ever refused as already used, and every run sees the same times."""

    def __init__(self, start: int) -> None:
        self.ms = start

    def now(self) -> int:
        return self.ms


@dataclasses.dataclass
class Account:
    """The user the generated requests are sent as: logged in, with 2FA on."""

    client: AsgiClient
    clock: SteppingClock
    sx: Sandex
    totp: pyotp.TOTP | None = None
    token: str | None = None

    def fresh_code(self) -> str:
        self.clock.ms = (self.clock.ms // TOTP_STEP_MS + 1) * TOTP_STEP_MS
        assert self.totp is not None
        return str(self.totp.at(self.clock.ms // 1000))

    def log_in(self) -> str:
        """A new session (as ``POST /sessions`` makes it; called on the event loop, where
        the test's HTTP client cannot run)."""
        code = self.fresh_code() if self.totp is not None else None
        issued = self.sx.sessions.login(
            EMAIL, PASSWORD, now=self.clock.now(), source="127.0.0.1", second_factor=code
        )
        self.token = issued.access_token
        return self.token

    def valid_token(self) -> str:
        """The current access token, or a new one when it has expired or was logged out
        (a generated ``DELETE /sessions/current`` ends it)."""
        if self.token is not None:
            try:
                self.sx.sessions.authenticate(self.token, now=self.clock.now())
            except Exception:  # any refusal means: log in again
                self.token = None
        return self.token or self.log_in()

    def complete(self, case: Case) -> None:
        """Give a valid request what the document can say only in words: a current 2FA
        code, a real public key of the key's type (none for HMAC), a printable label, an
        expiry in the future, allowlist entries that are addresses, and an allowlist for
        WITHDRAW and INTERNAL_TRANSFER. Log-in keeps its generated code: a current one
        would be spent on a made-up e-mail."""
        body = case.body
        if not isinstance(body, dict) or case.path.endswith("/sessions"):
            return
        if "totp" in body:
            body["totp"] = CURRENT_CODE
        if isinstance(body.get("password"), str):
            try:
                check_password_strength(body["password"], email=body.get("email"))
            except AccountsError:
                body["password"] = PASSWORD
        if isinstance(body.get("label"), str):
            try:
                validate_label(body["label"])
            except KeysError:
                body["label"] = "generated"
        if isinstance(body.get("expiresAt"), int) and body["expiresAt"] <= self.clock.now():
            body["expiresAt"] = self.clock.now() + 86_400_000
        if isinstance(body.get("ips"), list):
            body["ips"] = [_an_address(ip, n) for n, ip in enumerate(body["ips"])]
        needs_ips = {"WITHDRAW", "INTERNAL_TRANSFER"} & set(body.get("permissions") or [])
        if needs_ips and not body.get("ips"):
            body["ips"] = ["127.0.0.1"]
        if "publicKey" in body or body.get("type") in ("ED25519", "RSA"):
            kind = body.get("type", "HMAC_SHA256")
            if case.path.endswith("/rotate"):
                kind = self.kind_of(case.path_parameters["key_id"]) if case.path_parameters else ""
            body["publicKey"] = _public_key_pem(kind)

    def kind_of(self, key_id: Any) -> str:
        r = self.client.get(f"/sandex/v1/keys/{key_id}", headers=self.auth())
        return str(r.json()["type"]) if r.status_code == 200 else "HMAC_SHA256"

    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.valid_token()}"}


def _an_address(entry: Any, n: int) -> str:
    try:
        IpAllowlist.parse([entry])
    except KeysError:
        return f"10.0.{n // 256}.{n % 256}"
    return str(entry)


def _public_key_pem(kind: str) -> str | None:
    if kind == "ED25519":
        private: Any = ed25519.Ed25519PrivateKey.generate()
    elif kind == "RSA":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        return None
    return (
        private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    )


def _as_sent_now(gateway: Gateway, account: Account) -> Any:
    """The gateway as schemathesis's ASGI client sees it. A request's session and 2FA code
    are filled in as it is sent, not when it was generated: schemathesis generates some
    requests in batches, and a code or token taken then would be stale when it goes out.
    Start-up and shut-down stay with the test, which opens and closes Sandex itself."""
    session = f"Bearer {CURRENT_SESSION}".encode()
    code = f'"{CURRENT_CODE}"'.encode()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if code in body:
            body = body.replace(code, f'"{account.fresh_code()}"'.encode())
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name != b"content-length" and value != session
        ]
        if any(value == session for _, value in scope["headers"]):
            headers.append((b"authorization", f"Bearer {account.valid_token()}".encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await gateway({**scope, "headers": headers}, replay, send)

    return app


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": 9,
            "continue-on-failure": True,
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": {"enabled": True},
        }
    )


@pytest.fixture
def account(settings: Settings) -> Iterator[Account]:
    sx = open_sandex(settings)
    clock = SteppingClock(NOW)
    sx.clock = clock  # type: ignore[assignment]
    try:
        gateway = build_gateway(sx)
        client = AsgiClient(gateway, ip="127.0.0.1")
        account = Account(client, clock, sx)
        r = client.post("/sandex/v1/users", json={"email": EMAIL, "password": PASSWORD})
        assert r.is_success, r.text
        r = client.post("/sandex/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
        assert r.status_code == 201, r.text
        account.token = r.json()["accessToken"]
        auth = {"authorization": f"Bearer {account.token}"}
        r = client.post("/sandex/v1/me/totp", headers=auth)
        account.totp = pyotp.TOTP(r.json()["secret"])
        r = client.post(
            "/sandex/v1/me/totp/confirm", json={"code": account.fresh_code()}, headers=auth
        )
        assert r.status_code == 200, r.text
        for label in ("first", "second"):  # ids 1 and 2 exist: generated ids do hit keys
            r = client.post("/sandex/v1/keys", json={"label": label}, headers=auth)
            assert r.status_code == 201, r.text
        account.gateway = gateway  # type: ignore[attr-defined]
        yield account
    finally:
        sx.close()


def _failures(schema: BaseSchema) -> tuple[list[str], int, int]:
    """Run every phase of schemathesis over ``schema``: the failed checks (one line per
    distinct failure, with the request that caused it), the responses seen and the 5xx."""
    failures: dict[str, str] = {}
    responses = server_errors = 0
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.NonFatalError | events.FatalError):
            failures[repr(event)] = f"error: {event}"
        if not isinstance(event, events.ScenarioFinished):
            continue
        recorder = event.recorder
        for interaction in recorder.interactions.values():
            if interaction.response is not None:
                responses += 1
                server_errors += interaction.response.status_code >= 500
        for case_id, checks in recorder.checks.items():
            for check in checks:
                if check.failure_info is None:
                    continue
                failure = check.failure_info.failure
                case = recorder.cases[case_id].value
                key = f"{check.name}: {case.method} {case.path}: {failure.title}"
                failures.setdefault(
                    key, f"{key}\n  {failure.message}\n  {check.failure_info.code_sample}"
                )
    return sorted(failures.values()), responses, server_errors


def test_management_api_conforms_to_its_openapi_document(account: Account) -> None:
    app = _as_sent_now(account.gateway, account)  # type: ignore[attr-defined]
    schema = schemathesis.openapi.from_asgi(OPENAPI, app, config=_config())

    @schema.auth(refresh_interval=None)
    class Bearer:
        """Each request goes out with the live session, filled in as it is sent."""

        def get(self, case: Case, ctx: AuthContext) -> str:
            return CURRENT_SESSION

        def set(self, case: Case, data: str, ctx: AuthContext) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
            if case.meta is not None and case.meta.generation.mode.is_positive:
                account.complete(case)

    failures, responses, server_errors = _failures(schema)
    assert server_errors == 0, "\n".join(failures)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
    assert responses > 500


def test_a_405_names_every_method_of_the_path(client: AsgiClient) -> None:
    # Starlette named only the methods of the first route that matched the path.
    r = client.request("OPTIONS", "/sandex/v1/keys")
    assert r.status_code == 405 and r.json()["code"] == -1000
    assert r.headers["allow"] == "GET, POST"
    r = client.request("PUT", "/sandex/v1/keys/1")
    assert r.status_code == 405 and r.headers["allow"] == "GET, PATCH"


def test_the_document_names_each_refusal_with_its_body_and_no_422(client: AsgiClient) -> None:
    doc = client.get(OPENAPI).json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert {"414", "418", "429"} <= set(responses), (method, path)
            refusals = [status for status in responses if status.startswith("4")]
            for status in refusals:
                body = responses[status]["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/ApiError"}, (method, path, status)
            if operation.get("security"):
                assert "401" in responses, (method, path)

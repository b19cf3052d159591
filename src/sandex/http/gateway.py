"""The ASGI gateway: Binance routes on a lean hot path, the management API beside it.

Per request: client IP (peer, or a trusted proxy's word), ban and failed-auth checks,
then one :class:`~sandex.service.Request` built from the scope and passed through
authentication per the route's security type (DESIGN §3 steps 1-7) and rate limits
(step 8) to the route's handler, with its parameters and principal filled in. Every
error is a Binance-style JSON body with a 4xx status chosen in :mod:`sandex.http.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from hashlib import blake2b
from types import CoroutineType
from typing import Any, Final

import orjson

from sandex.http.client_ip import ClientIpResolver
from sandex.http.errors import (
    HttpError,
    MethodNotAllowed,
    PayloadTooLarge,
    RateLimited,
    RouteNotFound,
    error_for,
)
from sandex.http.params import parse_params
from sandex.http.ratelimit import RateLimiter, Usage
from sandex.http.routes import Route, RouteTable, Security
from sandex.http.time_unit import in_microseconds, wants_microseconds
from sandex.http.websocket import StreamEndpoint
from sandex.http.ws_api import PATH as WS_API_PATH
from sandex.http.ws_api import ApiEndpoint
from sandex.http.ws_connection import announce_on_exit_signals
from sandex.keys.formats import API_KEY_PREFIX, DISPLAY_PREFIX_LENGTH
from sandex.service import (
    ActivityLog,
    ApiKeyFormatInvalid,
    AuditService,
    AuthenticationFailed,
    Authenticator,
    IpNotAllowed,
    KeyService,
    Principal,
    Request,
    SignatureInvalid,
    UnknownApiKey,
    UserService,
)
from sandex.service.account_streams import AccountStreams
from sandex.service.activity import Decision
from sandex.service.failures import report_failure
from sandex.service.market_streams import MarketStreams
from sandex.service.ports import Clock
from sandex.service.sessions import SessionService
from sandex.service.trading import Trading

__all__ = ["Gateway", "Services", "MAX_QUERY_BYTES", "MAX_BODY_BYTES", "MANAGEMENT_PREFIX"]

_log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_QUERY_BYTES: Final = 8 * 1024
MAX_BODY_BYTES: Final = 64 * 1024
MANAGEMENT_PREFIX: Final = "/sandex/v1"
CLIENT_IP_SCOPE_KEY: Final = "sandex.client_ip"
_JSON: Final = (b"content-type", b"application/json;charset=UTF-8")
_GUESSES = (UnknownApiKey, ApiKeyFormatInvalid)
"""Charged to the sending IP alone (a revoked or expired key's refusal to no one)."""
_KEY_FAILURES = (SignatureInvalid, IpNotAllowed)
"""Charged to the key from the sending IP."""
_NONE = Security.NONE
_SESSION = Security.SESSION
_KEY_ONLY = (Security.USER_STREAM, Security.MARKET_DATA)
"""Identified by the API key alone (and the key's IP allowlist), no signature."""


@dataclass
class Services:
    """What route handlers and the management API use (built by the composition root)."""

    auth: Authenticator
    keys: KeyService
    users: UserService
    sessions: SessionService
    audit: AuditService
    activity: ActivityLog
    clock: Clock
    limiter: RateLimiter
    ip: ClientIpResolver
    exchange: Trading | None = None
    streams: MarketStreams | None = None
    """The public market streams (None without the exchange)."""
    accounts: AccountStreams | None = None
    """The user data streams' hub (None without the exchange)."""
    on_startup: list[Callable[[], None]] = field(default_factory=list)
    on_shutdown: list[Callable[[], None]] = field(default_factory=list)


class _ClientGone(Exception):
    pass


class Gateway:
    def __init__(
        self, services: Services, routes: RouteTable, management: ASGIApp | None = None
    ) -> None:
        self.services = services
        self.routes = routes
        self._find = routes.find
        self._management = management
        self._limiter = services.limiter
        self._resolve_ip = services.ip.resolve
        self._authenticate = services.auth.authenticate
        self._identify = services.auth.identify
        self._now = services.clock.now
        self._shared = services.limiter.gate is not None
        self._shared_store = services.limiter.storage if self._shared else None
        """Where every worker counts (WebSocket connection attempts per IP)."""
        self._websocket: StreamEndpoint | None = None
        self._ws_api: ApiEndpoint | None = None
        if self._shared:  # one awaited round trip per request (rate limits, bans, replay)
            self._serve = self._serve_shared  # type: ignore[method-assign]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif scope["path"].startswith(WS_API_PATH):  # Binance's WebSocket API
            if self._ws_api is None:
                services = self.services
                self._ws_api = ApiEndpoint(
                    self.execute,
                    self.routes,
                    services.auth,
                    services.accounts,
                    self._resolve_ip,
                    self._now,
                    services.limiter.limits,
                    attempts_shared=self._shared_store,
                )
                services.on_shutdown.append(self._ws_api.stop)
            await self._ws_api(scope, receive, send)
        else:  # websocket: Binance's market streams (sandex.http.websocket)
            if self._websocket is None:
                streams = self.services.streams
                if streams is None:  # no exchange here, so no streams
                    await receive()
                    await send({"type": "websocket.close", "code": 1003})
                    return
                self._websocket = StreamEndpoint(
                    streams, self._resolve_ip, self._now, attempts_shared=self._shared_store
                )
            await self._websocket(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_headers = scope["headers"]
        headers = {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in raw_headers}
        if len(headers) < len(raw_headers):  # a repeated header: keep every value, in order
            headers = {}
            for raw_name, raw_value in raw_headers:
                name = raw_name.decode("latin-1").lower()
                value = raw_value.decode("latin-1")
                headers[name] = headers[name] + "," + value if name in headers else value
        client = scope.get("client")
        ip = self._resolve_ip(client[0] if client else None, headers)
        usage = Usage()
        management: ASGIApp | None = None
        method: str = scope["method"]
        path: str = scope["path"]
        try:
            if not self._shared:  # else settled with the rest, in one round trip
                self._limiter.admit(ip)
            query: bytes = scope["query_string"]
            if len(query) > MAX_QUERY_BYTES:
                raise PayloadTooLarge(414, "The query string", MAX_QUERY_BYTES)
            route = self._find(method, path)
            if route is None:
                if self._management is not None and (
                    path == MANAGEMENT_PREFIX or path.startswith(MANAGEMENT_PREFIX + "/")
                ):
                    if self._shared:
                        await self._settle(ip, usage, 1)
                    else:
                        self._limiter.charge_ip(ip, 1, usage)
                    # the same 64 KiB cap as the Binance routes, read before the app sees it
                    receive = _replay(await _read_body(headers, receive), receive)
                    management = self._management
                else:
                    allowed = self.routes.allowed(path)
                    if allowed:
                        raise MethodNotAllowed(method, path, allowed)
                    raise RouteNotFound(path)
            else:
                unit = headers.get("x-mbx-time-unit")  # checked before the handler acts
                micros = unit is not None and path[:5] == "/api/" and wants_microseconds(unit)
                body = await _read_body(headers, receive)
                request = Request(
                    method, path, query, body, headers, ip, self._now(), self.services
                )
                result = self._serve(route, request, usage)
                if type(result) is CoroutineType:  # a handler that awaits (durability, reads)
                    result = await result
                if micros:
                    result = in_microseconds(path, result)
                payload = orjson.dumps(result)
                status = 200
                extra = usage.headers()
        except _ClientGone:
            return
        except Exception as exc:  # every error becomes a JSON body; see http.errors
            if self._shared and not usage.settled:  # a banned IP hears that first
                exc = await self._admission(ip, usage, exc)
            status, code, msg, extra_headers = error_for(exc)
            payload = orjson.dumps({"code": code, "msg": msg})
            extra = usage.headers() + extra_headers
        if management is not None:  # answers for itself, errors included
            scope[CLIENT_IP_SCOPE_KEY] = ip
            await management(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [_JSON, (b"content-length", str(len(payload)).encode()), *extra],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def execute(self, route: Route, request: Request, usage: Usage) -> object:
        """Run ``route`` for ``request`` as a REST request is run (authentication, rate
        limits, audit, handler): its answer, or a coroutine of it (the WebSocket API)."""
        request.services = self.services
        return self._serve(route, request, usage)

    def _serve(self, route: Route, request: Request, usage: Usage) -> object:
        ip = request.client_ip
        limiter = self._limiter
        if route.security is not _NONE:
            now = request.now
            api_key = request.headers.get("x-mbx-apikey")
            # a real key's failures are budgeted per key and source IP, under a digest of
            # the whole key (never the key itself, which is kept nowhere in the clear)
            # and named by its display prefix; the full format check comes in
            # authentication, and nothing that is not key-shaped is named (it might be a
            # secret pasted in the wrong field)
            key_tag: str | None = None
            if api_key and len(api_key) == 64 and api_key.startswith(API_KEY_PREFIX):
                key_tag = blake2b(api_key.encode(), digest_size=16).hexdigest()
                limiter.admit_key(ip, key_tag, api_key[:DISPLAY_PREFIX_LENGTH])
            principal: Principal
            try:
                if route.security in _KEY_ONLY:
                    principal = self._identify(request, now)
                else:
                    assert route.access is not None
                    principal = self._authenticate(
                        request, now, route.access, signed=route.security is not _SESSION
                    )
            except AuthenticationFailed as exc:
                # each failure is charged to the party that made it, never to another
                if isinstance(exc, _GUESSES):
                    limiter.note_ip_failure(ip)
                elif isinstance(exc, _KEY_FAILURES) and key_tag is not None:
                    limiter.note_key_failure(ip, key_tag)
                try:
                    limiter.charge_ip(ip, route.weight, usage)
                except HttpError:
                    pass  # the authentication error is the answer
                raise
            request.principal = principal
            try:
                limiter.charge_ip(ip, route.weight, usage)
                limiter.charge_key(ip, principal.key_id, route.weight, usage)
                if route.counts_order:
                    limiter.charge_order(ip, principal.user_id, usage, route.orders)
            except RateLimited as exc:
                self._audit_rate_limited(request, principal, exc)
                raise
        else:
            limiter.charge_ip(ip, route.weight, usage)
        if request.query or request.body:
            request.params = parse_params(request.query, request.body)
        if route.weigh is not None:  # the rest of a weight that depends on the params
            extra = (route.weigh(request.params) or route.weight) - route.weight
            if extra > 0:
                limiter.charge_ip(ip, extra, usage)
        return route.handler(request)

    def _audit_rate_limited(
        self, request: Request, principal: Principal, refusal: RateLimited
    ) -> None:
        """An authenticated request a rate limit refused, in the audit log (both paths)."""
        self.services.activity.record_decision(
            Decision(
                request.now,
                principal.key_id,
                principal.user_id,
                principal.key_prefix,
                request.client_ip,
                request.method,
                request.path,
                f"rate limited: {refusal.msg}",
            )
        )

    async def _serve_shared(self, route: Route, request: Request, usage: Usage) -> object:
        """:meth:`_serve` over shared state: the signature is checked in process, then
        admission, the replay claim and the charges are settled in one awaited round trip
        (:meth:`RateLimiter.settle`), with the same answers and audit records."""
        ip = request.client_ip
        limiter = self._limiter
        if route.security is not _NONE:
            now = request.now
            api_key = request.headers.get("x-mbx-apikey")
            key_tag: str | None = None
            key_ref = ""
            if api_key and len(api_key) == 64 and api_key.startswith(API_KEY_PREFIX):
                key_tag = blake2b(api_key.encode(), digest_size=16).hexdigest()
                key_ref = api_key[:DISPLAY_PREFIX_LENGTH]
            auth = self.services.auth
            if route.security in _KEY_ONLY:
                checked = auth.check_identity(request, now)
            else:
                assert route.access is not None
                checked = auth.check(
                    request, now, route.access, signed=route.security is not _SESSION
                )
            exc = checked.failure
            if exc is not None:
                note = None
                if isinstance(exc, _GUESSES):
                    note = "ip"
                elif isinstance(exc, _KEY_FAILURES) and key_tag is not None:
                    note = "key"
                await limiter.settle(
                    ip,
                    usage,
                    route.weight,
                    key_tag=key_tag,
                    key_ref=key_ref,
                    failed=True,
                    note=note,
                )
                auth.conclude(checked, request, now)  # raises the refusal
            entry = checked.entry
            assert entry is not None
            outcome = await limiter.settle(
                ip,
                usage,
                route.weight,
                key_tag=key_tag,
                key_ref=key_ref,
                claim=checked.claim,
                key_id=entry.key_id,
                user_id=entry.user_id,
                orders=route.orders if route.counts_order else 0,
            )
            principal = auth.conclude(checked, request, now, outcome is not False)
            request.principal = principal
            if outcome is not True:
                assert isinstance(outcome, HttpError)
                if isinstance(outcome, RateLimited):
                    self._audit_rate_limited(request, principal, outcome)
                raise outcome
        else:
            await self._settle(ip, usage, route.weight)
        if request.query or request.body:
            request.params = parse_params(request.query, request.body)
        if route.weigh is not None:  # the rest of a weight that depends on the params
            extra = (route.weigh(request.params) or route.weight) - route.weight
            if extra > 0:
                await self._settle(ip, usage, extra, admit=False)
        result = route.handler(request)
        if type(result) is CoroutineType:
            result = await result
        return result

    async def _settle(self, ip: str, usage: Usage, weight: int, *, admit: bool = True) -> None:
        """Admit and charge an IP's request in the shared state (one round trip)."""
        outcome = await self._limiter.settle(ip, usage, weight, admit=admit)
        if outcome is not True:
            assert isinstance(outcome, HttpError)
            raise outcome

    async def _admission(self, ip: str, usage: Usage, exc: Exception) -> Exception:
        """The answer to a request refused before it was settled: its IP's ban or failed-
        authentication refusal if it has one (as the in-process gateway checks first),
        else ``exc``."""
        try:
            await self._limiter.settle(ip, usage, 0)
        except HttpError as refused:
            return refused
        except Exception:  # the shared state is out of reach: the first error answers
            _log.exception("admission check failed")
        return exc

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for start in self.services.on_startup:
                        start()
                except Exception as exc:  # e.g. another engine holds the database
                    report_failure(_log, "startup failed", exc)
                    self._stop_all()  # what did start (an audit writer process) stops
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                announce_on_exit_signals(self._now)  # WebSocket clients hear serverShutdown
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._stop_all()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _stop_all(self) -> None:
        for stop in self.services.on_shutdown:
            try:
                stop()
            except Exception as exc:
                report_failure(_log, "a shutdown step failed", exc)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` (already read) once, then waits as the
    server's own does (for the disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def _read_body(headers: dict[str, str], receive: Receive) -> bytes:
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HttpError(400, -1100, "Content-Length must be a number of bytes.")
        if int(length) > MAX_BODY_BYTES:
            raise PayloadTooLarge(413, "The request body", MAX_BODY_BYTES)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise PayloadTooLarge(413, "The request body", MAX_BODY_BYTES)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)

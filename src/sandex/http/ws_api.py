"""Binance's WebSocket API (``/ws-api/v3``): the REST routes as request/response
messages, and the user data stream.

A request is ``{"id", "method", "params"}``; the answer ``{"id", "status", "result"}`` or
``{"id", "status", "error": {"code", "msg"}}``, with ``rateLimits`` unless the request
(or the connection's URL) says ``returnRateLimits=false``. Each method is a REST route
(:data:`METHODS`: ``order.place`` is ``POST /api/v3/order``) and goes through the same
gateway step as a REST request (:meth:`~sandex.http.gateway.Gateway.execute`): the same
authentication, permissions, IP allowlist, freshness and replay rules, rate limits,
audit records, handler and error codes. Only the signature payload differs, as on
Binance: every parameter but ``signature``, sorted by name, joined ``k=v&...``; both
the percent-encoded form (python-binance) and the raw form (ccxt) verify.

``userDataStream.subscribe.signature`` (signed, READ) subscribes the connection to its
key's account: events arrive as ``{"subscriptionId", "event"}``
(:class:`~sandex.service.account_streams.AccountStreams`). A subscription whose key is
revoked, expires, is frozen or no longer allows the connection's IP is ended within a
second with ``eventStreamTerminated``. ``userDataStream.unsubscribe``,
``session.subscriptions`` and ``session.status`` are answered as Binance does.

``session.logon`` (signed, with an Ed25519 key, as on Binance) logs the connection on
with its key: later requests may leave out ``apiKey`` and ``signature`` and are checked
as signed ones are in every other way (the key alive, its IP allowlist, permissions and
mode, ``timestamp`` and ``recvWindow``; :attr:`~sandex.http.routes.Security.SESSION`),
and ``userDataStream.subscribe`` subscribes the session's account. ``session.logout``
forgets the key and ends that subscription (not the ``.signature`` ones).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import CoroutineType
from typing import Final
from urllib.parse import parse_qsl, quote, urlencode

import orjson
from limits.storage import Storage

from sandex.exchange import rejections as vocabulary
from sandex.http.errors import HttpError, RouteNotFound, Unauthorized, error_for
from sandex.http.ratelimit import RateLimits, Usage
from sandex.http.routes import Route, RouteTable, Security
from sandex.http.time_unit import in_microseconds, wants_microseconds
from sandex.http.ws_connection import (
    Attempts,
    ConnectionLimits,
    Outbox,
    Receive,
    Scope,
    Send,
    hold,
    incoming,
    refuse,
    scope_headers,
)
from sandex.keys import Access, KeyKind, Mode
from sandex.service import Request
from sandex.service.account_streams import AccountStreams
from sandex.service.auth import Authenticator
from sandex.service.engine_commands import EngineUnavailable
from sandex.service.failures import Quietly, report_failure

__all__ = ["ApiEndpoint", "ApiLimits", "METHODS", "PATH"]

_log = logging.getLogger(__name__)

Execute = Callable[[Route, Request, Usage], object]

PATH: Final = "/ws-api/v3"
METHODS: Final[Mapping[str, tuple[str, str]]] = {
    "ping": ("GET", "/api/v3/ping"),
    "time": ("GET", "/api/v3/time"),
    "exchangeInfo": ("GET", "/api/v3/exchangeInfo"),
    "depth": ("GET", "/api/v3/depth"),
    "trades.recent": ("GET", "/api/v3/trades"),
    "trades.historical": ("GET", "/api/v3/historicalTrades"),
    "trades.aggregate": ("GET", "/api/v3/aggTrades"),
    "klines": ("GET", "/api/v3/klines"),
    "uiKlines": ("GET", "/api/v3/uiKlines"),
    "avgPrice": ("GET", "/api/v3/avgPrice"),
    "ticker.24hr": ("GET", "/api/v3/ticker/24hr"),
    "ticker.tradingDay": ("GET", "/api/v3/ticker/tradingDay"),
    "ticker": ("GET", "/api/v3/ticker"),
    "ticker.price": ("GET", "/api/v3/ticker/price"),
    "ticker.book": ("GET", "/api/v3/ticker/bookTicker"),
    "order.place": ("POST", "/api/v3/order"),
    "order.test": ("POST", "/api/v3/order/test"),
    "order.status": ("GET", "/api/v3/order"),
    "order.cancel": ("DELETE", "/api/v3/order"),
    "order.cancelReplace": ("POST", "/api/v3/order/cancelReplace"),
    "openOrders.status": ("GET", "/api/v3/openOrders"),
    "openOrders.cancelAll": ("DELETE", "/api/v3/openOrders"),
    "orderList.place": ("POST", "/api/v3/order/oco"),
    "orderList.place.oco": ("POST", "/api/v3/orderList/oco"),
    "orderList.place.oto": ("POST", "/api/v3/orderList/oto"),
    "orderList.place.otoco": ("POST", "/api/v3/orderList/otoco"),
    "orderList.status": ("GET", "/api/v3/orderList"),
    "orderList.cancel": ("DELETE", "/api/v3/orderList"),
    "openOrderLists.status": ("GET", "/api/v3/openOrderList"),
    "allOrderLists": ("GET", "/api/v3/allOrderList"),
    "account.status": ("GET", "/api/v3/account"),
    "account.commission": ("GET", "/api/v3/account/commission"),
    "account.rateLimits.orders": ("GET", "/api/v3/rateLimit/order"),
    "allOrders": ("GET", "/api/v3/allOrders"),
    "myTrades": ("GET", "/api/v3/myTrades"),
    "myPreventedMatches": ("GET", "/api/v3/myPreventedMatches"),
}
"""WebSocket API methods and the REST routes they are (where this gateway serves them)."""

_SUBSCRIBE: Final = "userDataStream.subscribe.signature"
_SESSION_SUBSCRIBE: Final = "userDataStream.subscribe"
_SESSION_WEIGHT: Final = 2
_INT64: Final = (-(2**63), 2**63 - 1)
_INVALID_JSON: Final = -1135
_UNSUPPORTED: Final = -1020
_SUBSCRIPTION_ACTIVE: Final = -2035
_MAX_SUBSCRIPTION_IDS: Final = -2042


@dataclass(frozen=True)
class ApiLimits(ConnectionLimits):
    """Binance's WebSocket API limits."""

    active_subscriptions: int = 1000
    subscriptions_per_connection: int = 65_535
    key_check_every_s: float = 0.25
    """How often live subscriptions' keys are looked at (revoked, expired, frozen,
    IP no longer allowed): a changed key ends its subscriptions within about a second."""


class _Refused(HttpError):
    """A request that is not one (bad JSON, no method, unknown method, bad params)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(400, code, msg)


@dataclass(eq=False)
class _Subscription:
    """One ``userDataStream.subscribe.signature``: its account's events go out on the
    connection with its id (an :class:`~sandex.service.account_streams.AccountSink`)."""

    connection: _ApiConnection
    subscription_id: int
    account: int
    key_id: int
    api_key: str
    by_logon: bool = False
    """Made by ``userDataStream.subscribe`` in a logged-on session (ended by its logout)."""
    ended: bool = False

    def deliver(self, event: str) -> None:
        if not self.ended:
            self.connection.put(
                '{"subscriptionId":' + str(self.subscription_id) + ',"event":' + event + "}"
            )


@dataclass(frozen=True, slots=True)
class _Logon:
    """The key a connection logged on with (``session.logon``)."""

    api_key: str
    account: int
    since: int


class _ApiConnection(Outbox):
    __slots__ = (
        "connected_since",
        "logon",
        "micros",
        "next_subscription",
        "rate_limits",
        "subscriptions",
    )

    def __init__(
        self, ip: str, limit: int, connected_since: int, rate_limits: bool, micros: bool
    ) -> None:
        super().__init__(ip, limit)
        self.immediate = True  # an order's events before the next fan-out of the streams
        self.connected_since = connected_since
        self.rate_limits = rate_limits
        self.micros = micros
        self.subscriptions: dict[int, _Subscription] = {}
        self.next_subscription = 0
        self.logon: _Logon | None = None

    def shutdown_notice(self, now: int) -> object:
        return {"event": {"e": "serverShutdown", "E": now}}


def _valid_id(value: object) -> bool:
    """Binance accepts an integer, a string of at most 36 characters, or null."""
    if value is None:
        return True
    if type(value) is int:
        return _INT64[0] <= value <= _INT64[1]
    return isinstance(value, str) and len(value) <= 36


def _text(value: object) -> str:
    """A parameter's value as it is signed: JSON literals as written."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal)):
        return str(value)
    return orjson.dumps(value).decode()  # an array (``symbols``) as its JSON text


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in ("true", "TRUE", "True"):
        return True
    if value in ("false", "FALSE", "False"):
        return False
    return None


class ApiEndpoint:
    """The ASGI handler of ``/ws-api/v3`` connections."""

    def __init__(
        self,
        execute: Execute,
        routes: RouteTable,
        auth: Authenticator,
        accounts: AccountStreams | None,
        resolve_ip: Callable[[str | None, Mapping[str, str]], str],
        now: Callable[[], int],
        rate_limits: RateLimits,
        limits: ApiLimits | None = None,
        *,
        attempts_shared: Storage | None = None,
    ) -> None:
        self._execute = execute
        self._auth = auth
        self._accounts = accounts
        self._resolve_ip = resolve_ip
        self._now = now
        self._rate_limits = rate_limits
        self.limits = limits = limits or ApiLimits()
        self._attempts = Attempts(limits, attempts_shared)
        self._routes: dict[str, Route] = {}
        for name, (method, path) in METHODS.items():
            route = routes.find(method, path)
            if route is not None:
                self._routes[name] = route
        self._live: set[_Subscription] = set()
        self._watch: asyncio.Task[None] | None = None

    # -- connections ----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        headers = scope_headers(scope)
        client = scope.get("client")
        ip = self._resolve_ip(client[0] if client else None, headers)
        if await self._attempts.refused(ip, self._now(), scope, send, 1008):
            return
        path: str = scope["path"]
        if path.rstrip("/") != PATH:
            await refuse(scope, send, RouteNotFound(path), 1008)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        rate_limits = _flag(query.get("returnRateLimits"))
        unit = query.get("timeUnit")
        try:
            micros = unit is not None and wants_microseconds(unit)
        except HttpError as exc:
            await refuse(scope, send, exc, 1008)
            return
        await send({"type": "websocket.accept"})
        limits = self.limits
        conn = _ApiConnection(
            ip, limits.pending_messages, self._now(), rate_limits is not False, micros
        )
        if self._accounts is not None and self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watch_keys())
        await hold(
            conn,
            self._read(conn, receive),
            send,
            lifetime_s=limits.lifetime_s,
            close_timeout_s=limits.close_timeout_s,
            ended=lambda: self._end_all(conn),
        )

    def _end_all(self, conn: _ApiConnection) -> None:
        for subscription in list(conn.subscriptions.values()):
            self._end(subscription)

    async def _read(self, conn: _ApiConnection, receive: Receive) -> None:
        async for data in incoming(conn, receive):
            conn.reply(await self._answer(conn, data))

    # -- requests ---------------------------------------------------------------------------

    async def _answer(self, conn: _ApiConnection, data: str | bytes) -> dict[str, object]:
        request_id: object = None
        usage = Usage()
        rate_limits = conn.rate_limits
        route: Route | None = None
        try:
            try:
                request = json.loads(data, parse_float=Decimal)
            except ValueError:
                raise _Refused(_INVALID_JSON, "Invalid JSON Request.") from None
            if not isinstance(request, dict):
                raise _Refused(_INVALID_JSON, "Invalid JSON Request: expected an object.")
            request_id = request.get("id")
            if "id" not in request or not _valid_id(request_id):
                request_id = None
                vocabulary.refuse(vocabulary.missing("id"))
            method = request.get("method")
            if not isinstance(method, str) or not method:
                vocabulary.refuse(vocabulary.missing("method"))
            params = request.get("params")
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise _Refused(-1102, "Parameter 'params' must be an object.")
            if "returnRateLimits" in params:
                flag = _flag(params["returnRateLimits"])
                if flag is None:
                    vocabulary.refuse(vocabulary.illegal("returnRateLimits"))
                rate_limits = flag
            name = method[3:] if method.startswith("v3/") else method
            route = self._route_for(conn, name)
            if route is None:
                raise _Refused(_UNSUPPORTED, f"Unknown method '{method}'.")
            result = await self._run(conn, route, name, params, usage)
            answer: dict[str, object] = {"id": request_id, "status": 200, "result": result}
        except Exception as exc:  # every failure is an answer; see http.errors
            if route is None:  # not a request: it costs its IP weight 1 all the same
                exc = await self._charge(conn, usage) or exc
            status, code, msg, _headers = error_for(exc)
            if status >= 500 and not isinstance(exc, EngineUnavailable):
                report_failure(_log, "a WebSocket API request failed", exc)
            answer = {"id": request_id, "status": status, "error": {"code": code, "msg": msg}}
        if rate_limits:
            answer["rateLimits"] = self._usage(usage)
        return answer

    async def _charge(self, conn: _ApiConnection, usage: Usage) -> Exception | None:
        """Charge a message that was not a request to its IP (so that a flood of them
        is limited, then banned, as REST's are): the refusal if the IP is over its
        limit, else None."""
        request = Request("WS", f"{PATH}/invalid", b"", b"", {}, conn.ip, self._now())
        try:
            result = self._execute(_CHARGE, request, usage)
            if type(result) is CoroutineType:
                await result
        except HttpError as refused:
            return refused
        return None

    def _route_for(self, conn: _ApiConnection, name: str) -> Route | None:
        """The route a method runs: a REST route, or one of the session's own."""
        found = self._routes.get(name)
        if found is not None:
            return found
        if name == _SUBSCRIBE and self._accounts is not None:
            return _keyed(name, Security.USER_DATA, lambda r: self._subscribe(conn, r))
        if name == "session.logon":
            return _keyed(name, Security.USER_DATA, lambda r: self._log_on(conn, r))
        if name == "session.logout":
            return _local(name, lambda request: self._log_out(conn, request))
        if name == _SESSION_SUBSCRIBE and self._accounts is not None:
            return _keyed(  # the session's key, alive and allowing the IP (no timestamp)
                name, Security.USER_STREAM, lambda r: self._subscribe(conn, r, by_logon=True)
            )
        if name == "userDataStream.unsubscribe":
            return _local(name, lambda request: self._unsubscribe(conn, request))
        if name == "session.subscriptions":
            return _local(
                name,
                lambda request: [{"subscriptionId": s} for s in conn.subscriptions],
            )
        if name == "session.status":
            return _local(name, lambda request: self._status(conn, request))
        return None

    async def _run(
        self,
        conn: _ApiConnection,
        route: Route,
        name: str,
        params: dict[str, object],
        usage: Usage,
    ) -> object:
        """Run ``route`` as the gateway runs a REST request, from the message's params."""
        items = {k: _text(v) for k, v in params.items() if v is not None}
        api_key = items.get("apiKey")
        logon = conn.logon
        if name == _SESSION_SUBSCRIBE:  # the session's account
            if logon is None:
                raise Unauthorized("This method needs a session logged on with session.logon.")
            api_key = logon.api_key
        elif (
            logon is not None
            and route.security.signed
            and api_key is None
            and "signature" not in items
        ):  # a logged-on session's request: its key, every check but the signature
            route = dataclasses.replace(route, security=Security.SESSION)
            api_key = logon.api_key
        headers = {"x-mbx-apikey": api_key} if api_key else {}
        signature = items.pop("signature", None)
        query = urlencode(sorted(items.items()))
        if signature is not None:
            query += "&signature=" + quote(signature, safe="")
        request = Request(
            "WS", f"{PATH}/{name}", query.encode(), b"", headers, conn.ip, self._now()
        )
        result = self._execute(route, request, usage)
        if type(result) is CoroutineType:
            result = await result
        if conn.micros and route.path.startswith("/api/"):
            result = in_microseconds(route.path, result)
        return result

    def _usage(self, usage: Usage) -> list[dict[str, object]]:
        limits = self._rate_limits
        out: list[dict[str, object]] = [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": limits.ip_weight_1m,
                "count": usage.ip_weight,
            }
        ]
        if usage.orders_10s is not None:
            out.append(
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 10,
                    "limit": limits.orders_10s,
                    "count": usage.orders_10s,
                }
            )
            out.append(
                {
                    "rateLimitType": "ORDERS",
                    "interval": "DAY",
                    "intervalNum": 1,
                    "limit": limits.orders_1d,
                    "count": usage.orders_1d,
                }
            )
        return out

    # -- the session's own methods -----------------------------------------------------------

    def _status(self, conn: _ApiConnection, request: Request) -> object:
        logon = conn.logon
        return {
            "apiKey": None if logon is None else logon.api_key,
            "authorizedSince": None if logon is None else logon.since,
            "connectedSince": conn.connected_since,
            "returnRateLimits": conn.rate_limits,
            "serverTime": request.now,
            "userDataStream": bool(conn.subscriptions),
        }

    def _log_on(self, conn: _ApiConnection, request: Request) -> object:
        principal = request.principal
        api_key = request.headers.get("x-mbx-apikey")
        assert principal is not None and api_key is not None
        if principal.kind is not KeyKind.ED25519:
            raise Unauthorized(
                "session.logon needs an Ed25519 key (as on Binance); sign each request instead."
            )
        if conn.logon is not None and conn.logon.api_key != api_key:
            self._log_out(conn, request)  # the other key's session subscription ends
        conn.logon = _Logon(api_key, principal.user_id, request.now)
        return self._status(conn, request)

    def _log_out(self, conn: _ApiConnection, request: Request) -> object:
        conn.logon = None
        for subscription in list(conn.subscriptions.values()):
            if subscription.by_logon:
                self._terminate(subscription, request.now)
        return self._status(conn, request)

    def _subscribe(
        self, conn: _ApiConnection, request: Request, *, by_logon: bool = False
    ) -> object:
        principal = request.principal
        api_key = request.headers.get("x-mbx-apikey")
        assert principal is not None and api_key is not None and self._accounts is not None
        account = principal.user_id
        if any(s.account == account for s in conn.subscriptions.values()):
            raise _Refused(_SUBSCRIPTION_ACTIVE, "User Data Stream subscription already active.")
        if len(conn.subscriptions) >= self.limits.active_subscriptions:
            raise _Refused(
                _SUBSCRIPTION_ACTIVE,
                f"Too many active subscriptions: at most {self.limits.active_subscriptions}.",
            )
        if conn.next_subscription >= self.limits.subscriptions_per_connection:
            raise _Refused(
                _MAX_SUBSCRIPTION_IDS, "Maximum subscription ID reached for this connection."
            )
        if principal.policy.mode is Mode.FROZEN:
            raise _Refused(-2015, "Invalid API-key, IP, or permissions for action.")
        subscription = _Subscription(
            conn, conn.next_subscription, account, principal.key_id, api_key, by_logon
        )
        conn.next_subscription += 1
        conn.subscriptions[subscription.subscription_id] = subscription
        self._live.add(subscription)
        self._accounts.subscribe(account, subscription)
        return self._watched(subscription)

    async def _watched(self, subscription: _Subscription) -> object:
        """Answer a subscription once the engine follows its account (the client's next
        order is in its stream); if the engine cannot be told, it is not made."""
        assert self._accounts is not None
        try:
            await self._accounts.watch(subscription.account)
        except BaseException:
            self._end(subscription)
            raise
        return {"subscriptionId": subscription.subscription_id}

    def _unsubscribe(self, conn: _ApiConnection, request: Request) -> object:
        raw = request.params.get("subscriptionId")
        if raw is None:  # every subscription of the connection
            for subscription in list(conn.subscriptions.values()):
                self._terminate(subscription, request.now)
            return {}
        if not raw.lstrip("-").isdigit():
            vocabulary.refuse(vocabulary.illegal("subscriptionId"))
        found = conn.subscriptions.get(int(raw))
        if found is not None:  # one it does not have: nothing to close (Binance "attempts
            self._terminate(found, request.now)  # to close the subscription, if it exists")
        return {}

    def _terminate(self, subscription: _Subscription, now: int) -> None:
        """End a subscription with ``eventStreamTerminated`` (its last event)."""
        if subscription.ended:
            return
        subscription.deliver(orjson.dumps({"e": "eventStreamTerminated", "E": now}).decode())
        self._end(subscription)

    def _end(self, subscription: _Subscription) -> None:
        subscription.ended = True
        subscription.connection.subscriptions.pop(subscription.subscription_id, None)
        self._live.discard(subscription)
        if self._accounts is not None:
            self._accounts.unsubscribe(subscription.account, subscription)

    # -- keys that change under a subscription -------------------------------------------------

    async def _watch_keys(self) -> None:
        """Every :attr:`ApiLimits.key_check_every_s`, end the subscriptions whose key no
        longer allows them. A key still in the cache is checked in memory; one that was
        dropped from it (changed, here or in another process) is read again off the loop.
        A failure is one log line, and the check goes on."""
        failures = Quietly(_log, "user data subscriptions' keys not checked")
        while True:
            await asyncio.sleep(self.limits.key_check_every_s)
            try:
                await self._check_keys()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.succeeded()

    async def _check_keys(self) -> None:
        if not self._live:
            return
        cached = self._auth.cache.entries
        now = self._now()
        for subscription in list(self._live):
            if subscription.ended:
                continue
            request = Request(
                "WS",
                f"{PATH}/{_SUBSCRIBE}",
                b"",
                b"",
                {"x-mbx-apikey": subscription.api_key},
                subscription.connection.ip,
                now,
            )
            if subscription.api_key in cached:
                checked = self._auth.check_identity(request, now)
            else:
                checked = await asyncio.to_thread(self._auth.check_identity, request, now)
            entry = checked.entry
            if checked.failure is not None or entry is None or entry.mode is Mode.FROZEN:
                why = "the key is frozen" if checked.failure is None else checked.failure.reason
                _log.info(
                    "user data subscription of key %s ended: %s",
                    entry.prefix if entry is not None else "?",
                    why,
                )
                self._terminate(subscription, now)

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None


def _keyed(name: str, security: Security, handler: Callable[[Request], object]) -> Route:
    """A method of the session's own that a key authorizes (READ; weight 2)."""
    return Route("WS", name, security, _SESSION_WEIGHT, Access.READ, False, handler)


def _local(name: str, handler: Callable[[Request], object]) -> Route:
    """A public method the session answers itself (weight 2, as Binance charges)."""
    return Route("WS", name, Security.NONE, _SESSION_WEIGHT, None, False, handler)


_CHARGE: Final = Route("WS", "invalid", Security.NONE, 1, None, False, lambda request: None)
"""What a message that is not a request is run as: its IP's weight, nothing else."""

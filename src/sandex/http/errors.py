"""The one table that turns an exception into an HTTP status and a Binance-style body.

Every error a client can cause is a 4xx with ``{"code": <negative int>, "msg": "..."}``.
Codes follow Binance where Binance has one; the management API's own conditions use
Sandex codes in the -9000 range (listed in the README).
"""

from __future__ import annotations

import logging
from typing import Final

from sandex.accounts import (
    AccountsError,
    InvalidCode,
    Throttled,
    WrongPassword,
)
from sandex.exchange import OrderRejected
from sandex.keys import KeysError, PolicyViolation
from sandex.service import (
    AuthenticationFailed,
    Conflict,
    LimitReached,
    NotFound,
    SecondFactorRequired,
    ServiceError,
)
from sandex.service.engine_commands import EngineUnavailable
from sandex.service.errors import SignUpRefused
from sandex.service.sessions import SessionInvalid

__all__ = [
    "HttpError",
    "BadParameters",
    "RouteNotFound",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "RateLimited",
    "Banned",
    "Unauthorized",
    "error_for",
    "UNKNOWN_ERROR",
    "NOT_FOUND",
    "CONFLICT",
    "LIMIT_REACHED",
    "SECOND_FACTOR",
    "INVALID_REQUEST",
    "SIGNUP_REFUSED",
    "TOO_MANY_ORDERS",
]

_log = logging.getLogger(__name__)

UNKNOWN_ERROR: Final = -1000
ORDER_REFUSED: Final = -2010
ENGINE_TIMEOUT: Final = -1007
ENGINE_TIMEOUT_MSG: Final = (
    "Timeout waiting for response from backend server. Send status unknown;"
    " execution status unknown."
)
UNAUTHORIZED: Final = -1002
TOO_MANY_REQUESTS: Final = -1003
TOO_MANY_ORDERS: Final = -1015
NOT_FOUND: Final = -9001
CONFLICT: Final = -9002
LIMIT_REACHED: Final = -9003
SECOND_FACTOR: Final = -9004
INVALID_REQUEST: Final = -9005
SIGNUP_REFUSED: Final = -9006

Headers = list[tuple[bytes, bytes]]


class HttpError(Exception):
    """Base of the errors the HTTP layer raises itself."""

    def __init__(self, status: int, code: int, msg: str, headers: Headers | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers or []


class BadParameters(HttpError):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(400, code, msg)


UNSUPPORTED_OPERATION: Final = -1020
_NOT_OFFERED: Final = (
    ("/fapi/", "USD\u24c8-M futures"),
    ("/dapi/", "COIN-M futures"),
    ("/eapi/", "options"),
    ("/papi/", "portfolio margin"),
)
"""Binance's products Sandex does not run yet, by path prefix."""


class RouteNotFound(HttpError):
    """404; a product Sandex does not offer (futures, options) says so, with -1020."""

    def __init__(self, path: str) -> None:
        for prefix, product in _NOT_OFFERED:
            if path.startswith(prefix):
                super().__init__(
                    404,
                    UNSUPPORTED_OPERATION,
                    f"Sandex does not offer {product} yet ({prefix[:-1]}): {path} is not"
                    " served. Spot trading is at /api/v3.",
                )
                return
        super().__init__(404, NOT_FOUND, f"No such endpoint: {path}")


class MethodNotAllowed(HttpError):
    def __init__(self, method: str, path: str, allowed: list[str]) -> None:
        super().__init__(
            405,
            UNKNOWN_ERROR,
            f"Method {method} is not allowed on {path}; use {', '.join(allowed)}.",
            [(b"allow", ", ".join(allowed).encode())],
        )


class PayloadTooLarge(HttpError):
    def __init__(self, status: int, what: str, limit: int) -> None:
        super().__init__(status, -1101, f"{what} is too large; the limit is {limit} bytes.")


class RateLimited(HttpError):
    """HTTP 429: over a limit; ``Retry-After`` says when to come back. The code is
    -1003 for request weight, -1015 for the order-rate limits."""

    def __init__(
        self,
        msg: str,
        retry_after: int,
        headers: Headers | None = None,
        code: int = TOO_MANY_REQUESTS,
    ) -> None:
        super().__init__(
            429,
            code,
            msg,
            [(b"retry-after", str(retry_after).encode()), *(headers or [])],
        )
        self.retry_after = retry_after


class Banned(HttpError):
    """HTTP 418: this IP kept sending after 429 and is banned for a while."""

    def __init__(self, ip: str, until_s: int, retry_after: int) -> None:
        super().__init__(
            418,
            TOO_MANY_REQUESTS,
            f"Way too many requests; IP({ip}) banned until {until_s * 1000}."
            " Please use the websocket for live updates to avoid bans.",
            [(b"retry-after", str(retry_after).encode())],
        )
        self.retry_after = retry_after


class Unauthorized(HttpError):
    def __init__(self, msg: str = "You are not authorized to execute this request.") -> None:
        super().__init__(401, UNAUTHORIZED, msg, [(b"www-authenticate", b"Bearer")])


def _auth_status(exc: AuthenticationFailed) -> int:
    return 401 if exc.code in (-2014, -2015) else 400


def error_for(exc: BaseException) -> tuple[int, int, str, Headers]:
    """``(status, code, msg, extra headers)`` for any exception; unknown ones are a 500."""
    if isinstance(exc, HttpError):
        return exc.status, exc.code, exc.msg, exc.headers
    if isinstance(exc, AuthenticationFailed):
        return _auth_status(exc), exc.code, exc.msg, []
    if isinstance(exc, OrderRejected):  # Binance's -1xxx/-2xxx for an order or its values
        return 400, exc.code, exc.msg, []
    if isinstance(exc, PolicyViolation):  # the key's risk policy: ccxt reads the message
        return 400, ORDER_REFUSED, str(exc), []
    if isinstance(exc, EngineUnavailable):  # not the client's mistake: status unknown
        return 503, ENGINE_TIMEOUT, ENGINE_TIMEOUT_MSG, []
    if isinstance(exc, SessionInvalid):
        return 401, UNAUTHORIZED, str(exc), [(b"www-authenticate", b"Bearer")]
    if isinstance(exc, Throttled):
        retry = max(1, -(-exc.retry_after_ms // 1000))
        return 429, TOO_MANY_REQUESTS, str(exc), [(b"retry-after", str(retry).encode())]
    if isinstance(exc, WrongPassword):
        return 401, UNAUTHORIZED, str(exc), []
    if isinstance(exc, InvalidCode):
        return 403, SECOND_FACTOR, str(exc), []
    if isinstance(exc, SecondFactorRequired):
        return 403, SECOND_FACTOR, str(exc), []
    if isinstance(exc, SignUpRefused):
        return 403, SIGNUP_REFUSED, str(exc), []
    if isinstance(exc, NotFound):
        return 404, NOT_FOUND, str(exc), []
    if isinstance(exc, Conflict):
        return 409, CONFLICT, str(exc), []
    if isinstance(exc, LimitReached):
        return 409, LIMIT_REACHED, str(exc), []
    if isinstance(exc, ServiceError | AccountsError | KeysError):  # invalid e-mail, weak
        return 400, INVALID_REQUEST, str(exc), []  # password, bad key spec, bad request ...
    _log.error("unhandled %s while serving a request", type(exc).__name__, exc_info=exc)
    return 500, UNKNOWN_ERROR, "An unknown error occurred while processing the request.", []

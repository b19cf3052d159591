"""What the management API's OpenAPI document says about refusals, so that it says what
the API does: every status an operation can answer, each with the ``{"code", "msg"}``
body, and no 422 (a request the document refuses is a 400 here, as everywhere in
Sandex). Also the ``Allow`` header of a 405, which lists every method of the path.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from starlette.routing import Match, Route

__all__ = ["ApiError", "refusals", "document_refusals", "allowed_methods"]


class ApiError(BaseModel):
    """A refusal, in Binance's shape (the same body as on the Binance routes)."""

    code: int = Field(description="A negative error code; the README lists them.")
    msg: str = Field(description="What was wrong, for a person to read.")


_WHY: Final = {
    400: "The parameters or body are not what this document describes (-1100, -1102), "
    "or the request makes no sense (-9005): a weak password, an expiry in the past, "
    "WITHDRAW without an IP allowlist, a public key that is not one.",
    401: "No session, or it expired or ended (-1002); for log-in: wrong e-mail or password.",
    403: "This change needs a current 2FA code in ``totp`` (or 2FA enabled first), or the "
    "code was wrong or already used (-9004).",
    404: "You have no key with this id (-9001).",
    409: "Not possible in the current state: the key is revoked, rotated, (not) frozen, "
    "a label is taken, 2FA is already on, or a limit was reached (-9002, -9003).",
    413: "The request body is larger than 64 KiB (-1101).",
    414: "The query string is longer than 8 KiB (-1101).",
    418: "This IP kept sending after 429 answers and is banned for a while (-1003); "
    "``Retry-After`` says when to come back.",
    429: "Too many requests, or too many failed attempts (-1003); ``Retry-After`` says "
    "when to come back.",
}
_RETRY_AFTER: Final = {
    "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
}
GATEWAY: Final = (413, 414, 418, 429)
"""What the gateway answers before a request reaches the management API: any path."""


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an operation that can refuse with ``statuses`` (the gateway's
    own refusals are added)."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, *GATEWAY}):
        response: dict[str, Any] = {"model": ApiError, "description": _WHY[status]}
        if status in (418, 429):
            response["headers"] = _RETRY_AFTER
        documented[status] = response
    return documented


def document_refusals(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document without FastAPI's 422 responses and their
    schemas: a request that does not fit the document is answered 400."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for item in doc.get("paths", {}).values():
                for operation in item.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = doc.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of ``app`` serves at ``path``."""
    scope = {"type": "http", "path": path, "method": "GET"}
    methods: set[str] = set()
    for route in app.routes:
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)

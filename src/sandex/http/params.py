"""Request parameters from the raw query string and form body (Binance rules)."""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from sandex.exchange.rejections import duplicate, not_utf8, too_many_parameters
from sandex.http.errors import BadParameters

__all__ = ["parse_params", "MAX_PARAMS"]

MAX_PARAMS: Final = 100


def _pairs(raw: bytes, where: str) -> list[tuple[str, str]]:
    if b"%" not in raw and b"+" not in raw and raw.isascii():
        # the common case (what ccxt and python-binance send for most calls): nothing to
        # unquote, so split directly; same result as parse_qsl, several times faster
        parts = [p for p in raw.decode("ascii").split("&") if p]
        if len(parts) > MAX_PARAMS:
            raise BadParameters(*too_many_parameters(MAX_PARAMS))
        return [(name, value) for name, _, value in (p.partition("=") for p in parts)]
    try:
        text = raw.decode("ascii")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_PARAMS,
        )
    except UnicodeDecodeError:
        raise BadParameters(*not_utf8(where)) from None
    except ValueError:
        raise BadParameters(*too_many_parameters(MAX_PARAMS)) from None
    return pairs


def parse_params(query: bytes, body: bytes) -> dict[str, str]:
    """Parameters from the query and a form-encoded body.

    The same name twice in one place is refused (-1101, as Binance); a name in both
    the query and the body takes the query's value (Binance).
    """
    params: dict[str, str] = {}
    for raw, where in ((query, "query string"), (body, "request body")):
        if not raw:
            continue
        seen: set[str] = set()
        for name, value in _pairs(raw, where):
            if name in seen:
                raise BadParameters(*duplicate(name))
            seen.add(name)
            params.setdefault(name, value)
    return params

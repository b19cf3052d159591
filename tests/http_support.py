"""Fixtures and helpers for driving the gateway as an ASGI app through httpx (no server
process). Loaded as a plugin by tests/conftest.py."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from sandex.bootstrap import Sandex, build_gateway, open_sandex
from sandex.config import Settings
from sandex.http import Gateway
from sandex.keys.signing import sign_hmac

_LOOP = asyncio.Runner()
"""One event loop for every request of the session, as a server has: a gateway's Redis
connections belong to the loop that opened them."""


class AsgiClient:
    """A synchronous httpx client for an ASGI app, as seen from ``ip``."""

    def __init__(self, app: Any, ip: str = "127.0.0.1") -> None:
        self.app = app
        self.ip = ip

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(self.ip, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://sandex.test") as c:
                return await c.request(method, url, **kwargs)

        return _LOOP.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def signed_query(secret: str, params: list[tuple[str, str]] | None = None, **extra: Any) -> str:
    """``params&timestamp=now&signature=...`` signed with ``secret`` as ccxt signs."""
    items = list(params or [])
    items.append(("timestamp", str(extra.get("timestamp", now_ms()))))
    payload = urlencode(items)
    return f"{payload}&signature={sign_hmac(secret, payload.encode())}"


@pytest.fixture
def make_gateway(settings: Settings) -> Iterator[Callable[..., tuple[Sandex, Gateway]]]:
    """Open Sandex with setting overrides and build its gateway; closed after the test."""
    opened: list[tuple[Sandex, Gateway]] = []

    def make(**overrides: Any) -> tuple[Sandex, Gateway]:
        sx = open_sandex(dataclasses.replace(settings, **overrides))
        gateway = build_gateway(sx)
        opened.append((sx, gateway))
        return sx, gateway

    yield make
    for sx, gateway in opened:
        gate = gateway.services.limiter.gate
        if gate is not None:
            _LOOP.run(gate.aclose())
        sx.close()


@pytest.fixture
def gw(make_gateway: Callable[..., tuple[Sandex, Gateway]]) -> tuple[Sandex, Gateway]:
    return make_gateway()


@pytest.fixture
def client(gw: tuple[Sandex, Gateway]) -> AsgiClient:
    return AsgiClient(gw[1])

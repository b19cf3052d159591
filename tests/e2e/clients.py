"""Unmodified ccxt and python-binance clients pointed at a local Sandex, and the keys
they sign with.

A :class:`Credentials` never shows its secret or private key in a repr, so that no
assertion message or traceback can print one.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import ccxt
import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from requests.adapters import HTTPAdapter

from sandex.bootstrap import Sandex
from sandex.keys import KeyKind, Permission, generate_ed25519_pair
from sandex.keys.material import pem_pair
from sandex.keys.signing import sign_hmac
from sandex.service import IssuedKey, NotFound
from support import OPERATOR, PASSWORD, make_key

with warnings.catch_warnings():
    # python-binance 1.0.37 imports a name websockets deprecated; the suite turns warnings
    # into errors, and this one is python-binance's to fix.
    warnings.filterwarnings(
        "ignore", message=r"websockets\..* is deprecated", category=DeprecationWarning
    )
    from binance.client import Client
    from binance.exceptions import BinanceAPIException

__all__ = [
    "BinanceAPIException",
    "Credentials",
    "new_key",
    "rsa_pair",
    "ccxt_client",
    "binance_client",
    "close_clients",
    "use_source_address",
    "SourceAddressAdapter",
    "signed_get",
    "wait_for_audit",
    "now_ms",
    "SPOT_OPTIONS",
    "spot_ccxt_client",
    "account_balances",
    "wait_for_balance",
]

_DEFAULT_API = ccxt.binance().urls["api"]
_open_sessions: list[Any] = []
"""The requests sessions of the clients made here, closed by :func:`close_clients`."""


def close_clients() -> None:
    """Close every client's connection pool (an unclosed socket found by the garbage
    collector during a later test would be a ResourceWarning, which the suite makes an
    error)."""
    while _open_sessions:
        _open_sessions.pop().close()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Credentials:
    """What a client is configured with: the API key and either an HMAC secret or a
    PEM private key (Ed25519 or RSA)."""

    api_key: str
    prefix: str
    key_id: int
    kind: KeyKind
    secret: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)

    @property
    def signing_secret(self) -> str:
        """What ccxt takes as ``secret``: the HMAC secret or the PEM private key."""
        value = self.secret if self.kind is KeyKind.HMAC_SHA256 else self.private_key_pem
        assert value is not None, "credentials without signing material"
        return value


def rsa_pair() -> tuple[str, str]:
    """A new RSA-2048 pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    return pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def new_key(
    sx: Sandex,
    email: str,
    *,
    label: str,
    kind: KeyKind = KeyKind.HMAC_SHA256,
    permissions: Permission = Permission.READ,
    ips: tuple[str, ...] = (),
    expires_at: int | None = None,
) -> Credentials:
    """Create a key for ``email`` (created first if new) as the operator would."""
    try:
        user = sx.users.find(email)
    except NotFound:
        user = sx.users.create(email, PASSWORD, now=now_ms(), actor=OPERATOR)
    private_pem: str | None = None
    extra: dict[str, Any] = {}
    if kind is KeyKind.ED25519:
        private_pem, public_pem = generate_ed25519_pair()
        extra = {"kind": kind, "public_key_pem": public_pem}
    elif kind is KeyKind.RSA:
        private_pem, public_pem = rsa_pair()
        extra = {"kind": kind, "public_key_pem": public_pem}
    issued: IssuedKey = make_key(
        sx,
        user,
        now=now_ms(),
        label=label,
        permissions=permissions,
        ips=ips,
        expires_at=expires_at,
        **extra,
    )
    assert issued.key.kind is kind
    return Credentials(
        issued.api_key, issued.key.prefix, issued.key.id, kind, issued.secret, private_pem
    )


# -- clients ---------------------------------------------------------------------------


def ccxt_client(base: str, creds: Credentials | None = None, **options: Any) -> ccxt.binance:
    """A fresh ccxt.binance with every REST URL moved to ``base`` (reference §1/§10)."""
    api = {name: re.sub(r"^https://[^/]+", base, url) for name, url in _DEFAULT_API.items()}
    config: dict[str, Any] = {
        "urls": {"api": api, "test": api},
        "options": {"fetchCurrencies": False, "fetchMargins": False, **options},
        "timeout": 10_000,
    }
    if creds is not None:
        config["apiKey"] = creds.api_key
        config["secret"] = creds.signing_secret
    exchange = ccxt.binance(config)
    exchange.session.trust_env = False  # no proxy from the environment for 127.0.0.1
    _open_sessions.append(exchange.session)
    return exchange


def binance_client(base: str, creds: Credentials | None = None) -> Client:
    """A python-binance Client whose spot and sapi URLs point at ``base`` (reference §8)."""
    local = type(
        "LocalClient", (Client,), {"API_URL": base + "/api", "MARGIN_API_URL": base + "/sapi"}
    )
    if creds is None:
        client = local(None, None, ping=False)
    elif creds.kind is KeyKind.HMAC_SHA256:
        client = local(creds.api_key, creds.secret, ping=False)
    else:
        client = local(creds.api_key, None, private_key=creds.private_key_pem, ping=False)
    client.session.trust_env = False  # no proxy from the environment for 127.0.0.1
    _open_sessions.append(client.session)
    return client


class SourceAddressAdapter(HTTPAdapter):
    """A requests adapter whose connections leave from ``source`` (an (ip, port) pair)."""

    def __init__(self, source: tuple[str, int], **kwargs: Any) -> None:
        self._source = source
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **kw: Any
    ) -> None:
        kw["source_address"] = self._source
        super().init_poolmanager(connections, maxsize, block, **kw)


def use_source_address(session: Any, ip: str) -> None:
    """Make a requests session (ccxt's ``ex.session``, python-binance's ``client.session``)
    connect from ``ip``."""
    adapter = SourceAddressAdapter((ip, 0))
    session.mount("http://", adapter)
    session.mount("https://", adapter)


# -- raw signed requests ---------------------------------------------------------------


def signed_get(
    base: str,
    creds: Credentials,
    path: str = "/sapi/v1/account/apiRestrictions",
    *,
    timestamp: int | None = None,
    params: list[tuple[str, str]] | None = None,
    source: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One HMAC-signed GET on a new connection (a new httpx client each time), from the
    local address ``source`` if given (127.0.0.2 is another client to the server), with
    ``headers`` besides the API key."""
    assert creds.secret is not None
    items = list(params or [])
    items.append(("timestamp", str(now_ms() if timestamp is None else timestamp)))
    payload = urlencode(items)
    query = f"{payload}&signature={sign_hmac(creds.secret, payload.encode())}"
    transport = httpx.HTTPTransport(local_address=source) if source else None
    with httpx.Client(timeout=5.0, trust_env=False, transport=transport) as client:
        return client.get(
            f"{base}{path}?{query}", headers={"X-MBX-APIKEY": creds.api_key, **(headers or {})}
        )


# -- the audit log ---------------------------------------------------------------------


def wait_for_audit(
    sx: Sandex,
    prefix: str,
    *,
    event: str,
    reason: str | None = None,
    endpoint: str | None = None,
    at_least: int = 1,
    timeout: float = 3.0,
) -> list[dict[str, Any]]:
    """Poll the audit log until it holds ``at_least`` ``event`` entries for key ``prefix``
    whose reason contains ``reason`` (and on ``endpoint``, e.g. ``"GET /api/v3/time"``);
    returns the matching events as dicts, oldest first. Fails with what it did see.

    Every server process flushes its own queue every 0.2 s, so events of one burst can
    reach the database in several flushes."""
    deadline = time.monotonic() + timeout
    while True:
        seen = [r.event._asdict() for r in sx.audit.tail(limit=200, key_prefix=prefix)]
        found = [
            e
            for e in seen
            if e["event"] == event
            and (reason is None or reason in (e["reason"] or ""))
            and (endpoint is None or e["endpoint"] == endpoint)
        ]
        if len(found) >= at_least:
            return found
        if time.monotonic() > deadline:
            summary = [(e["event"], e["endpoint"], e["ip"], e["reason"]) for e in seen]
            raise AssertionError(
                f"fewer than {at_least} {event} events (reason containing {reason!r}, endpoint"
                f" {endpoint!r}) for key {prefix} within"
                f" {timeout} s; the log holds: {summary}"
            )
        time.sleep(0.1)


# -- spot trading ----------------------------------------------------------------------

SPOT_OPTIONS: dict[str, Any] = {
    "fetchMarkets": {"types": ["spot"]},
    "fetchOpenOrders": {"warnWithoutSymbol": False},
}
"""The ccxt options of reference §2 for spot trading, beyond what :func:`ccxt_client` sets."""


def spot_ccxt_client(base: str, creds: Credentials) -> ccxt.binance:
    """ccxt.binance for spot trading at ``base``, configured only as reference §1-2 say."""
    return ccxt_client(base, creds, **SPOT_OPTIONS)


def account_balances(exchange: ccxt.binance) -> dict[str, tuple[Decimal, Decimal]]:
    """asset -> (free, locked), exactly as ``GET /api/v3/account`` states them (through
    ccxt's fetch_balance); assets with nothing free or locked are left out."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for row in exchange.fetch_balance()["info"]["balances"]:
        free, locked = Decimal(row["free"]), Decimal(row["locked"])
        if free or locked:
            out[row["asset"]] = (free, locked)
    return out


def wait_for_balance(
    exchange: ccxt.binance, asset: str, free: Decimal, *, timeout: float = 5.0
) -> dict[str, tuple[Decimal, Decimal]]:
    """Poll the account until ``asset``'s free balance is ``free`` (starting balances and
    operator credits reach a running server on its next market step); the balances."""
    deadline = time.monotonic() + timeout
    while True:
        balances = account_balances(exchange)
        if balances.get(asset, (Decimal(0), Decimal(0)))[0] == free:
            return balances
        if time.monotonic() > deadline:
            raise AssertionError(f"{asset} free is not {free} after {timeout} s: {balances}")
        time.sleep(0.1)

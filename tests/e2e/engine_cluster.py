"""What the engine-process end-to-end tests share: environments for gateways and
``sandex engine`` on one database and Redis, traders, raw signed orders, and the
ledger read straight from the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

import ccxt
import httpx
from sqlalchemy import text

from e2e.clients import Credentials, new_key, now_ms, spot_ccxt_client, wait_for_balance
from e2e.conftest import server_env
from sandex.bootstrap import Sandex
from sandex.keys import Permission
from sandex.keys.envelope import MasterKey
from sandex.keys.signing import sign_hmac
from support import PG_URL, REDIS_URL

__all__ = [
    "TRADE",
    "START_USDT",
    "ENGINE_DOWN",
    "broker_env",
    "trader",
    "signed",
    "order_params",
    "Ledger",
    "read_ledger",
    "wait_trading",
]

TRADE = Permission.READ | Permission.SPOT_TRADE
START_USDT = Decimal(10_000)
ENGINE_DOWN = {
    "code": -1007,
    "msg": "Timeout waiting for response from backend server. Send status unknown;"
    " execution status unknown.",
}
"""Binance's answer (HTTP 503) when the engine did not answer in time."""


def broker_env(namespace: str, pg_schema: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of every process of one exchange: Redis in ``namespace`` and,
    with ``pg_schema``, PostgreSQL (and a master key shared by every host)."""
    env = server_env(SANDEX_REDIS_URL=REDIS_URL, SANDEX_REDIS_NAMESPACE=namespace, **extra)
    if pg_schema is not None:
        env.update(
            SANDEX_DATABASE_URL=PG_URL,
            SANDEX_DATABASE_SCHEMA=pg_schema,
            SANDEX_MASTER_KEY=MasterKey.generate().to_text(),
        )
    return env


def trader(sx: Sandex, base: str, email: str) -> tuple[ccxt.binance, Credentials]:
    """A new user's trading key in a ccxt client, once the starting USDT have arrived."""
    creds = new_key(sx, email, label="trade", permissions=TRADE)
    ex = spot_ccxt_client(base, creds)
    ex.load_markets()
    wait_for_balance(ex, "USDT", START_USDT, timeout=10.0)
    return ex, creds


def order_params(
    cid: str, *, price: str | None = None, quantity: str = "0.0002", side: str = "BUY"
) -> list[tuple[str, str]]:
    """A BTCUSDT LIMIT GTC order at ``price``, or a MARKET order without one."""
    params = [("symbol", "BTCUSDT"), ("side", side), ("quantity", quantity)]
    if price is None:
        params.append(("type", "MARKET"))
    else:
        params += [("type", "LIMIT"), ("timeInForce", "GTC"), ("price", price)]
    return [*params, ("newClientOrderId", cid)]


def signed(
    client: httpx.Client,
    method: str,
    base: str,
    path: str,
    creds: Credentials,
    params: list[tuple[str, str]],
    *,
    bad_signature: bool = False,
) -> httpx.Response:
    """One HMAC-signed request on ``client``."""
    assert creds.secret is not None
    payload = urlencode([*params, ("timestamp", str(now_ms()))])
    signature = sign_hmac(creds.secret, payload.encode())
    if bad_signature:
        signature = ("0" if signature[0] != "0" else "1") + signature[1:]
    return client.request(
        method,
        f"{base}{path}?{payload}&signature={signature}",
        headers={"X-MBX-APIKEY": creds.api_key},
    )


def wait_trading(base: str, creds: Credentials, *, since: float, limit: float) -> float:
    """Poll ``POST /api/v3/order/test`` (a command the engine answers, with no effect)
    until it succeeds; seconds from ``since`` (a monotonic time) to that answer. Fails
    past ``limit`` seconds."""
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        while True:
            response = signed(
                client,
                "POST",
                base,
                "/api/v3/order/test",
                creds,
                order_params("probe", price="30000"),
            )
            took = time.monotonic() - since
            if response.status_code == 200:
                return took
            assert response.json() == ENGINE_DOWN, response.text
            if took > limit:
                raise AssertionError(f"{base} does not trade {took:.1f} s on: {response.text}")
            time.sleep(0.02)


@dataclass(frozen=True)
class Ledger:
    totals: dict[str, int]
    """asset -> the sum of every balance (users, makers and the system accounts)."""
    locked: dict[tuple[int, str], int]
    """(account, asset) -> the locked balance, where not zero."""
    held: dict[tuple[int, str], int]
    """(account, asset) -> what that account's open orders hold, where not zero."""
    client_ids: dict[tuple[int, str], int]
    """(account, client order id) -> how many orders carry it."""


def read_ledger(sx: Sandex) -> Ledger:
    """The ledger as stored, read in one transaction."""
    with sx.db.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        totals = conn.execute(
            text("SELECT asset, SUM(free + locked) FROM balances GROUP BY asset")
        ).all()
        locked = conn.execute(
            text("SELECT account, asset, locked FROM balances WHERE locked <> 0")
        ).all()
        held = conn.execute(
            text(
                "SELECT account, hold_asset, SUM(held) FROM spot_orders"
                " WHERE status IN ('NEW', 'PARTIALLY_FILLED') GROUP BY account, hold_asset"
            )
        ).all()
        cids = conn.execute(
            text(
                "SELECT account, client_order_id, COUNT(*) FROM spot_orders"
                " WHERE account > 0 GROUP BY account, client_order_id"
            )
        ).all()
    return Ledger(
        {a: int(s) for a, s in totals},
        {(int(acc), a): int(v) for acc, a, v in locked},
        {(int(acc), a): int(v) for acc, a, v in held if int(v)},
        {(int(acc), c): int(n) for acc, c, n in cids},
    )

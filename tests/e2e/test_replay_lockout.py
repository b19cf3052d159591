"""Issue 9, findings 2 and 6, against a real server from two client addresses.

- A replay is the same signature on the same method *and path*: python-binance's
  AsyncClient ``get_order`` then ``cancel_order`` sends identical parameters, and in
  the same millisecond an identical signature, on GET and DELETE ``/api/v3/order``.
- One party's failures never limit or ban another: a stranger at 127.0.0.2 sending
  made-up keys with the owner's prefix, and bad signatures on the owner's real key,
  gets itself limited and banned; the owner at 127.0.0.1 trades on.
"""

from __future__ import annotations

import asyncio
import secrets
import types
import warnings
from decimal import Decimal

import pytest

from e2e.clients import (
    Credentials,
    binance_client,
    new_key,
    now_ms,
    signed_get,
    spot_ccxt_client,
    wait_for_audit,
    wait_for_balance,
)
from sandex.bootstrap import Sandex
from sandex.keys import KeyKind, Permission
from sandex.keys.formats import _checksum, generate_secret

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"websockets\..* is deprecated", category=DeprecationWarning
    )
    from binance.async_client import AsyncClient

EMAIL = "replay-lockout@example.com"
OWNER, STRANGER = "127.0.0.1", "127.0.0.2"

pytestmark = pytest.mark.usefixtures("server_alive")


def test_python_binance_async_get_then_cancel_in_one_millisecond(
    base: str, operator: Sandex, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = new_key(operator, EMAIL, label="async-bot", permissions=Permission.SPOT_TRADE)
    wait_for_balance(spot_ccxt_client(base, creds), "USDT", Decimal(10_000))
    placed = binance_client(base, creds).order_limit_buy(
        symbol="BTCUSDT", quantity="0.01", price="1000"
    )
    order_id = placed["orderId"]
    # python-binance reads time.time() in binance.base_client: one millisecond for both
    frozen_s = now_ms() / 1000
    monkeypatch.setattr("binance.base_client.time", types.SimpleNamespace(time=lambda: frozen_s))
    local = type(
        "LocalAsyncClient",
        (AsyncClient,),
        {"API_URL": base + "/api", "MARGIN_API_URL": base + "/sapi"},
    )

    async def get_then_cancel() -> tuple[dict[str, object], dict[str, object]]:
        client = local(creds.api_key, creds.secret)
        try:
            got = await client.get_order(symbol="BTCUSDT", orderId=order_id)
            cancelled = await client.cancel_order(symbol="BTCUSDT", orderId=order_id)
            return got, cancelled
        finally:
            await client.close_connection()

    got, cancelled = asyncio.get_event_loop().run_until_complete(get_then_cancel())
    assert got["status"] == "NEW"
    assert cancelled["status"] == "CANCELED" and cancelled["orderId"] == order_id
    allowed = wait_for_audit(operator, creds.prefix, event="auth.allowed", at_least=3)
    assert "DELETE /api/v3/order" in {e["endpoint"] for e in allowed}


def _same_prefix_key(creds: Credentials) -> Credentials:
    """A made-up, well-formed key sharing the owner's 12-character display prefix."""
    body = creds.prefix + secrets.token_hex(23)
    return Credentials(body + _checksum(body), creds.prefix, 0, KeyKind.HMAC_SHA256, "x" * 64)


def test_a_stranger_cannot_lock_out_a_key_or_get_its_owner_banned(
    base: str, operator: Sandex
) -> None:
    creds = new_key(operator, EMAIL, label="victim", permissions=Permission.SPOT_TRADE)
    owner = spot_ccxt_client(base, creds)
    wait_for_balance(owner, "USDT", Decimal(10_000))
    assert owner.sapi_get_account_apirestrictions()["enableReading"] is True

    # made-up keys with the victim's display prefix: charged to the stranger's address
    guesses = [signed_get(base, _same_prefix_key(creds), source=STRANGER) for _ in range(15)]
    assert {r.status_code for r in guesses} == {401}
    # bad signatures on the victim's real key: charged to that key from that address
    wrong = Credentials(creds.api_key, creds.prefix, creds.key_id, creds.kind, generate_secret())
    codes = [signed_get(base, wrong, source=STRANGER).status_code for _ in range(25)]
    assert codes[:10] == [400] * 10 and 429 in codes and codes[-1] == 418, codes
    assert signed_get(base, creds, source=STRANGER).status_code == 418  # banned, itself

    # the owner's key, IP, public routes and orders are untouched
    assert owner.sapi_get_account_apirestrictions()["enableReading"] is True
    assert owner.fetch_time() > 0
    order = owner.create_order("BTC/USDT", "limit", "buy", 0.01, 1000)
    assert owner.cancel_order(order["id"], "BTC/USDT")["status"] == "canceled"
    assert signed_get(base, creds, source=OWNER).status_code == 200

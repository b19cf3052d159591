"""Unmodified ccxt and python-binance against a real ``sandex serve`` process over TCP.

One server (SQLite) serves the whole module. Keys are created by the operator in the
test process, revoked and frozen with the ``sandex`` CLI: the server learns of them
through the database and its key change feed. Every refusal is checked three ways:
the exception each client raises, the Binance code and HTTP status, and the
``auth.denied`` event the server writes to the audit log.
"""

from __future__ import annotations

import dataclasses
import time
import types
from collections.abc import Callable
from typing import Any

import ccxt
import httpx
import pytest

from e2e.clients import (
    BinanceAPIException,
    Credentials,
    binance_client,
    ccxt_client,
    new_key,
    now_ms,
    rsa_pair,
    use_source_address,
    wait_for_audit,
)
from sandex.bootstrap import Sandex
from sandex.keys import KeyKind, Permission, generate_ed25519_pair, generate_secret
from sandex.keys.signing import sign_hmac

EMAIL = "e2e-clients@example.com"
TRADE = Permission.READ | Permission.SPOT_TRADE
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}
KINDS = [KeyKind.HMAC_SHA256, KeyKind.ED25519, KeyKind.RSA]
KIND_IDS = ["hmac", "ed25519", "rsa"]


pytestmark = pytest.mark.usefixtures("server_alive")


def _key(operator: Sandex, label: str, **kwargs: Any) -> Credentials:
    return new_key(operator, EMAIL, label=label, **kwargs)


def _refused(call: Callable[[], object], *, timeout: float = 3.0) -> Exception:
    """The exception ``call`` raises once the server has caught up with a key change made
    in another process (the change feed is polled every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            call()
        except Exception as exc:
            return exc
        if time.monotonic() > deadline:
            raise AssertionError(f"still accepted {timeout} s after the change")
        time.sleep(0.05)


def _is_exactly(exc: BaseException, cls: type[BaseException]) -> bool:
    return type(exc) is cls


def _binance_error(call: Callable[[], object]) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as info:
        call()
    assert info.value.status_code >= 400, info.value.status_code
    return info.value


def _restrictions(client: Any) -> dict[str, Any]:
    """GET /sapi/v1/account/apiRestrictions through python-binance (signed)."""
    result = client._request_margin_api("get", "account/apiRestrictions", True, data={})
    assert isinstance(result, dict)
    return result


# -- 1 and 2: every key type works with both clients ---------------------------------------

CASES = [
    # (kind, permissions, IP allowlist)
    (KeyKind.HMAC_SHA256, TRADE, ()),
    (KeyKind.ED25519, Permission.READ, ("127.0.0.1",)),
    (KeyKind.RSA, TRADE, ("127.0.0.0/8",)),
]


@pytest.mark.parametrize(("kind", "permissions", "ips"), CASES, ids=KIND_IDS)
def test_ccxt_fetch_time_and_signed_calls_with_each_key_type(
    base: str,
    operator: Sandex,
    kind: KeyKind,
    permissions: Permission,
    ips: tuple[str, ...],
) -> None:
    creds = _key(operator, f"ccxt-{kind.value}", kind=kind, permissions=permissions, ips=ips)
    ex = ccxt_client(base, creds)

    assert abs(ex.fetch_time() - now_ms()) < 5_000
    r = ex.sapi_get_account_apirestrictions()
    assert r["enableReading"] is True
    assert r["enableSpotAndMarginTrading"] is (Permission.SPOT_TRADE in permissions)
    assert r["ipRestrict"] is bool(ips)
    assert r["enableWithdrawals"] is False
    assert r["sandex"]["keyType"] == kind.value
    assert r["sandex"]["keyPrefix"] == creds.prefix
    if Permission.SPOT_TRADE in permissions:
        assert ex.private_post_order_test(dict(ORDER)) == {}

    expected = ["GET /sapi/v1/account/apiRestrictions"]
    if Permission.SPOT_TRADE in permissions:
        expected.append("POST /api/v3/order/test")
    for endpoint in expected:
        wait_for_audit(operator, creds.prefix, event="auth.allowed", endpoint=endpoint)
    allowed = wait_for_audit(operator, creds.prefix, event="auth.allowed")
    assert all(e["ip"] == "127.0.0.1" and e["outcome"] == "ok" for e in allowed)


@pytest.mark.parametrize(("kind", "permissions", "ips"), CASES, ids=KIND_IDS)
def test_python_binance_server_time_and_signed_calls_with_each_key_type(
    base: str,
    operator: Sandex,
    kind: KeyKind,
    permissions: Permission,
    ips: tuple[str, ...],
) -> None:
    creds = _key(operator, f"pb-{kind.value}", kind=kind, permissions=permissions, ips=ips)
    client = binance_client(base, creds)

    assert abs(client.get_server_time()["serverTime"] - now_ms()) < 5_000
    r = _restrictions(client)
    assert r["enableReading"] is True
    assert r["enableSpotAndMarginTrading"] is (Permission.SPOT_TRADE in permissions)
    assert r["ipRestrict"] is bool(ips)
    assert r["sandex"]["keyType"] == kind.value
    if Permission.SPOT_TRADE in permissions:
        assert (
            client.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=1) == {}
        )
    else:
        error = _binance_error(
            lambda: client.create_test_order(
                symbol="BTCUSDT", side="BUY", type="MARKET", quantity=1
            )
        )
        assert error.code == -2015
        assert "has no operation privilege" in error.message

    wait_for_audit(operator, creds.prefix, event="auth.allowed")


def test_public_endpoints_need_no_key(base: str) -> None:
    ex = ccxt_client(base)
    assert abs(ex.fetch_time() - now_ms()) < 5_000
    assert ex.fetch_status()["status"] == "ok"
    client = binance_client(base)
    client.ping()
    assert client.get_system_status() == {"status": 0, "msg": "normal"}


# -- 3 and 4: refusals, each with both clients and its audit event ---------------------------


def test_revoked_key_is_refused(base: str, operator: Sandex, cli: Callable[..., None]) -> None:
    creds = _key(operator, "revoked")
    assert ccxt_client(base, creds).sapi_get_account_apirestrictions()["enableReading"] is True
    assert _restrictions(binance_client(base, creds))["enableReading"] is True

    cli("keys", "revoke", creds.prefix)

    exc = _refused(lambda: ccxt_client(base, creds).sapi_get_account_apirestrictions())
    assert _is_exactly(exc, ccxt.AuthenticationError), repr(exc)
    assert "-2015" in str(exc)
    error = _binance_error(lambda: _restrictions(binance_client(base, creds)))
    assert error.code == -2015
    assert error.message == "Invalid API-key, IP, or permissions for action."

    denied = wait_for_audit(
        operator, creds.prefix, event="auth.denied", reason="revoked", at_least=2
    )
    assert denied[-1]["endpoint"] == "GET /sapi/v1/account/apiRestrictions"
    assert denied[-1]["outcome"] == "denied"


def test_expired_key_is_refused(base: str, operator: Sandex) -> None:
    expires_at = now_ms() + 1_500
    creds = _key(operator, "expires", expires_at=expires_at)
    assert ccxt_client(base, creds).sapi_get_account_apirestrictions()["enableReading"] is True
    assert _restrictions(binance_client(base, creds))["enableReading"] is True

    time.sleep(max(0.0, (expires_at - now_ms()) / 1000) + 0.1)

    with pytest.raises(ccxt.AuthenticationError) as info:
        ccxt_client(base, creds).sapi_get_account_apirestrictions()
    assert _is_exactly(info.value, ccxt.AuthenticationError), repr(info.value)
    assert "-2015" in str(info.value)
    assert _binance_error(lambda: _restrictions(binance_client(base, creds))).code == -2015

    wait_for_audit(operator, creds.prefix, event="auth.denied", reason="expired", at_least=2)


def test_frozen_key_may_read_but_not_place_a_test_order(
    base: str, operator: Sandex, cli: Callable[..., None]
) -> None:
    creds = _key(operator, "frozen", permissions=TRADE)
    assert ccxt_client(base, creds).private_post_order_test(dict(ORDER)) == {}

    cli("keys", "freeze", creds.prefix)

    exc = _refused(lambda: ccxt_client(base, creds).private_post_order_test(dict(ORDER)))
    assert _is_exactly(exc, ccxt.PermissionDenied), repr(exc)
    assert "FROZEN" in str(exc)  # ccxt matched the msg; python-binance shows the code
    r = ccxt_client(base, creds).sapi_get_account_apirestrictions()
    assert r["enableReading"] is True
    assert r["sandex"]["mode"] == "FROZEN"

    client = binance_client(base, creds)
    error = _binance_error(
        lambda: client.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=1)
    )
    assert error.code == -2015
    assert "has no operation privilege" in error.message
    assert _restrictions(binance_client(base, creds))["sandex"]["mode"] == "FROZEN"

    denied = wait_for_audit(
        operator, creds.prefix, event="auth.denied", reason="FROZEN", at_least=2
    )
    assert {e["endpoint"] for e in denied} == {"POST /api/v3/order/test"}


def test_read_only_key_may_not_place_a_test_order(base: str, operator: Sandex) -> None:
    creds = _key(operator, "read-only")
    with pytest.raises(ccxt.PermissionDenied) as info:
        ccxt_client(base, creds).private_post_order_test(dict(ORDER))
    assert "SPOT_TRADE" in str(info.value)
    client = binance_client(base, creds)
    error = _binance_error(
        lambda: client.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=1)
    )
    assert error.code == -2015
    assert "SPOT_TRADE" in error.message

    wait_for_audit(operator, creds.prefix, event="auth.denied", reason="SPOT_TRADE", at_least=2)


def test_request_from_an_ip_outside_the_allowlist_is_refused(base: str, operator: Sandex) -> None:
    creds = _key(operator, "ip-127.0.0.1", ips=("127.0.0.1",))
    assert ccxt_client(base, creds).sapi_get_account_apirestrictions()["ipRestrict"] is True

    ex = ccxt_client(base, creds)
    use_source_address(ex.session, "127.0.0.2")
    with pytest.raises(ccxt.AuthenticationError) as info:
        ex.sapi_get_account_apirestrictions()
    assert _is_exactly(info.value, ccxt.AuthenticationError), repr(info.value)
    assert "-2015" in str(info.value) and "127.0.0.2" in str(info.value)

    client = binance_client(base, creds)
    use_source_address(client.session, "127.0.0.2")
    error = _binance_error(lambda: _restrictions(client))
    assert error.code == -2015
    assert "request IP 127.0.0.2 is not allowed" in error.message

    denied = wait_for_audit(
        operator, creds.prefix, event="auth.denied", reason="127.0.0.2 not in allowlist", at_least=2
    )
    assert all(e["ip"] == "127.0.0.2" for e in denied)


def test_request_from_an_allowlisted_second_address_is_accepted(
    base: str, operator: Sandex
) -> None:
    creds = _key(operator, "ip-127.0.0.2", ips=("127.0.0.2",))
    ex = ccxt_client(base, creds)
    use_source_address(ex.session, "127.0.0.2")
    assert ex.sapi_get_account_apirestrictions()["ipRestrict"] is True
    client = binance_client(base, creds)
    use_source_address(client.session, "127.0.0.2")
    assert _restrictions(client)["ipRestrict"] is True

    allowed = wait_for_audit(operator, creds.prefix, event="auth.allowed")
    assert {e["ip"] for e in allowed} == {"127.0.0.2"}


def test_forwarded_headers_from_an_untrusted_peer_cannot_pass_the_allowlist(
    base: str, operator: Sandex
) -> None:
    """No SANDEX_TRUSTED_PROXIES: a local client claiming to forward for an allowlisted
    address is still itself (the server must not believe X-Forwarded-For or Forwarded)."""
    creds = _key(operator, "xff-127.0.0.2", ips=("127.0.0.2",))
    assert creds.secret is not None
    for header in ({"X-Forwarded-For": "127.0.0.2"}, {"Forwarded": "for=127.0.0.2"}):
        payload = f"timestamp={now_ms()}"
        query = f"{payload}&signature={sign_hmac(creds.secret, payload.encode())}"
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            r = client.get(
                f"{base}/sapi/v1/account/apiRestrictions?{query}",
                headers={"X-MBX-APIKEY": creds.api_key, **header},
            )
        assert r.status_code == 401
        assert r.json()["code"] == -2015 and "127.0.0.1" in r.json()["msg"]


def test_stale_timestamp_is_refused(base: str, operator: Sandex) -> None:
    creds = _key(operator, "stale")
    ex = ccxt_client(base, creds, timeDifference=120_000)  # ccxt's nonce: now - timeDifference
    with pytest.raises(ccxt.InvalidNonce) as info:
        ex.sapi_get_account_apirestrictions()
    assert "-1021" in str(info.value)

    client = binance_client(base, creds)
    client.timestamp_offset = -120_000
    error = _binance_error(lambda: _restrictions(client))
    assert error.code == -1021
    assert "recvWindow" in error.message

    wait_for_audit(operator, creds.prefix, event="auth.denied", reason="ms old", at_least=2)


def test_replayed_request_is_refused(
    base: str, operator: Sandex, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = _key(
        operator, "replay", permissions=Permission.SPOT_TRADE, ips=("127.0.0.1", "127.0.0.2")
    )
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}

    # ccxt: two instances that sign with the same timestamp send identical requests. A
    # trade request is answered once; a read is answered again only for the address
    # that sent it first (two identical reads in one millisecond are a client's right)
    fixed = now_ms()
    first, second = ccxt_client(base, creds), ccxt_client(base, creds)
    for ex in (first, second):
        ex.nonce = lambda: fixed
    assert first.private_post_order_test(order) == {}
    with pytest.raises(ccxt.InvalidNonce) as info:
        second.private_post_order_test(order)
    assert "-1021" in str(info.value) and "replay" in str(info.value)
    assert first.sapi_get_account_apirestrictions()["enableReading"] is True
    assert second.sapi_get_account_apirestrictions()["enableReading"] is True
    use_source_address(second.session, "127.0.0.2")
    with pytest.raises(ccxt.InvalidNonce):
        second.sapi_get_account_apirestrictions()

    # python-binance reads time.time() in binance.base_client: freeze it there
    frozen_s = (now_ms() + 7) / 1000
    monkeypatch.setattr("binance.base_client.time", types.SimpleNamespace(time=lambda: frozen_s))
    binance_client(base, creds).create_test_order(**order)
    error = _binance_error(lambda: binance_client(base, creds).create_test_order(**order))
    assert error.code == -1021
    assert "replay" in error.message

    wait_for_audit(operator, creds.prefix, event="auth.denied", reason="replayed", at_least=2)
    wait_for_audit(operator, creds.prefix, event="auth.allowed", at_least=2)


def _wrong_material(creds: Credentials) -> Credentials:
    if creds.kind is KeyKind.HMAC_SHA256:
        return dataclasses.replace(creds, secret=generate_secret())
    if creds.kind is KeyKind.ED25519:
        return dataclasses.replace(creds, private_key_pem=generate_ed25519_pair()[0])
    return dataclasses.replace(creds, private_key_pem=rsa_pair()[0])


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_bad_signature_is_refused(base: str, operator: Sandex, kind: KeyKind) -> None:
    creds = _key(operator, f"bad-signature-{kind.value}", kind=kind)
    wrong = _wrong_material(creds)

    with pytest.raises(ccxt.AuthenticationError) as info:
        ccxt_client(base, wrong).sapi_get_account_apirestrictions()
    assert _is_exactly(info.value, ccxt.AuthenticationError), repr(info.value)
    assert "-1022" in str(info.value)
    error = _binance_error(lambda: _restrictions(binance_client(base, wrong)))
    assert error.code == -1022
    assert error.message == "Signature for this request is not valid."

    # the right material still works: nothing about the key changed
    assert ccxt_client(base, creds).sapi_get_account_apirestrictions()["enableReading"] is True

    wait_for_audit(operator, creds.prefix, event="auth.denied", reason="signature", at_least=2)

"""Sandex behind a reverse proxy that appends the address it saw (nginx's usual set-up).

The attack of issue 9, finding 1: such a proxy passes a client's own ``Forwarded``
header through unchanged, so a server that believed ``Forwarded`` over
``X-Forwarded-For`` let anyone holding a key's secret claim an allowlisted address (and
a fresh address per request, past the per-IP throttles). Sandex believes one
configured header only (``SANDEX_FORWARDED_HEADER``), read from the right.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.clients import (
    Credentials,
    ccxt_client,
    new_key,
    signed_get,
    use_source_address,
    wait_for_audit,
)
from e2e.conftest import Launch, Server, server_env
from e2e.proxy import AppendingProxy, appending_proxy
from sandex.keys import KeyKind
from sandex.keys.formats import display_prefix, generate_api_key, generate_secret

EMAIL = "proxy@example.com"
PROXY_ADDRESS = "127.0.0.3"  # where the proxy's upstream connections come from
ATTACKER = "127.0.0.1"
ALLOWED = "127.0.0.2"


def _server(start_server: Launch, header: str | None) -> Server:
    env = {"SANDEX_TRUSTED_PROXIES": f"{PROXY_ADDRESS}/32", "SANDEX_SIMULATE": "0"}
    if header is not None:
        env["SANDEX_FORWARDED_HEADER"] = header
    return start_server(env=server_env(**env))


def _unknown_key(n: int) -> Credentials:
    """Made-up but well-formed credentials (an attacker guessing keys)."""
    api_key = generate_api_key()
    return Credentials(api_key, display_prefix(api_key), -n, KeyKind.HMAC_SHA256, generate_secret())


@pytest.fixture
def behind_xff_proxy(start_server: Launch) -> Iterator[tuple[Server, AppendingProxy]]:
    server = _server(start_server, None)  # the default: x-forwarded-for
    with appending_proxy(server.port, bind=PROXY_ADDRESS) as proxy:
        yield server, proxy


def test_a_client_forwarded_header_cannot_claim_an_allowlisted_ip(
    behind_xff_proxy: tuple[Server, AppendingProxy],
) -> None:
    server, proxy = behind_xff_proxy
    with server.open() as operator:
        creds = new_key(operator, EMAIL, label="withdraw-like", ips=(ALLOWED,))

        # the attacker holds the secret and names the allowlisted address in Forwarded
        forged = signed_get(
            proxy.base, creds, source=ATTACKER, headers={"Forwarded": f"for={ALLOWED}"}
        )
        assert forged.status_code == 401, forged.text
        assert forged.json()["code"] == -2015
        assert f"request IP {ATTACKER} is not allowed" in forged.json()["msg"]

        # nor by writing X-Forwarded-For itself: the proxy appends what it saw, at the right
        spoofed = signed_get(
            proxy.base, creds, source=ATTACKER, headers={"X-Forwarded-For": ALLOWED}
        )
        assert spoofed.status_code == 401 and ATTACKER in spoofed.json()["msg"]

        # the real client behind the same proxy, an unmodified ccxt, is let in
        ex = ccxt_client(proxy.base, creds)
        use_source_address(ex.session, ALLOWED)
        assert ex.sapi_get_account_apirestrictions()["ipRestrict"] is True

        denied = wait_for_audit(
            operator, creds.prefix, event="auth.denied", reason="not in allowlist", at_least=2
        )
        assert {e["ip"] for e in denied} == {ATTACKER}
        allowed = wait_for_audit(operator, creds.prefix, event="auth.allowed")
        assert {e["ip"] for e in allowed} == {ALLOWED}


def test_a_new_forwarded_address_per_request_does_not_escape_the_ip_budget(
    behind_xff_proxy: tuple[Server, AppendingProxy],
) -> None:
    """Failed authentications are counted against the address the proxy saw, whatever
    address each request names for itself."""
    _, proxy = behind_xff_proxy
    codes = []
    for i in range(40):
        r = signed_get(
            proxy.base,
            _unknown_key(i),
            source=ATTACKER,
            headers={"Forwarded": f"for=198.51.100.{i}", "X-Forwarded-For": f"203.0.113.{i}"},
        )
        codes.append(r.status_code)
    assert 429 in codes[30:], codes
    # the allowlisted neighbour behind the same proxy is not limited by it
    r = signed_get(proxy.base, _unknown_key(99), source=ALLOWED)
    assert r.status_code == 401


def test_with_forwarded_configured_a_client_x_forwarded_for_is_never_believed(
    start_server: Launch,
) -> None:
    server = _server(start_server, "forwarded")
    with appending_proxy(server.port, bind=PROXY_ADDRESS, mode="forwarded") as proxy:
        with server.open() as operator:
            creds = new_key(operator, EMAIL, label="forwarded-mode", ips=(ALLOWED,))
        forged = signed_get(
            proxy.base, creds, source=ATTACKER, headers={"X-Forwarded-For": ALLOWED}
        )
        assert forged.status_code == 401 and ATTACKER in forged.json()["msg"]
        assert signed_get(proxy.base, creds, source=ALLOWED).status_code == 200

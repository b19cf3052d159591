"""The gateway over HTTP semantics: routes, authentication, bad input, audit."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from http_support import AsgiClient, now_ms, signed_query
from sandex.bootstrap import Sandex
from sandex.config import Settings
from sandex.http import Gateway, Request, RouteTable, Security
from sandex.http.binance import routes as binance_routes
from sandex.keys import Access, Operation, Permission
from sandex.keys.formats import _checksum
from sandex.keys.reference import parse_key_ref
from sandex.keys.signing import sign_hmac
from sandex.service import Actor
from support import REDIS_URL, make_key, make_user

Setup = tuple[Sandex, Gateway]


@pytest.fixture(params=["in-process", "redis"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """Every gateway test runs twice: rate limits, bans and replays kept in process, and
    in Redis as several workers share them (one round trip per request)."""
    if request.param == "in-process":
        return settings
    namespace = request.getfixturevalue("redis_namespace")
    return dataclasses.replace(settings, redis_url=REDIS_URL, redis_namespace=namespace)


def _key(sx: Sandex, **kwargs: object) -> tuple[str, str]:
    now = now_ms()
    users = sx.users.all()
    user = users[0] if users else make_user(sx, now=now)
    issued = make_key(
        sx,
        user,
        now=now,
        label=f"k{len(sx.keys.for_user(user.id, actor=Actor.operator()))}",
        **kwargs,
    )  # type: ignore[arg-type]
    assert issued.secret is not None
    return issued.api_key, issued.secret


def _audit(sx: Sandex, prefix: str) -> list[tuple[str, str | None, str | None]]:
    sx.activity.flush()
    return [
        (r.event.event, r.event.endpoint, r.event.reason)
        for r in sx.audit.tail(limit=50, key_prefix=prefix)
    ]


def test_public_routes_answer_binance_shapes(client: AsgiClient) -> None:
    assert client.get("/api/v3/ping").json() == {}
    before = now_ms()
    server_time = client.get("/api/v3/time").json()["serverTime"]
    assert before <= server_time <= now_ms()
    assert client.get("/sapi/v1/system/status").json() == {"status": 0, "msg": "normal"}
    r = client.get("/api/v3/ping")
    assert r.headers["content-type"].startswith("application/json")
    assert int(r.headers["x-mbx-used-weight-1m"]) >= 1


def test_unknown_route_is_404_json_and_wrong_method_405(client: AsgiClient) -> None:
    r = client.get("/api/v3/nothing")
    assert r.status_code == 404
    assert r.json()["code"] < 0 and "/api/v3/nothing" in r.json()["msg"]
    r = client.post("/api/v3/ping")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
    assert set(r.json()) == {"code", "msg"}
    assert client.get("/api/v3/ping").status_code == 200  # still serving


def test_api_restrictions_reports_the_key_in_binance_fields(gw: Setup, client: AsgiClient) -> None:
    sx, _ = gw
    api_key, secret = _key(sx, permissions=Permission.SPOT_TRADE, ips=("127.0.0.1",))
    r = client.get(
        "/sapi/v1/account/apiRestrictions?" + signed_query(secret),
        headers={"X-MBX-APIKEY": api_key},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ipRestrict"] is True
    assert body["enableReading"] is True
    assert body["enableSpotAndMarginTrading"] is True
    assert body["enableWithdrawals"] is False and body["enableFutures"] is False
    assert body["sandex"]["keyPrefix"] == api_key[:12]
    assert "tradingAuthorityExpirationTime" not in body  # an allowlisted key does not lapse
    assert isinstance(body["createTime"], int)


def test_trading_key_without_allowlist_reports_its_lapse(gw: Setup, client: AsgiClient) -> None:
    sx, _ = gw
    api_key, secret = _key(sx, permissions=Permission.SPOT_TRADE)
    body = client.get(
        "/sapi/v1/account/apiRestrictions?" + signed_query(secret),
        headers={"X-MBX-APIKEY": api_key},
    ).json()
    assert body["ipRestrict"] is False
    assert body["tradingAuthorityExpirationTime"] > now_ms()


def test_key_introspection_explains_what_the_key_can_do(gw: Setup, client: AsgiClient) -> None:
    sx, _ = gw
    api_key, secret = _key(sx, permissions=Permission.SPOT_TRADE)
    sx.keys.freeze(parse_key_ref(api_key), now=now_ms(), actor=Actor.operator())
    r = client.get("/sandex/v1/key?" + signed_query(secret), headers={"X-MBX-APIKEY": api_key})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["prefix"] == api_key[:12]
    assert view["status"] == "FROZEN"
    assert view["callerIp"] == "127.0.0.1" and view["callerIpAllowed"] is True
    caps = {c["permission"]: c for c in view["capabilities"]}
    assert caps["READ"]["usable"] is True
    assert caps["SPOT_TRADE"]["granted"] is True and caps["SPOT_TRADE"]["usable"] is False
    assert "FROZEN" in caps["SPOT_TRADE"]["why"]
    assert caps["WITHDRAW"]["granted"] is False
    assert view["tradingAuthorityExpirationTime"] is not None
    assert secret not in r.text
    assert api_key not in r.text


def test_form_body_and_mixed_query_plus_body_are_signed_as_sent(
    gw: Setup, client: AsgiClient
) -> None:
    sx, _ = gw
    api_key, secret = _key(sx, permissions=Permission.SPOT_TRADE, ips=("127.0.0.1",))
    headers = {"X-MBX-APIKEY": api_key, "content-type": "application/x-www-form-urlencoded"}
    body = signed_query(
        secret, [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.001")]
    )
    r = client.post("/api/v3/order/test", content=body.encode(), headers=headers)
    assert r.status_code == 200, r.text
    # mixed: the signature covers query + body concatenated (no '&' between)
    query = "symbol=BTCUSDT&side=BUY"
    rest = f"type=MARKET&quantity=0.001&timestamp={now_ms()}"
    sig = sign_hmac(secret, (query + rest).encode())
    r = client.post(
        f"/api/v3/order/test?{query}", content=f"{rest}&signature={sig}".encode(), headers=headers
    )
    assert r.status_code == 200, r.text


def test_every_method_authenticates_params_from_query_or_body(
    make_gateway: Callable[..., Setup],
) -> None:
    """python-binance sends DELETE (and POST) params in a form body, ccxt in the query."""
    sx, base = make_gateway()
    extra = RouteTable()
    seen: list[dict[str, str]] = []
    for method in ("GET", "POST", "PUT", "DELETE"):

        @extra.endpoint(method, "/api/v3/echo", security=Security.USER_DATA)
        def echo(request: Request) -> object:
            seen.append(dict(request.params))
            return {"ok": True}

    gateway = Gateway(base.services, binance_routes.merged(extra))
    client = AsgiClient(gateway)
    api_key, secret = _key(sx)
    for method in ("GET", "POST", "PUT", "DELETE"):
        for where in ("query", "body"):
            # a distinct payload each time: the same signature would be a replay on
            # another method or path from anywhere but its first address
            signed = signed_query(secret, [("orderId", "7"), ("x", "a b/c"), ("n", method + where)])
            if where == "query":
                r = client.request(
                    method, "/api/v3/echo?" + signed, headers={"X-MBX-APIKEY": api_key}
                )
            else:
                r = client.request(
                    method,
                    "/api/v3/echo",
                    content=signed.encode(),
                    headers={
                        "X-MBX-APIKEY": api_key,
                        "content-type": "application/x-www-form-urlencoded",
                    },
                )
            assert r.status_code == 200, (method, where, r.text)
            assert seen[-1]["orderId"] == "7" and seen[-1]["x"] == "a b/c"


def test_query_wins_over_body_and_duplicates_are_refused(
    make_gateway: Callable[..., Setup],
) -> None:
    sx, base = make_gateway()
    extra = RouteTable()

    @extra.endpoint("POST", "/api/v3/echo", security=Security.USER_DATA)
    def echo(request: Request) -> object:
        return dict(request.params)

    client = AsgiClient(Gateway(base.services, binance_routes.merged(extra)))
    api_key, secret = _key(sx)
    query = "symbol=BTCUSDT"
    rest = f"symbol=ETHUSDT&timestamp={now_ms()}"
    sig = sign_hmac(secret, (query + rest).encode())
    r = client.post(
        f"/api/v3/echo?{query}",
        content=f"{rest}&signature={sig}".encode(),
        headers={"X-MBX-APIKEY": api_key},
    )
    assert r.status_code == 200 and r.json()["symbol"] == "BTCUSDT"
    payload = f"symbol=A&symbol=B&timestamp={now_ms()}"
    r = client.post(
        f"/api/v3/echo?{payload}&signature={sign_hmac(secret, payload.encode())}",
        headers={"X-MBX-APIKEY": api_key},
    )
    assert r.status_code == 400
    assert r.json()["code"] == -1101 and "symbol" in r.json()["msg"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("recvWindow=5000", -1102),  # no timestamp
        ("timestamp=abc", -1100),
        ("timestamp={now}&recvWindow=60001", -1131),
        ("timestamp=1000", -1021),
        ("timestamp={now}", -1102),  # no signature
        ("timestamp={now}&signature=00", -1022),
    ],
)
def test_bad_signed_requests_get_binance_errors(
    gw: Setup, client: AsgiClient, query: str, code: int
) -> None:
    sx, _ = gw
    api_key, _secret = _key(sx)
    r = client.get(
        "/sapi/v1/account/apiRestrictions?" + query.format(now=now_ms()),
        headers={"X-MBX-APIKEY": api_key},
    )
    assert 400 <= r.status_code < 500
    assert r.json()["code"] == code


def test_key_format_and_unknown_key(client: AsgiClient) -> None:
    r = client.get("/sapi/v1/account/apiRestrictions?timestamp=1&signature=00")
    assert (r.status_code, r.json()["code"]) == (401, -2014)
    r = client.get(
        "/sapi/v1/account/apiRestrictions?timestamp=1&signature=00",
        headers={"X-MBX-APIKEY": "x" * 64},
    )
    assert (r.status_code, r.json()["code"]) == (401, -2014)


def test_non_utf8_and_oversized_input_are_4xx_and_the_server_keeps_serving(
    gw: Setup, client: AsgiClient
) -> None:
    sx, _ = gw
    api_key, secret = _key(sx)
    payload = f"note=%ff%fe&timestamp={now_ms()}"
    r = client.get(
        f"/sapi/v1/account/apiRestrictions?{payload}&signature={sign_hmac(secret, payload.encode())}",
        headers={"X-MBX-APIKEY": api_key},
    )
    assert (r.status_code, r.json()["code"]) == (400, -1100)
    r = client.get("/api/v3/ping?" + "a=1&" * 5000)
    assert r.status_code == 414 and r.json()["code"] == -1101
    r = client.post(
        "/api/v3/order/test", content=b"x" * (64 * 1024 + 1), headers={"X-MBX-APIKEY": api_key}
    )
    assert r.status_code == 413 and r.json()["code"] == -1101
    r = client.post(
        "/sandex/v1/sessions", content=b"\xff" * 10, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["code"] == -1100
    # the management API has the same body cap, whether the length is declared or not
    r = client.post(
        "/sandex/v1/sessions",
        content=b"x" * (64 * 1024 + 1),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["code"] == -1101

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: chunked
        for _ in range(65):
            yield b"x" * 1024

    r = client.post("/sandex/v1/sessions", content=chunks())
    assert r.status_code == 413 and r.json()["code"] == -1101
    login = client.post(
        "/sandex/v1/sessions", json={"email": "a@example.com", "password": "x" * 12}
    )
    assert login.status_code == 401  # a body within the cap still reaches the API
    assert client.get("/api/v3/ping").status_code == 200


def test_frozen_key_may_read_but_not_trade(gw: Setup, client: AsgiClient) -> None:
    sx, _ = gw
    api_key, secret = _key(sx, permissions=Permission.SPOT_TRADE, ips=("127.0.0.1",))
    sx.keys.freeze(parse_key_ref(api_key), now=now_ms(), actor=Actor.operator())
    h = {"X-MBX-APIKEY": api_key}
    assert (
        client.get(
            "/sapi/v1/account/apiRestrictions?" + signed_query(secret), headers=h
        ).status_code
        == 200
    )
    r = client.post(
        "/api/v3/order/test?"
        + signed_query(
            secret,
            [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.001")],
        ),
        headers=h,
    )
    assert r.status_code == 401
    assert r.json()["code"] == -2015 and "has no operation privilege" in r.json()["msg"]


def test_read_only_key_cannot_use_a_trade_route(gw: Setup, client: AsgiClient) -> None:
    sx, _ = gw
    api_key, secret = _key(sx)
    r = client.post(
        "/api/v3/order/test?"
        + signed_query(
            secret,
            [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.001")],
        ),
        headers={"X-MBX-APIKEY": api_key},
    )
    assert r.json()["code"] == -2015 and "SPOT_TRADE" in r.json()["msg"]


def test_revoked_key_is_refused_at_once_and_every_decision_is_audited(
    gw: Setup, client: AsgiClient
) -> None:
    sx, _ = gw
    api_key, secret = _key(sx)
    h = {"X-MBX-APIKEY": api_key}
    assert (
        client.get(
            "/sapi/v1/account/apiRestrictions?" + signed_query(secret), headers=h
        ).status_code
        == 200
    )
    sx.keys.revoke(parse_key_ref(api_key), now=now_ms(), actor=Actor.operator())
    r = client.get("/sapi/v1/account/apiRestrictions?" + signed_query(secret), headers=h)
    assert (r.status_code, r.json()["code"]) == (401, -2015)
    events = _audit(sx, api_key[:12])
    assert ("auth.allowed", "GET /sapi/v1/account/apiRestrictions", None) in events
    assert ("auth.denied", "GET /sapi/v1/account/apiRestrictions", "key revoked") in events


def test_replayed_request_is_refused(gw: Setup, client: AsgiClient) -> None:
    sx, gateway = gw
    api_key, secret = _key(sx)
    h = {"X-MBX-APIKEY": api_key}
    url = "/sapi/v1/account/apiRestrictions?" + signed_query(secret)
    assert client.get(url, headers=h).status_code == 200
    # the client that sent a read may send it again (two identical reads in one ms)...
    assert client.get(url, headers=h).status_code == 200
    # ...a copy of it from anywhere else is a replay
    r = AsgiClient(gateway, ip="203.0.113.9").get(url, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, -1021) and "replay" in r.json()["msg"]
    # and a trade request is answered once, whoever sends it again
    trader, trade_secret = _key(sx, permissions=Permission.SPOT_TRADE, ips=("127.0.0.1",))
    order = "/api/v3/order/test?" + signed_query(
        trade_secret,
        [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.001")],
    )
    assert client.post(order, headers={"X-MBX-APIKEY": trader}).status_code == 200
    r = client.post(order, headers={"X-MBX-APIKEY": trader})
    assert r.json()["code"] == -1021 and "replay" in r.json()["msg"]


@pytest.mark.parametrize("settings", ["redis"], indirect=True)  # in process: one worker's own
def test_workers_sharing_redis_share_replays_weight_and_bans(
    make_gateway: Callable[..., Setup],
) -> None:
    """Two gateways on one Redis namespace (two workers): a signature used on one is a
    replay on the other, the weight is counted once for both, and a ban holds on both."""
    sx, first = make_gateway(ip_weight_1m=40)
    _, second = make_gateway(ip_weight_1m=40)
    assert first.services.limiter.gate is not None  # one round trip per request
    one, other = AsgiClient(first), AsgiClient(second)
    trader, secret = _key(sx, permissions=Permission.SPOT_TRADE, ips=("127.0.0.1",))
    h = {"X-MBX-APIKEY": trader}
    order = "/api/v3/order/test?" + signed_query(
        secret, [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "1")]
    )
    assert one.post(order, headers=h).status_code == 200
    r = other.post(order, headers=h)
    assert r.json()["code"] == -1021 and "replay" in r.json()["msg"]
    # the read a client may repeat from its own address, not from another
    reader, read_secret = _key(sx)
    h = {"X-MBX-APIKEY": reader}
    url = "/sapi/v1/account/apiRestrictions?" + signed_query(read_secret)
    assert one.get(url, headers=h).status_code == 200
    assert other.get(url, headers=h).status_code == 200
    r = AsgiClient(second, ip="203.0.113.9").get(url, headers=h)
    assert r.json()["code"] == -1021
    used = int(other.get("/api/v3/ping").headers["x-mbx-used-weight-1m"])
    assert int(one.get("/api/v3/ping").headers["x-mbx-used-weight-1m"]) == used + 1
    codes = [(one if n % 2 else other).get("/api/v3/ping").status_code for n in range(60)]
    assert 429 in codes and codes[-1] == 418, codes
    r = one.get("/api/v3/ping")
    assert r.status_code == 418 and int(r.headers["retry-after"]) > 0
    assert other.get("/api/v3/time").status_code == 418


def test_spoofed_forwarded_for_cannot_pass_an_allowlist(make_gateway: Callable[..., Setup]) -> None:
    sx, gateway = make_gateway()
    api_key, secret = _key(sx, ips=("203.0.113.7",))
    attacker = AsgiClient(gateway, ip="198.51.100.1")
    for header in ({"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"}):
        r = attacker.get(
            "/sapi/v1/account/apiRestrictions?" + signed_query(secret),
            headers={"X-MBX-APIKEY": api_key, **header},
        )
        assert r.json()["code"] == -2015 and "198.51.100.1" in r.json()["msg"]


def test_trusted_proxy_forwards_the_client_ip(make_gateway: Callable[..., Setup]) -> None:
    sx, gateway = make_gateway(trusted_proxies="10.0.0.0/8")
    api_key, secret = _key(sx, ips=("203.0.113.7",))
    proxy = AsgiClient(gateway, ip="10.1.2.3")
    r = proxy.get(
        "/sapi/v1/account/apiRestrictions?" + signed_query(secret),
        headers={"X-MBX-APIKEY": api_key, "X-Forwarded-For": "1.2.3.4, 203.0.113.7, 10.9.9.9"},
    )
    assert r.status_code == 200, r.text
    r = proxy.get(
        "/sapi/v1/account/apiRestrictions?" + signed_query(secret),
        headers={"X-MBX-APIKEY": api_key, "X-Forwarded-For": "198.51.100.1"},
    )
    assert "198.51.100.1" in r.json()["msg"]


def test_usage_header_counts_request_weight(client: AsgiClient) -> None:
    used = [int(client.get("/api/v3/ping").headers["x-mbx-used-weight-1m"]) for _ in range(3)]
    assert used[1] == used[0] + 1 and used[2] == used[1] + 1


def _each_usage_header_once(r: httpx.Response) -> None:
    """Issue 10, finding 4: a 429 repeated every X-MBX header ("101, 101"), and a bot
    reading ``int(headers[...])`` crashed exactly when it was limited."""
    names = [name.lower() for name, _ in r.headers.raw]
    usage = [n for n in names if n.startswith(b"x-mbx-")]
    assert usage and len(usage) == len(set(usage)), r.headers.raw
    for name in usage:
        int(r.headers[name.decode()])


def test_over_the_weight_limit_is_429_then_418(make_gateway: Callable[..., Setup]) -> None:
    _sx, gateway = make_gateway(ip_weight_1m=5)
    client = AsgiClient(gateway)
    statuses = [client.get("/api/v3/ping").status_code for _ in range(5)]
    assert statuses == [200] * 5
    r = client.get("/api/v3/ping")
    assert r.status_code == 429 and r.json()["code"] == -1003
    assert 1 <= int(r.headers["retry-after"]) <= 60
    _each_usage_header_once(r)
    codes = [client.get("/api/v3/ping").status_code for _ in range(10)]
    assert 418 in codes, codes
    r = client.get("/api/v3/ping")
    assert r.status_code == 418 and r.json()["code"] == -1003
    assert 60 < int(r.headers["retry-after"]) <= 120
    other = AsgiClient(gateway, ip="127.0.0.9")
    assert other.get("/api/v3/ping").status_code == 200  # bans are per IP


def test_failed_signatures_are_throttled_before_the_weight_limit(
    gw: Setup, client: AsgiClient
) -> None:
    sx, _ = gw
    api_key, secret = _key(sx)
    h = {"X-MBX-APIKEY": api_key}
    codes = [
        client.get(
            f"/sapi/v1/account/apiRestrictions?timestamp={now_ms()}&signature=00", headers=h
        ).json()["code"]
        for _ in range(12)
    ]
    assert codes[:10] == [-1022] * 10
    assert codes[10:] == [-1003, -1003]
    r = client.get("/sapi/v1/account/apiRestrictions?" + signed_query(secret), headers=h)
    assert r.status_code == 429  # even a good signature waits: the key is under attack
    assert client.get("/api/v3/ping").status_code == 200  # the IP's ordinary traffic is not


def _same_prefix_key(api_key: str) -> str:
    """A made-up, well-formed key that shares ``api_key``'s 12-character display prefix."""
    body = api_key[:12] + secrets.token_hex(23)
    return body + _checksum(body)


def test_strangers_cannot_lock_out_a_key_or_get_its_owner_banned(
    make_gateway: Callable[..., Setup],
) -> None:
    """Issue 9, finding 2: made-up keys with the victim's prefix, and bad signatures on
    the victim's real key, from another address, limit and ban only that address."""
    sx, gateway = make_gateway()
    api_key, secret = _key(sx)
    owner, attacker = AsgiClient(gateway, ip="127.0.0.1"), AsgiClient(gateway, ip="127.0.0.2")

    def owner_reads() -> int:
        r = owner.get(
            "/sapi/v1/account/apiRestrictions?" + signed_query(secret),
            headers={"X-MBX-APIKEY": api_key},
        )
        return r.status_code

    forged = [
        attacker.get(
            f"/sapi/v1/account/apiRestrictions?timestamp={now_ms()}&signature=00",
            headers={"X-MBX-APIKEY": _same_prefix_key(api_key)},
        ).status_code
        for _ in range(12)
    ]
    assert forged == [401] * 12  # unknown keys: charged to the attacker's IP (30 a minute)
    assert owner_reads() == 200

    bad = [
        attacker.get(
            f"/sapi/v1/account/apiRestrictions?timestamp={now_ms()}&signature=00",
            headers={"X-MBX-APIKEY": api_key},
        ).status_code
        for _ in range(30)
    ]
    assert bad[:10] == [400] * 10 and 429 in bad and 418 in bad, bad  # the attacker is banned
    assert attacker.get("/api/v3/ping").status_code == 418
    assert owner_reads() == 200  # the owner's key and IP are untouched
    assert owner.get("/api/v3/ping").status_code == 200


def test_a_revoked_key_retried_is_refused_cheaply_and_never_bans(
    make_gateway: Callable[..., Setup],
) -> None:
    sx, gateway = make_gateway()
    api_key, secret = _key(sx)
    sx.keys.revoke(parse_key_ref(api_key[:12]), now=now_ms(), actor=Actor.operator())
    bot = AsgiClient(gateway, ip="127.0.0.1")
    codes = [
        bot.get(
            "/sapi/v1/account/apiRestrictions?" + signed_query(secret),
            headers={"X-MBX-APIKEY": api_key},
        ).json()["code"]
        for _ in range(40)
    ]
    assert codes == [-2015] * 40
    assert bot.get("/api/v3/ping").status_code == 200


def test_order_count_headers_on_order_routes(make_gateway: Callable[..., Setup]) -> None:
    sx, base = make_gateway(orders_10s=2)
    extra = RouteTable()

    @extra.endpoint(
        "POST",
        "/api/v3/order",
        security=Security.TRADE,
        access=Access(
            Permission.SPOT_TRADE,
            Operation.PLACE_ORDER,
        ),
        counts_order=True,
    )
    def order(request: Request) -> object:
        return {"orderId": 1}

    client = AsgiClient(Gateway(base.services, binance_routes.merged(extra)))
    api_key, secret = _key(sx, permissions=Permission.SPOT_TRADE, ips=("127.0.0.1",))
    h = {"X-MBX-APIKEY": api_key}
    # a distinct parameter each: two requests signed in one millisecond would be a replay
    r1, r2, r3 = (
        client.post("/api/v3/order?" + signed_query(secret, [("n", str(n))]), headers=h)
        for n in range(3)
    )
    assert (r1.headers["x-mbx-order-count-10s"], r2.headers["x-mbx-order-count-10s"]) == ("1", "2")
    assert r2.headers["x-mbx-order-count-1d"] == "2"
    assert r3.status_code == 429, r3.text
    assert r3.json() == {
        "code": -1015,
        "msg": "Too many new orders; current limit is 2 orders per 10 SECOND.",
    }
    _each_usage_header_once(r3)
    events = _audit(sx, api_key[:12])
    refused = "rate limited: Too many new orders; current limit is 2 orders per 10 SECOND."
    assert events.count(("auth.denied", "POST /api/v3/order", refused)) == 1, events


def test_route_table_refuses_a_signed_route_without_access() -> None:
    table = RouteTable()
    with pytest.raises(ValueError, match="access"):
        table.endpoint("POST", "/x", security=Security.TRADE)(lambda request: {})
    with pytest.raises(ValueError, match="twice"):
        binance_routes.merged(binance_routes)


def test_user_stream_routes_need_the_key_but_no_signature(
    make_gateway: Callable[..., Setup],
) -> None:
    sx, base = make_gateway()
    extra = RouteTable()

    @extra.endpoint("POST", "/api/v3/userDataStream", security=Security.USER_STREAM)
    def listen_key(request: Request) -> object:
        assert request.principal is not None
        return {"listenKey": f"user-{request.principal.user_id}"}

    client = AsgiClient(Gateway(base.services, binance_routes.merged(extra)))
    api_key, _secret = _key(sx, ips=("127.0.0.1",))
    r = client.post("/api/v3/userDataStream", headers={"X-MBX-APIKEY": api_key})
    assert r.status_code == 200 and r.json()["listenKey"].startswith("user-")
    assert client.post("/api/v3/userDataStream").json()["code"] == -2014
    outsider = AsgiClient(client.app, ip="127.0.0.5")
    r = outsider.post("/api/v3/userDataStream", headers={"X-MBX-APIKEY": api_key})
    assert r.json()["code"] == -2015 and "127.0.0.5" in r.json()["msg"]

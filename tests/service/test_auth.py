"""``authenticate(request, now)``: one behaviour per DESIGN §3 step, with a fixed clock.

Every outcome is checked for the Binance code and message clients act on, and for the
audit entry it leaves.
"""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import NOW
from sandex.bootstrap import Sandex
from sandex.keys import Access, KeyKind, Operation, Permission
from sandex.keys.model import DAY_MS
from sandex.keys.reference import parse_key_ref
from sandex.service import (
    ApiKeyFormatInvalid,
    ApiKeyRejected,
    AuthenticationFailed,
    IllegalParameter,
    IpNotAllowed,
    KeyPatch,
    MandatoryParameterMissing,
    PermissionMissing,
    RecvWindowTooLarge,
    RequestReplayed,
    SignatureInvalid,
    TimestampOutsideWindow,
)
from support import OPERATOR, make_key, make_user, signed_request

PLACE_SPOT = Access(Permission.SPOT_TRADE, Operation.PLACE_ORDER)
CANCEL_SPOT = Access(Permission.SPOT_TRADE, Operation.CANCEL_ORDER)
WITHDRAW = Access(Permission.WITHDRAW, Operation.MOVE_FUNDS)


def last_event(sx: Sandex) -> tuple[str, str | None]:
    sx.activity.flush()
    (record,) = sx.audit.tail(limit=1)
    return record.event.event, record.event.reason


def refused(sx: Sandex, request, now=NOW, access=Access.READ) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as info:
        sx.auth.authenticate(request, now, access)
    return info.value


@pytest.fixture
def hmac_key(sandex: Sandex):
    user = make_user(sandex, now=NOW)
    return make_key(sandex, user, now=NOW, permissions=Permission.READ | Permission.SPOT_TRADE)


def test_a_correctly_signed_request_is_allowed_and_audited(sandex: Sandex, hmac_key) -> None:
    request = signed_request(
        hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW, params=[("symbol", "BTCUSDT")]
    )
    principal = sandex.auth.authenticate(request, NOW)
    assert principal.key_id == hmac_key.key.id
    assert principal.user_id == hmac_key.key.user_id
    assert principal.key_prefix == hmac_key.api_key[:12]
    assert Permission.SPOT_TRADE in principal.permissions
    sandex.activity.flush()
    (record,) = sandex.audit.tail(limit=1)
    assert record.event.event == "auth.allowed"
    assert record.event.key_prefix == hmac_key.key.prefix
    assert record.event.ip == "127.0.0.1"
    assert record.event.endpoint == "GET /api/v3/account"
    shown = sandex.keys.find(parse_key_ref(hmac_key.key.prefix), actor=OPERATOR)
    assert (shown.last_used_at, shown.last_used_ip) == (NOW, "127.0.0.1")


# -- step 1: key present and well-formed (-2014) ---------------------------------------


def test_step1_missing_header_is_a_format_error(sandex: Sandex, hmac_key) -> None:
    exc = refused(sandex, signed_request(None, secret=hmac_key.secret, timestamp=NOW))
    assert isinstance(exc, ApiKeyFormatInvalid)
    assert (exc.code, exc.msg) == (-2014, "API-key format invalid.")
    assert last_event(sandex) == ("auth.denied", "no X-MBX-APIKEY header")


def test_step1_a_mistyped_key_fails_its_checksum_before_any_lookup(
    sandex: Sandex, hmac_key
) -> None:
    key = hmac_key.api_key
    typo = key[:30] + ("A" if key[30] != "A" else "B") + key[31:]
    exc = refused(sandex, signed_request(typo, secret=hmac_key.secret, timestamp=NOW))
    assert exc.code == -2014
    assert last_event(sandex) == ("auth.denied", "malformed API key (64 characters)")


def test_step1_a_secret_sent_as_the_key_is_refused_and_named_only_in_the_audit(
    sandex: Sandex,
    hmac_key,
) -> None:
    exc = refused(sandex, signed_request(hmac_key.secret, secret=hmac_key.api_key, timestamp=NOW))
    assert exc.code == -2014
    assert hmac_key.secret not in exc.msg
    sandex.activity.flush()
    (record,) = sandex.audit.tail(limit=1)
    assert "swapped" in (record.event.reason or "")
    assert record.event.key_prefix is None  # not even a prefix of a secret is kept


# -- step 2: key known and alive (-2015, deliberately vague) ---------------------------


def test_step2_unknown_revoked_and_expired_keys_get_the_same_vague_answer(sandex: Sandex) -> None:
    from sandex.keys import generate_api_key

    user = make_user(sandex, now=NOW)
    revoked = make_key(sandex, user, now=NOW, label="revoked")
    sandex.keys.revoke(parse_key_ref(revoked.key.prefix), now=NOW, actor=OPERATOR)
    expiring = make_key(sandex, user, now=NOW, label="expiring", expires_at=NOW + 1000)
    cases = [
        (generate_api_key(), "x", "unknown API key"),
        (revoked.api_key, revoked.secret, "key revoked"),
        (expiring.api_key, expiring.secret, "key expired"),
    ]
    messages = set()
    for api_key, secret, reason in cases:
        exc = refused(
            sandex, signed_request(api_key, secret=secret, timestamp=NOW + 1000), now=NOW + 1000
        )
        assert isinstance(exc, ApiKeyRejected)
        assert exc.code == -2015
        messages.add(exc.msg)
        assert last_event(sandex) == ("auth.denied", reason)
    assert messages == {"Invalid API-key, IP, or permissions for action."}


def test_step2_an_expired_key_works_until_the_moment_it_expires(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    key = make_key(sandex, user, now=NOW, expires_at=NOW + 60_000)
    request = signed_request(key.api_key, secret=key.secret, timestamp=NOW + 59_999)
    sandex.auth.authenticate(request, NOW + 59_999)
    later = signed_request(key.api_key, secret=key.secret, timestamp=NOW + 60_000)
    assert refused(sandex, later, now=NOW + 60_000).code == -2015


# -- step 3: freshness (-1021, -1102, -1100, -1131) ------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "recv_window", "error", "code"),
    [
        (None, None, MandatoryParameterMissing, -1102),
        ("", None, MandatoryParameterMissing, -1102),
        ("12ab", None, IllegalParameter, -1100),
        ("-5", None, IllegalParameter, -1100),
        (NOW + 1000, None, TimestampOutsideWindow, -1021),
        (NOW - 5001, None, TimestampOutsideWindow, -1021),
        (NOW - 10_001, 10_000, TimestampOutsideWindow, -1021),
        (NOW, 60_001, RecvWindowTooLarge, -1131),
        (NOW, "5x", IllegalParameter, -1100),
    ],
)
def test_step3_stale_future_missing_or_malformed_timestamps_are_refused(
    sandex: Sandex,
    hmac_key,
    timestamp,
    recv_window,
    error,
    code,
) -> None:
    request = signed_request(
        hmac_key.api_key, secret=hmac_key.secret, timestamp=timestamp, recv_window=recv_window
    )
    exc = refused(sandex, request)
    assert isinstance(exc, error)
    assert exc.code == code


@pytest.mark.parametrize(
    ("timestamp", "recv_window"),
    [
        (NOW + 999, None),  # up to 1 s ahead is tolerated
        (NOW - 5000, None),  # exactly the default 5000 ms window
        (NOW - 60_000, 60_000),  # the largest window
        ((NOW - 4000) * 1000 + 123, None),  # microseconds
        (NOW - 2500, "2500.5"),  # a window with decimals
    ],
)
def test_step3_fresh_requests_pass(sandex: Sandex, hmac_key, timestamp, recv_window) -> None:
    request = signed_request(
        hmac_key.api_key, secret=hmac_key.secret, timestamp=timestamp, recv_window=recv_window
    )
    sandex.auth.authenticate(request, NOW)


def test_step3_messages_match_binance(sandex: Sandex, hmac_key) -> None:
    ahead = refused(
        sandex, signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW + 5000)
    )
    assert ahead.msg == "Timestamp for this request was 1000ms ahead of the server's time."
    old = refused(
        sandex, signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW - 6000)
    )
    assert old.msg == "Timestamp for this request is outside of the recvWindow."
    assert last_event(sandex) == ("auth.denied", "timestamp 6000 ms old, window 5000 ms")


def test_step3_freshness_is_checked_before_the_signature(sandex: Sandex, hmac_key) -> None:
    request = signed_request(hmac_key.api_key, signature="0" * 64, timestamp=NOW - 60_000)
    assert refused(sandex, request).code == -1021


# -- step 4: signature (-1022) ---------------------------------------------------------


def test_step4_a_wrong_signature_is_refused(sandex: Sandex, hmac_key) -> None:
    exc = refused(sandex, signed_request(hmac_key.api_key, secret="not-the-secret", timestamp=NOW))
    assert isinstance(exc, SignatureInvalid)
    assert (exc.code, exc.msg) == (-1022, "Signature for this request is not valid.")
    assert last_event(sandex) == ("auth.denied", "signature mismatch")


def test_step4_a_missing_signature_is_a_missing_parameter(sandex: Sandex, hmac_key) -> None:
    exc = refused(sandex, signed_request(hmac_key.api_key, timestamp=NOW))
    assert exc.code == -1102
    assert "'signature'" in exc.msg


def test_step4_a_tampered_parameter_breaks_the_signature(sandex: Sandex, hmac_key) -> None:
    request = signed_request(
        hmac_key.api_key,
        secret=hmac_key.secret,
        timestamp=NOW,
        params=[("quantity", "1")],
        method="POST",
        in_body=True,
    )
    tampered = type(request)(
        request.method,
        request.path,
        request.query,
        request.body.replace(b"quantity=1", b"quantity=9"),
        request.headers,
        request.client_ip,
    )
    assert refused(sandex, tampered).code == -1022


def test_step4_hmac_hex_is_case_insensitive(sandex: Sandex, hmac_key) -> None:
    from sandex.keys.signing import sign_hmac

    payload = f"timestamp={NOW}"
    sig = sign_hmac(hmac_key.secret, payload.encode()).upper()
    sandex.auth.authenticate(signed_request(hmac_key.api_key, timestamp=NOW, signature=sig), NOW)


def test_step4_signed_query_plus_body_is_concatenated_without_separator(
    sandex: Sandex,
    hmac_key,
) -> None:
    from sandex.keys.signing import sign_hmac
    from sandex.service import Request

    query = b"symbol=BTCUSDT&side=BUY"
    body = f"quantity=1&timestamp={NOW}".encode()
    sig = sign_hmac(hmac_key.secret, query + body)
    request = Request(
        "POST",
        "/api/v3/order",
        query,
        body + f"&signature={sig}".encode(),
        {"x-mbx-apikey": hmac_key.api_key},
        "127.0.0.1",
    )
    sandex.auth.authenticate(request, NOW)


def test_step4_python_binance_unquoted_payload_is_accepted(sandex: Sandex, hmac_key) -> None:
    from sandex.keys.signing import sign_hmac
    from sandex.service import Request

    signed_over = f"newClientOrderId=a b/c&timestamp={NOW}"
    sent = f"newClientOrderId=a+b%2Fc&timestamp={NOW}"
    sig = sign_hmac(hmac_key.secret, signed_over.encode())
    request = Request(
        "DELETE",
        "/api/v3/order",
        b"",
        f"{sent}&signature={sig}".encode(),
        {"x-mbx-apikey": hmac_key.api_key},
        "127.0.0.1",
    )
    sandex.auth.authenticate(request, NOW)


@pytest.mark.parametrize("kind", [KeyKind.ED25519, KeyKind.RSA])
def test_step4_public_key_signatures_verify_and_forgeries_do_not(sandex: Sandex, kind) -> None:
    user = make_user(sandex, now=NOW)
    private = (
        ed25519.Ed25519PrivateKey.generate()
        if kind is KeyKind.ED25519
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    issued = make_key(sandex, user, now=NOW, kind=kind, public_key_pem=pem)
    assert issued.secret is None
    good = signed_request(
        issued.api_key,
        private_key=private,
        timestamp=NOW,
        in_body=True,
        method="POST",
        params=[("symbol", "BTCUSDT")],
    )
    assert sandex.auth.authenticate(good, NOW).kind is kind
    other = (
        ed25519.Ed25519PrivateKey.generate()
        if kind is KeyKind.ED25519
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    forged = signed_request(issued.api_key, private_key=other, timestamp=NOW + 1)
    assert refused(sandex, forged, now=NOW + 1).code == -1022


# -- step 5: replay (-1021 with a clear message) -------------------------------------


def test_step5_a_captured_read_replayed_from_another_address_is_refused(
    sandex: Sandex, hmac_key
) -> None:
    request = signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW)
    sandex.auth.authenticate(request, NOW)
    stolen = dataclasses.replace(request, client_ip="203.0.113.9")
    exc = refused(sandex, stolen, now=NOW + 10)
    assert isinstance(exc, RequestReplayed)
    assert exc.code == -1021
    assert "already received" in exc.msg
    assert last_event(sandex) == ("auth.denied", "replayed signature")


def test_step5_a_read_repeated_by_the_address_that_sent_it_passes(sandex: Sandex, hmac_key) -> None:
    """An unmodified client on the same machine can send two identical reads inside one
    millisecond (python-binance's get_account twice): both are answered."""
    request = signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW)
    sandex.auth.authenticate(request, NOW)
    sandex.auth.authenticate(request, NOW + 1)


def test_step5_a_trade_request_is_accepted_once_even_from_the_same_address(
    sandex: Sandex,
) -> None:
    user = make_user(sandex, now=NOW)
    issued = make_key(sandex, user, now=NOW, permissions=Permission.SPOT_TRADE, ips=("127.0.0.1",))
    trade = Access(Permission.SPOT_TRADE, Operation.PLACE_ORDER)
    request = signed_request(
        issued.api_key, secret=issued.secret, timestamp=NOW, method="POST", path="/api/v3/order"
    )
    sandex.auth.authenticate(request, NOW, trade)
    exc = refused(sandex, request, now=NOW + 1, access=trade)
    assert isinstance(exc, RequestReplayed)


def test_step5_a_replay_is_the_same_signature_on_the_same_method_and_path(
    sandex: Sandex,
) -> None:
    """python-binance's AsyncClient get_order then cancel_order: identical parameters in
    one millisecond on GET and DELETE /api/v3/order; the cancel is not a replay. But a
    captured read cannot be turned into a trade request by anyone at another address."""
    user = make_user(sandex, now=NOW)
    issued = make_key(sandex, user, now=NOW, permissions=Permission.SPOT_TRADE)
    trade = CANCEL_SPOT
    params = [("symbol", "BTCUSDT"), ("orderId", "7")]
    read = signed_request(
        issued.api_key, secret=issued.secret, timestamp=NOW, params=params, path="/api/v3/order"
    )
    sandex.auth.authenticate(read, NOW)
    cancel = dataclasses.replace(read, method="DELETE")
    sandex.auth.authenticate(cancel, NOW, trade)
    assert isinstance(refused(sandex, cancel, now=NOW + 1, access=trade), RequestReplayed)

    other = signed_request(issued.api_key, secret=issued.secret, timestamp=NOW + 5)
    sandex.auth.authenticate(other, NOW + 5)
    stolen = dataclasses.replace(
        other, method="DELETE", path="/api/v3/openOrders", client_ip="203.0.113.9"
    )
    assert isinstance(refused(sandex, stolen, now=NOW + 6, access=trade), RequestReplayed)


def test_step5_a_signature_is_used_up_only_by_a_request_that_passed_every_check(
    sandex: Sandex,
) -> None:
    """Someone outside the allowlist who sees a request first cannot spoil it, nor can
    a request the key lacks the permission for."""
    user = make_user(sandex, now=NOW)
    issued = make_key(sandex, user, now=NOW, permissions=Permission.SPOT_TRADE, ips=("127.0.0.1",))
    trade = Access(Permission.SPOT_TRADE, Operation.PLACE_ORDER)
    request = signed_request(
        issued.api_key, secret=issued.secret, timestamp=NOW, method="POST", path="/api/v3/order"
    )
    early = dataclasses.replace(request, client_ip="203.0.113.9")
    assert isinstance(refused(sandex, early, now=NOW, access=trade), IpNotAllowed)
    assert isinstance(refused(sandex, request, now=NOW, access=WITHDRAW), PermissionMissing)
    sandex.auth.authenticate(request, NOW + 1, trade)  # the sender's own request passes


def test_step5_a_re_encoded_signature_is_still_a_replay(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    issued = make_key(sandex, user, now=NOW, kind=KeyKind.ED25519, public_key_pem=pem)
    from urllib.parse import unquote

    from sandex.keys.signing import sign_with_private_key

    for attempt in range(20):  # find a signature with a character that can be encoded 2 ways
        payload = f"n={attempt}&timestamp={NOW}"
        raw = sign_with_private_key(private, payload.encode())
        if "+" in raw or "/" in raw:
            break
    encoded = signed_request(
        issued.api_key,
        params=[("n", str(attempt))],
        timestamp=NOW,
        signature=raw.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D"),
    )
    sandex.auth.authenticate(encoded, NOW)
    lower = signed_request(
        issued.api_key,
        params=[("n", str(attempt))],
        timestamp=NOW,
        signature=raw.replace("+", "%2b").replace("/", "%2f"),
    )
    assert unquote(lower.query.decode()) == unquote(encoded.query.decode())
    elsewhere = dataclasses.replace(lower, client_ip="203.0.113.9")
    assert refused(sandex, elsewhere, now=NOW + 1).code == -1021


def test_step5_distinct_requests_in_the_same_millisecond_both_pass(
    sandex: Sandex, hmac_key
) -> None:
    for symbol in ("BTCUSDT", "ETHUSDT"):
        sandex.auth.authenticate(
            signed_request(
                hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW, params=[("symbol", symbol)]
            ),
            NOW,
        )


# -- step 6: IP allowlist (-2015 naming the IP) -------------------------------------


def test_step6_an_ip_outside_the_allowlist_is_named_and_refused(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    key = make_key(sandex, user, now=NOW, ips=("10.1.0.0/16", "2001:db8::/32"))
    for ip in ("10.1.2.3", "2001:db8::7", "::ffff:10.1.9.9"):
        sandex.auth.authenticate(
            signed_request(
                key.api_key, secret=key.secret, timestamp=NOW, ip=ip, params=[("ip", ip)]
            ),
            NOW,
        )
    exc = refused(
        sandex, signed_request(key.api_key, secret=key.secret, timestamp=NOW, ip="127.0.0.2")
    )
    assert isinstance(exc, IpNotAllowed)
    assert exc.code == -2015
    assert "127.0.0.2" in exc.msg and "not allowed" in exc.msg
    assert last_event(sandex) == ("auth.denied", "IP 127.0.0.2 not in allowlist")


def test_step6_a_bad_signature_from_a_foreign_ip_reports_the_signature(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    key = make_key(sandex, user, now=NOW, ips=("10.0.0.1",))
    exc = refused(
        sandex, signed_request(key.api_key, secret="wrong", timestamp=NOW, ip="192.0.2.1")
    )
    assert exc.code == -1022  # no IP oracle for someone who cannot sign


# -- step 7: permission, mode and trading lapse (-2015, ccxt PermissionDenied) --------


def test_step7_a_missing_permission_is_named(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    key = make_key(sandex, user, now=NOW)  # READ only
    request = signed_request(
        key.api_key,
        secret=key.secret,
        timestamp=NOW,
        method="POST",
        path="/api/v3/order",
        in_body=True,
    )
    exc = refused(sandex, request, access=PLACE_SPOT)
    assert isinstance(exc, PermissionMissing)
    assert exc.code == -2015
    assert "has no operation privilege" in exc.msg  # ccxt raises PermissionDenied on this
    assert "SPOT_TRADE" in exc.msg
    event, reason = last_event(sandex)
    assert event == "auth.denied" and "SPOT_TRADE" in (reason or "")


def test_step7_a_frozen_key_reads_and_cancels_but_cannot_trade(sandex: Sandex, hmac_key) -> None:
    sandex.keys.freeze(parse_key_ref(hmac_key.key.prefix), now=NOW, actor=OPERATOR)
    for n, access in enumerate((Access.READ, CANCEL_SPOT)):
        sandex.auth.authenticate(
            signed_request(
                hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW, params=[("n", str(n))]
            ),
            NOW,
            access,
        )
    exc = refused(
        sandex,
        signed_request(
            hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW, params=[("n", "3")]
        ),
        access=PLACE_SPOT,
    )
    assert "FROZEN" in exc.msg and "has no operation privilege" in exc.msg


def test_step7_trading_lapses_on_a_key_without_an_allowlist(sandex: Sandex, hmac_key) -> None:
    lapse = hmac_key.key.trade_lapses_at
    assert lapse == NOW + 30 * DAY_MS
    before = lapse - 1
    sandex.auth.authenticate(
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=before),
        before,
        PLACE_SPOT,
    )
    exc = refused(
        sandex,
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=lapse),
        now=lapse,
        access=PLACE_SPOT,
    )
    assert "lapsed" in exc.msg and "allowlist" in exc.msg
    # cancels still work, so a bot can pull its orders
    sandex.auth.authenticate(
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=lapse + 1),
        lapse + 1,
        CANCEL_SPOT,
    )


def test_step7_withdraw_needs_its_permission(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    key = make_key(
        sandex, user, now=NOW, ips=("127.0.0.1",), permissions=Permission.READ | Permission.WITHDRAW
    )
    sandex.auth.authenticate(
        signed_request(key.api_key, secret=key.secret, timestamp=NOW), NOW, WITHDRAW
    )
    other = make_key(
        sandex,
        user,
        now=NOW,
        label="trader",
        ips=("127.0.0.1",),
        permissions=Permission.READ | Permission.SPOT_TRADE,
    )
    exc = refused(
        sandex, signed_request(other.api_key, secret=other.secret, timestamp=NOW), access=WITHDRAW
    )
    assert "WITHDRAW" in exc.msg


# -- the cache: changes take effect before the call that made them returns -----------


def test_revocation_takes_effect_before_revoke_returns(sandex: Sandex, hmac_key) -> None:
    sandex.auth.authenticate(
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW), NOW
    )
    assert sandex.cache.get(hmac_key.api_key) is not None
    sandex.keys.revoke(parse_key_ref(hmac_key.key.prefix), now=NOW, actor=OPERATOR)
    exc = refused(
        sandex,
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW + 1),
        now=NOW + 1,
    )
    assert exc.code == -2015


def test_narrowing_permissions_takes_effect_at_once(sandex: Sandex, hmac_key) -> None:
    sandex.auth.authenticate(
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW), NOW, PLACE_SPOT
    )
    sandex.keys.update(
        parse_key_ref(hmac_key.key.prefix),
        KeyPatch(permissions=Permission.READ),
        now=NOW,
        actor=OPERATOR,
    )
    exc = refused(
        sandex,
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW + 1),
        now=NOW + 1,
        access=PLACE_SPOT,
    )
    assert "SPOT_TRADE" in exc.msg


def test_rotation_keeps_the_old_key_alive_for_the_grace_period_only(
    sandex: Sandex, hmac_key
) -> None:
    sandex.auth.authenticate(
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW), NOW
    )
    new = sandex.keys.rotate(
        parse_key_ref(hmac_key.key.prefix), now=NOW, actor=OPERATOR, grace_ms=60_000
    )
    for t in (NOW + 1, NOW + 59_999):
        sandex.auth.authenticate(
            signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=t), t
        )
        sandex.auth.authenticate(signed_request(new.api_key, secret=new.secret, timestamp=t), t)
    exc = refused(
        sandex,
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW + 60_000),
        now=NOW + 60_000,
    )
    assert exc.code == -2015
    assert last_event(sandex) == ("auth.denied", "key was rotated and its grace period has ended")
    sandex.auth.authenticate(
        signed_request(new.api_key, secret=new.secret, timestamp=NOW + 60_001), NOW + 60_001
    )


def test_a_load_that_races_a_revocation_is_not_cached(sandex: Sandex, hmac_key) -> None:
    """A key read from storage just before another thread revoked it must not stay cached
    as alive: the revocation's invalidation wins over the slower read."""
    original = sandex.auth.entry_for

    def revoke_while_loading(key):  # runs between the database read and the cache write
        entry = original(key)
        sandex.keys.revoke(parse_key_ref(hmac_key.key.prefix), now=NOW, actor=OPERATOR)
        return entry

    sandex.auth.entry_for = revoke_while_loading  # type: ignore[method-assign]
    sandex.auth.authenticate(
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW), NOW
    )
    sandex.auth.entry_for = original  # type: ignore[method-assign]
    assert sandex.cache.get(hmac_key.api_key) is None
    exc = refused(
        sandex,
        signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=NOW + 1),
        now=NOW + 1,
    )
    assert exc.code == -2015


def test_last_use_is_kept_to_ten_seconds_and_at_once_for_a_new_ip(sandex: Sandex, hmac_key) -> None:
    def use(t: int, ip: str) -> tuple[int | None, str | None]:
        sandex.auth.authenticate(
            signed_request(hmac_key.api_key, secret=hmac_key.secret, timestamp=t, ip=ip), t
        )
        sandex.activity.flush()
        key = sandex.keys.find(parse_key_ref(hmac_key.key.prefix), actor=OPERATOR)
        return key.last_used_at, key.last_used_ip

    assert use(NOW, "10.0.0.1") == (NOW, "10.0.0.1")
    assert use(NOW + 5_000, "10.0.0.1") == (NOW, "10.0.0.1")  # within the resolution
    assert use(NOW + 6_000, "10.0.0.2") == (NOW + 6_000, "10.0.0.2")  # a new IP: at once
    assert use(NOW + 16_000, "10.0.0.2") == (NOW + 16_000, "10.0.0.2")

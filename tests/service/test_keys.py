"""The key lifecycle through the service layer, against real storage."""

from __future__ import annotations

import pytest

from conftest import NOW
from sandex.accounts import InvalidCode
from sandex.bootstrap import Sandex
from sandex.keys import (
    InvalidExpiry,
    InvalidLabel,
    InvalidPermissions,
    InvalidPublicKey,
    IpAllowlist,
    KeyKind,
    KeySettings,
    KeyStatus,
    Mode,
    Permission,
    is_api_key,
    is_secret,
)
from sandex.keys.model import DAY_MS, HOUR_MS
from sandex.keys.reference import KeyById, parse_key_ref
from sandex.service import (
    Actor,
    Conflict,
    InvalidRequest,
    KeyPatch,
    LimitReached,
    NotFound,
    SecondFactorRequired,
)
from support import OPERATOR, enable_totp, make_key, make_user, next_step, totp_code

TRADE = Permission.READ | Permission.SPOT_TRADE


def test_create_returns_the_secret_once_and_stores_neither(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    issued = make_key(sandex, user, now=NOW)
    assert is_api_key(issued.api_key) and issued.secret is not None and is_secret(issued.secret)
    stored = sandex.keys.find(parse_key_ref(issued.key.prefix), actor=OPERATOR)
    assert stored.prefix == issued.api_key[:12]
    assert stored.lookup_hash != issued.api_key.encode()
    assert stored.secret_envelope is not None
    assert issued.secret.encode() not in stored.secret_envelope
    # lookups by the full key, its id or its prefix all find it
    for ref in (issued.api_key, str(stored.id), stored.prefix[:9]):
        assert sandex.keys.find(parse_key_ref(ref), actor=OPERATOR).id == stored.id


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (KeySettings(""), InvalidLabel, "1 to 64"),
        (KeySettings("x" * 65), InvalidLabel, "1 to 64"),
        (KeySettings("bad\x07label"), InvalidLabel, "printable"),
        (
            KeySettings("w", Permission.READ | Permission.WITHDRAW),
            InvalidPermissions,
            "WITHDRAW requires an IP allowlist",
        ),
        (
            KeySettings("t", Permission.READ | Permission.INTERNAL_TRANSFER),
            InvalidPermissions,
            "INTERNAL_TRANSFER requires an IP allowlist",
        ),
        (KeySettings("e", expires_at=NOW - 1), InvalidExpiry, "in the past"),
    ],
)
def test_invalid_settings_are_refused_and_nothing_is_written(
    sandex: Sandex,
    spec,
    error,
    message,
) -> None:
    user = make_user(sandex, now=NOW)
    before = sandex.audit.verify().checked
    with pytest.raises(error, match=message):
        sandex.keys.create(user.id, spec, now=NOW, actor=OPERATOR)
    assert sandex.keys.for_user(user.id, actor=OPERATOR) == []
    assert sandex.audit.verify().checked == before


def test_labels_are_unique_among_a_users_live_keys(sandex: Sandex) -> None:
    alice = make_user(sandex, now=NOW)
    bob = make_user(sandex, "bob@example.com", now=NOW)
    first = make_key(sandex, alice, now=NOW, label="bot")
    with pytest.raises(Conflict, match="already has an active key labelled 'bot'"):
        make_key(sandex, alice, now=NOW, label=" bot ")
    make_key(sandex, bob, now=NOW, label="bot")  # another user may use it
    sandex.keys.revoke(parse_key_ref(first.key.prefix), now=NOW, actor=OPERATOR)
    make_key(sandex, alice, now=NOW, label="bot")  # a revoked key frees its label


def test_at_most_30_active_keys(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    keys = [make_key(sandex, user, now=NOW, label=f"k{n}") for n in range(30)]
    with pytest.raises(LimitReached, match="limit is 30"):
        make_key(sandex, user, now=NOW, label="one too many")
    sandex.keys.revoke(parse_key_ref(keys[0].key.prefix), now=NOW, actor=OPERATOR)
    make_key(sandex, user, now=NOW, label="one too many")


def test_public_keys_must_be_ed25519_or_rsa_2048(sandex: Sandex) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    user = make_user(sandex, now=NOW)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    for key, message in ((small, "at least 2048"), (p256, "Ed25519 or RSA")):
        pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        with pytest.raises(InvalidPublicKey, match=message):
            make_key(sandex, user, now=NOW, kind=KeyKind.RSA, public_key_pem=pem)
    with pytest.raises(InvalidPublicKey, match="not a PEM public key"):
        make_key(sandex, user, now=NOW, kind=KeyKind.ED25519, public_key_pem="hello")
    assert sandex.keys.for_user(user.id, actor=OPERATOR) == []


# -- 2FA for users acting on their own keys ---------------------------------------------


def test_a_user_needs_2fa_for_anything_beyond_read(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    me = Actor.user(user.id, "203.0.113.5")
    sandex.keys.create(user.id, KeySettings("reader"), now=NOW, actor=me)  # READ needs no 2FA
    with pytest.raises(SecondFactorRequired, match="enable 2FA"):
        sandex.keys.create(user.id, KeySettings("trader", TRADE), now=NOW, actor=me)
    secret, _ = enable_totp(sandex, user, now=NOW)
    with pytest.raises(SecondFactorRequired, match="2FA code is required"):
        sandex.keys.create(user.id, KeySettings("trader", TRADE), now=NOW, actor=me)
    t = next_step(NOW)
    with_code = Actor.user(user.id, "203.0.113.5", totp_code(secret, t))
    issued = sandex.keys.create(user.id, KeySettings("trader", TRADE), now=t, actor=with_code)
    assert Permission.SPOT_TRADE in issued.key.settings.permissions
    # the same code cannot authorise a second change
    with pytest.raises(InvalidCode, match="already used"):
        sandex.keys.create(user.id, KeySettings("trader2", TRADE), now=t + 1, actor=with_code)


def test_widening_needs_2fa_and_narrowing_does_not(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    secret, _ = enable_totp(sandex, user, now=NOW)
    key = make_key(sandex, user, now=NOW, permissions=TRADE, ips=("10.0.0.0/24",))
    me = Actor.user(user.id, "203.0.113.5")
    narrowing = [
        KeyPatch(permissions=Permission.READ),
        KeyPatch(allowlist=IpAllowlist.parse(["10.0.0.7"])),
        KeyPatch(expires_at=NOW + DAY_MS),
        KeyPatch(label="renamed"),
        KeyPatch(mode=Mode.CANCEL_ONLY),
    ]
    for patch in narrowing:
        sandex.keys.update(parse_key_ref(key.key.prefix), patch, now=NOW, actor=me)
    widening = [
        KeyPatch(permissions=TRADE),
        KeyPatch(allowlist=IpAllowlist.parse(["10.0.0.7", "10.0.0.8"])),
        KeyPatch(allowlist=IpAllowlist()),
        KeyPatch(expires_at=None),
        KeyPatch(mode=Mode.NORMAL),
    ]
    t = NOW
    for patch in widening:
        with pytest.raises(SecondFactorRequired):
            sandex.keys.update(parse_key_ref(key.key.prefix), patch, now=t, actor=me)
        t = next_step(t)
        code = Actor.user(user.id, "203.0.113.5", totp_code(secret, t))
        sandex.keys.update(parse_key_ref(key.key.prefix), patch, now=t, actor=code)
    final = sandex.keys.find(parse_key_ref(key.key.prefix), actor=OPERATOR)
    assert final.settings.permissions == TRADE and not final.settings.allowlist


def test_a_user_only_ever_sees_or_touches_their_own_keys(sandex: Sandex) -> None:
    alice = make_user(sandex, now=NOW)
    bob = make_user(sandex, "bob@example.com", now=NOW)
    key = make_key(sandex, alice, now=NOW)
    mallory = Actor.user(bob.id, "203.0.113.66")
    for ref in (key.api_key, str(key.key.id), key.key.prefix):
        with pytest.raises(NotFound):
            sandex.keys.find(parse_key_ref(ref), actor=mallory)
        with pytest.raises(NotFound):
            sandex.keys.revoke(parse_key_ref(ref), now=NOW, actor=mallory)
    with pytest.raises(NotFound):
        sandex.keys.for_user(alice.id, actor=mallory)
    assert (
        sandex.keys.find(parse_key_ref(key.key.prefix), actor=OPERATOR).status(NOW)
        is KeyStatus.ACTIVE
    )


@pytest.mark.parametrize("key_id", [2**31, 2**63 - 1, 0])
def test_a_key_id_no_column_can_hold_is_not_found(sandex: Sandex, key_id: int) -> None:
    # Finding 7: on PostgreSQL, `sandex keys show 2147483648` overflowed the integer column.
    make_key(sandex, make_user(sandex, now=NOW), now=NOW)
    with pytest.raises(NotFound):
        sandex.keys.find(KeyById(key_id), actor=OPERATOR)
    with pytest.raises(NotFound):
        sandex.keys.revoke(KeyById(key_id), now=NOW, actor=OPERATOR)


# -- rotation --------------------------------------------------------------------------


def test_rotation_issues_a_new_secret_and_keeps_settings(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    old = make_key(sandex, user, now=NOW, permissions=TRADE, ips=("10.0.0.1",))
    new = sandex.keys.rotate(parse_key_ref(old.key.prefix), now=NOW, actor=OPERATOR)
    assert new.api_key != old.api_key and new.secret != old.secret
    assert new.key.settings == old.key.settings
    assert new.key.rotated_from == old.key.id
    rotated = sandex.keys.find(parse_key_ref(str(old.key.id)), actor=OPERATOR)
    assert rotated.rotated_to == new.key.id
    assert rotated.grace_ends_at == NOW + 24 * HOUR_MS  # the default grace
    assert rotated.status(NOW) is KeyStatus.ROTATED
    assert rotated.status(NOW + 24 * HOUR_MS) is KeyStatus.REVOKED
    with pytest.raises(Conflict, match=r"rotate|successor"):
        sandex.keys.rotate(parse_key_ref(old.key.prefix), now=NOW, actor=OPERATOR)


def test_rotation_never_extends_the_original_expiry(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    old = make_key(sandex, user, now=NOW, expires_at=NOW + 2 * HOUR_MS)
    new = sandex.keys.rotate(
        parse_key_ref(old.key.prefix), now=NOW, actor=OPERATOR, grace_ms=7 * DAY_MS
    )
    assert new.key.settings.expires_at == NOW + 2 * HOUR_MS
    assert (
        sandex.keys.find(parse_key_ref(str(old.key.id)), actor=OPERATOR).grace_ends_at
        == NOW + 2 * HOUR_MS
    )


def test_rotation_grace_is_at_most_seven_days(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    old = make_key(sandex, user, now=NOW)
    with pytest.raises(InvalidRequest, match="168 h"):
        sandex.keys.rotate(
            parse_key_ref(old.key.prefix), now=NOW, actor=OPERATOR, grace_ms=7 * DAY_MS + 1
        )


def test_rotating_a_public_key_needs_the_new_public_key(sandex: Sandex) -> None:
    from sandex.keys import generate_ed25519_pair

    user = make_user(sandex, now=NOW)
    _, pem = generate_ed25519_pair()
    old = make_key(sandex, user, now=NOW, kind=KeyKind.ED25519, public_key_pem=pem)
    with pytest.raises(InvalidRequest, match="new public key"):
        sandex.keys.rotate(parse_key_ref(old.key.prefix), now=NOW, actor=OPERATOR)
    _, pem2 = generate_ed25519_pair()
    new = sandex.keys.rotate(
        parse_key_ref(old.key.prefix), now=NOW, actor=OPERATOR, public_key_pem=pem2
    )
    assert new.secret is None and new.key.public_key_pem == pem2


def test_a_user_needs_2fa_to_rotate(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    secret, _ = enable_totp(sandex, user, now=NOW)
    key = make_key(sandex, user, now=NOW)
    with pytest.raises(SecondFactorRequired):
        sandex.keys.rotate(
            parse_key_ref(key.key.prefix), now=NOW, actor=Actor.user(user.id, "203.0.113.5")
        )
    t = next_step(NOW)
    sandex.keys.rotate(
        parse_key_ref(key.key.prefix),
        now=t,
        actor=Actor.user(user.id, "203.0.113.5", totp_code(secret, t)),
    )


# -- freeze, revoke, lapse ------------------------------------------------------------


def test_freeze_and_unfreeze(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    secret, _ = enable_totp(sandex, user, now=NOW)
    key = make_key(sandex, user, now=NOW, permissions=TRADE)
    me = Actor.user(user.id, "203.0.113.5")
    frozen = sandex.keys.freeze(
        parse_key_ref(key.key.prefix), now=NOW, actor=me
    )  # freezing needs no 2FA
    assert frozen.status(NOW) is KeyStatus.FROZEN
    with pytest.raises(Conflict, match="already frozen"):
        sandex.keys.freeze(parse_key_ref(key.key.prefix), now=NOW, actor=me)
    with pytest.raises(SecondFactorRequired):
        sandex.keys.unfreeze(parse_key_ref(key.key.prefix), now=NOW, actor=me)
    t = next_step(NOW)
    thawed = sandex.keys.unfreeze(
        parse_key_ref(key.key.prefix),
        now=t,
        actor=Actor.user(user.id, "203.0.113.5", totp_code(secret, t)),
    )
    assert thawed.status(t) is KeyStatus.ACTIVE


def test_a_revoked_key_cannot_be_changed(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    key = make_key(sandex, user, now=NOW)
    sandex.keys.revoke(parse_key_ref(key.key.prefix), now=NOW, actor=OPERATOR)
    with pytest.raises(Conflict, match="already revoked"):
        sandex.keys.revoke(parse_key_ref(key.key.prefix), now=NOW, actor=OPERATOR)
    with pytest.raises(Conflict, match="revoked"):
        sandex.keys.update(
            parse_key_ref(key.key.prefix), KeyPatch(label="x"), now=NOW, actor=OPERATOR
        )
    with pytest.raises(Conflict, match="revoked"):
        sandex.keys.rotate(parse_key_ref(key.key.prefix), now=NOW, actor=OPERATOR)


def test_trading_lapse_follows_the_allowlist(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    key = make_key(sandex, user, now=NOW, permissions=TRADE)
    assert key.key.trade_lapses_at == NOW + 30 * DAY_MS
    restricted = sandex.keys.update(
        parse_key_ref(key.key.prefix),
        KeyPatch(allowlist=IpAllowlist.parse(["10.0.0.1"])),
        now=NOW,
        actor=OPERATOR,
    )
    assert restricted.trade_lapses_at is None
    again = sandex.keys.update(
        parse_key_ref(key.key.prefix),
        KeyPatch(allowlist=IpAllowlist()),
        now=NOW + DAY_MS,
        actor=OPERATOR,
    )
    assert again.trade_lapses_at == NOW + 31 * DAY_MS
    reader = make_key(sandex, user, now=NOW, label="reader")
    assert reader.key.trade_lapses_at is None  # READ-only keys never lapse


def test_changes_are_audited_with_before_and_after(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    key = make_key(sandex, user, now=NOW)
    sandex.keys.update(
        parse_key_ref(key.key.prefix), KeyPatch(label="renamed"), now=NOW, actor=OPERATOR
    )
    sandex.keys.freeze(parse_key_ref(key.key.prefix), now=NOW, actor=OPERATOR)
    sandex.keys.revoke(parse_key_ref(key.key.prefix), now=NOW, actor=OPERATOR)
    events = [r.event for r in sandex.audit.tail(limit=10, key_prefix=key.key.prefix)]
    assert [e.event for e in events] == ["key.created", "key.updated", "key.frozen", "key.revoked"]
    assert '"label":"renamed"' in (events[1].details or "")
    assert all(e.actor == "operator" and e.ip == "cli" for e in events)
    with pytest.raises(InvalidRequest, match="nothing to change"):
        sandex.keys.update(parse_key_ref(key.key.prefix), KeyPatch(), now=NOW, actor=OPERATOR)

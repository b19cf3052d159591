"""The API key entity (status over time) and the settings a user chooses."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from sandex.keys.allowlist import IpAllowlist
from sandex.keys.errors import InvalidExpiry, InvalidLabel, InvalidPermissions
from sandex.keys.material import KeyKind
from sandex.keys.model import (
    DAY_MS,
    HOUR_MS,
    MAX_LABEL_LENGTH,
    ApiKey,
    KeySettings,
    KeyStatus,
    trade_lapse,
    validate_label,
)
from sandex.keys.permissions import Permission
from sandex.keys.policy import Mode, RiskPolicy

P = Permission
T0 = 1_700_000_000_000
ALLOW = IpAllowlist.parse(["203.0.113.7"])


def make_key(**changes) -> ApiKey:
    settings = changes.pop("settings", KeySettings("bot"))
    key = ApiKey(
        id=1,
        user_id=7,
        kind=KeyKind.HMAC_SHA256,
        prefix="sdxkABCDEFGH",
        lookup_hash=bytes(32),
        settings=settings,
        created_at=T0,
        updated_at=T0,
        secret_envelope=b"sealed",
    )
    return dataclasses.replace(key, **changes)


# -- status over time ---------------------------------------------------------------------


def test_plain_key_is_active_forever():
    key = make_key()
    assert key.dies_at is None
    for now in (T0, T0 + 10 * 365 * DAY_MS):
        assert key.status(now) is KeyStatus.ACTIVE
        assert key.counts_toward_limit(now)


def test_frozen_via_mode():
    key = make_key(settings=KeySettings("bot", policy=RiskPolicy(mode=Mode.FROZEN)))
    assert key.status(T0) is KeyStatus.FROZEN
    assert key.counts_toward_limit(T0)


def test_cancel_only_is_still_active():
    key = make_key(settings=KeySettings("bot", policy=RiskPolicy(mode=Mode.CANCEL_ONLY)))
    assert key.status(T0) is KeyStatus.ACTIVE


def test_expiry():
    expires = T0 + DAY_MS
    key = make_key(settings=KeySettings("bot", expires_at=expires))
    assert key.dies_at == expires
    assert key.status(expires - 1) is KeyStatus.ACTIVE
    assert key.status(expires) is KeyStatus.EXPIRED
    assert key.status(expires + DAY_MS) is KeyStatus.EXPIRED
    assert not key.counts_toward_limit(expires)


def test_frozen_key_still_expires():
    expires = T0 + DAY_MS
    settings = KeySettings("bot", expires_at=expires, policy=RiskPolicy(mode=Mode.FROZEN))
    key = make_key(settings=settings)
    assert key.status(expires - 1) is KeyStatus.FROZEN
    assert key.status(expires) is KeyStatus.EXPIRED


def test_rotated_during_grace_then_revoked():
    grace_end = T0 + 24 * HOUR_MS
    key = make_key(rotated_to=2, grace_ends_at=grace_end)
    assert key.dies_at == grace_end
    assert key.status(T0) is KeyStatus.ROTATED
    assert key.status(grace_end - 1) is KeyStatus.ROTATED
    assert not key.counts_toward_limit(T0)  # a key being rotated out does not count
    assert key.status(grace_end) is KeyStatus.REVOKED
    assert not key.counts_toward_limit(grace_end)


def test_rotated_frozen_key_shows_rotated():
    key = make_key(
        settings=KeySettings("bot", policy=RiskPolicy(mode=Mode.FROZEN)),
        rotated_to=2,
        grace_ends_at=T0 + HOUR_MS,
    )
    assert key.status(T0) is KeyStatus.ROTATED


def test_revoked_at():
    key = make_key(revoked_at=T0 + 5)
    assert key.status(T0 + 4) is KeyStatus.ACTIVE
    assert key.status(T0 + 5) is KeyStatus.REVOKED
    assert key.status(T0 + 6) is KeyStatus.REVOKED
    assert not key.counts_toward_limit(T0 + 5)


def test_revocation_beats_everything():
    key = make_key(
        settings=KeySettings("bot", expires_at=T0 + 10, policy=RiskPolicy(mode=Mode.FROZEN)),
        rotated_to=2,
        grace_ends_at=T0 + 20,
        revoked_at=T0,
    )
    assert key.status(T0) is KeyStatus.REVOKED
    assert key.status(T0 + 100) is KeyStatus.REVOKED


@pytest.mark.parametrize(
    ("expires", "grace", "dies"),
    [
        (T0 + 10, T0 + 20, T0 + 10),
        (T0 + 30, T0 + 20, T0 + 20),
        (None, T0 + 20, T0 + 20),
        (T0 + 10, None, T0 + 10),
        (None, None, None),
    ],
)
def test_dies_at_is_the_earliest_end(expires, grace, dies):
    key = make_key(settings=KeySettings("bot", expires_at=expires), grace_ends_at=grace)
    assert key.dies_at == dies


def test_rotated_key_dies_at_expiry_if_it_comes_before_grace_end():
    key = make_key(
        settings=KeySettings("bot", expires_at=T0 + 10), rotated_to=2, grace_ends_at=T0 + 20
    )
    assert key.status(T0 + 9) is KeyStatus.ROTATED
    assert key.status(T0 + 10) is KeyStatus.EXPIRED


def test_key_repr_hides_the_sealed_secret():
    assert "sealed" not in repr(make_key(secret_envelope=b"sealed-bytes-XYZ"))


# -- labels and validation ----------------------------------------------------------------


def test_validated_trims_label_and_adds_read():
    settings = KeySettings("  trading bot  ", permissions=P.SPOT_TRADE).validated(now=T0)
    assert settings.label == "trading bot"
    assert settings.permissions == P.READ | P.SPOT_TRADE


@pytest.mark.parametrize("label", ["a", "x" * MAX_LABEL_LENGTH, "bot #1 (ETH) — prod", "ключ"])
def test_valid_labels(label):
    assert validate_label(label) == label
    assert KeySettings(label).validated(now=T0).label == label


@pytest.mark.parametrize(
    "label", ["", "   ", "x" * (MAX_LABEL_LENGTH + 1), "a\nb", "tab\there", "bell\x07", "nul\x00"]
)
def test_invalid_labels(label):
    with pytest.raises(InvalidLabel):
        validate_label(label)
    with pytest.raises(InvalidLabel):
        KeySettings(label).validated(now=T0)


def test_label_length_counts_after_trimming():
    assert validate_label(" " + "x" * 64 + " ") == "x" * 64


def test_expiry_must_be_in_the_future():
    KeySettings("bot", expires_at=T0 + 1).validated(now=T0)
    for past in (T0, T0 - 1, 0):
        with pytest.raises(InvalidExpiry):
            KeySettings("bot", expires_at=past).validated(now=T0)


@pytest.mark.parametrize("perm", [P.WITHDRAW, P.INTERNAL_TRANSFER])
def test_withdraw_and_transfer_need_an_allowlist(perm):
    with pytest.raises(InvalidPermissions, match=perm.name):
        KeySettings("bot", permissions=P.READ | perm).validated(now=T0)
    ok = KeySettings("bot", permissions=P.READ | perm, allowlist=ALLOW).validated(now=T0)
    assert perm in ok.permissions


def test_validated_keeps_everything_else():
    policy = RiskPolicy(max_notional=Decimal(5), mode=Mode.CANCEL_ONLY)
    settings = KeySettings("bot", P.READ, ALLOW, T0 + DAY_MS, policy).validated(now=T0)
    assert settings.allowlist == ALLOW
    assert settings.expires_at == T0 + DAY_MS
    assert settings.policy == policy


# -- widened_in: what needs a second factor -----------------------------------------------

BASE = KeySettings(
    "bot",
    permissions=P.READ | P.SPOT_TRADE,
    allowlist=IpAllowlist.parse(["10.0.0.0/24"]),
    expires_at=T0 + 30 * DAY_MS,
    policy=RiskPolicy(symbols=frozenset({"BTCUSDT"}), max_notional=Decimal(100)),
)


def changed(**kwargs) -> KeySettings:
    return dataclasses.replace(BASE, **kwargs)


def test_same_settings_are_not_wider():
    assert BASE.widened_in(BASE) == []
    assert BASE.widened_in(changed(label="renamed")) == []


@pytest.mark.parametrize(
    ("new", "what"),
    [
        (changed(permissions=P.READ | P.SPOT_TRADE | P.FUTURES_TRADE), "permissions FUTURES_TRADE"),
        (changed(permissions=P.READ | P.DEPOSIT), "permissions DEPOSIT"),
        (changed(allowlist=IpAllowlist.parse(["10.0.0.0/16"])), "IP allowlist"),
        (changed(allowlist=IpAllowlist.parse(["10.0.0.0/24", "10.9.9.9"])), "IP allowlist"),
        (changed(allowlist=IpAllowlist()), "IP allowlist"),
        (changed(expires_at=T0 + 31 * DAY_MS), "expiry"),
        (changed(expires_at=None), "expiry"),
        (changed(policy=RiskPolicy(max_notional=Decimal(100))), "symbol allowlist"),
        (changed(policy=RiskPolicy(symbols=frozenset({"BTCUSDT"}))), "max notional"),
        (
            changed(policy=RiskPolicy(symbols=frozenset({"BTCUSDT"}), max_notional=Decimal(101))),
            "max notional",
        ),
    ],
)
def test_each_widening_is_reported(new, what):
    assert BASE.widened_in(new) == [what]


def test_several_permissions_added_are_named_together():
    new = changed(permissions=P.READ | P.SPOT_TRADE | P.FUTURES_TRADE | P.WITHDRAW)
    assert BASE.widened_in(new) == ["permissions FUTURES_TRADE,WITHDRAW"]


def test_unfreezing_is_widening():
    frozen = changed(policy=dataclasses.replace(BASE.policy, mode=Mode.FROZEN))
    assert frozen.widened_in(BASE) == ["mode"]


@pytest.mark.parametrize(
    "new",
    [
        changed(permissions=P.READ),
        changed(allowlist=IpAllowlist.parse(["10.0.0.7"])),
        changed(expires_at=T0 + DAY_MS),
        changed(policy=dataclasses.replace(BASE.policy, max_notional=Decimal(50))),
        changed(policy=dataclasses.replace(BASE.policy, max_open_orders=5)),
        changed(policy=dataclasses.replace(BASE.policy, mode=Mode.FROZEN)),
    ],
)
def test_narrowing_needs_no_second_factor(new):
    assert BASE.widened_in(new) == []


def test_adding_restrictions_to_an_unrestricted_key_is_narrowing():
    loose = KeySettings("bot", permissions=P.READ | P.SPOT_TRADE)
    assert loose.widened_in(BASE) == []


def test_everything_widened_at_once():
    new = KeySettings("bot", permissions=P.READ | P.SPOT_TRADE | P.FUTURES_TRADE)
    assert BASE.widened_in(new) == [
        "permissions FUTURES_TRADE",
        "IP allowlist",
        "expiry",
        "symbol allowlist",
        "max notional",
    ]


# -- trade_lapse --------------------------------------------------------------------------


def test_trade_lapse_schedules_for_trading_keys_without_allowlist():
    assert trade_lapse(P.READ | P.SPOT_TRADE, IpAllowlist(), now=T0, days=30, current=None) == (
        T0 + 30 * DAY_MS
    )
    assert trade_lapse(P.READ | P.FUTURES_TRADE, IpAllowlist(), now=T0, days=1, current=None) == (
        T0 + DAY_MS
    )


def test_trade_lapse_keeps_an_existing_deadline():
    assert trade_lapse(P.READ | P.SPOT_TRADE, IpAllowlist(), now=T0, days=30, current=T0 - 5) == (
        T0 - 5
    )


@pytest.mark.parametrize(
    ("perms", "allowlist"),
    [
        (P.READ, IpAllowlist()),
        (P.READ | P.DEPOSIT, IpAllowlist()),
        (P.READ | P.SPOT_TRADE, ALLOW),
        (P.READ | P.SPOT_TRADE | P.FUTURES_TRADE, ALLOW),
    ],
)
def test_no_lapse_without_trading_or_with_allowlist(perms, allowlist):
    assert trade_lapse(perms, allowlist, now=T0, days=30, current=None) is None
    # an allowlist (or dropping trading) also clears a scheduled lapse
    assert trade_lapse(perms, allowlist, now=T0, days=30, current=T0 + 1) is None

"""Permissions: parsing, names, and the allowlist rule."""

from __future__ import annotations

import pytest

from sandex.keys.errors import InvalidKeySpec, InvalidPermissions
from sandex.keys.permissions import (
    NEEDS_ALLOWLIST,
    TRADING,
    Permission,
    check_permission_rules,
    parse_permissions,
    permission_names,
)

P = Permission


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", P.READ),
        ("read", P.READ),
        ("spot_trade", P.READ | P.SPOT_TRADE),
        ("SPOT_TRADE", P.READ | P.SPOT_TRADE),
        ("Spot_Trade, futures_TRADE", P.READ | P.SPOT_TRADE | P.FUTURES_TRADE),
        (" withdraw ,deposit,, internal_transfer ", P.READ | NEEDS_ALLOWLIST | P.DEPOSIT),
        ("read,read,spot_trade,SPOT_TRADE", P.READ | P.SPOT_TRADE),
    ],
)
def test_parse_permissions_from_text(text, expected):
    assert parse_permissions(text) == expected


def test_parse_permissions_from_list_always_includes_read():
    assert parse_permissions([]) == P.READ
    assert parse_permissions(["deposit"]) == P.READ | P.DEPOSIT
    assert P.READ in parse_permissions(["Futures_Trade"])


@pytest.mark.parametrize(
    ("text", "bad"),
    [("trade", "trade"), ("read,margin", "margin"), ("spot-trade", "spot-trade")],
)
def test_parse_permissions_rejects_unknown_names_naming_them(text, bad):
    with pytest.raises(InvalidPermissions) as info:
        parse_permissions(text)
    message = str(info.value)
    assert bad in message
    assert "spot_trade" in message.lower()  # lists what is known
    assert isinstance(info.value, InvalidKeySpec)


def test_parse_permissions_reports_every_unknown_name():
    with pytest.raises(InvalidPermissions) as info:
        parse_permissions(["foo", "read", "Bar"])
    assert "foo" in str(info.value)
    assert "Bar" in str(info.value)


@pytest.mark.parametrize("perm", [P.WITHDRAW, P.INTERNAL_TRANSFER])
def test_needs_allowlist_permissions_refused_without_allowlist(perm):
    with pytest.raises(InvalidPermissions) as info:
        check_permission_rules(P.READ | perm, has_allowlist=False)
    assert perm.name in str(info.value)
    assert "allowlist" in str(info.value)
    check_permission_rules(P.READ | perm, has_allowlist=True)


def test_both_allowlist_permissions_named_together():
    with pytest.raises(InvalidPermissions) as info:
        check_permission_rules(P.READ | NEEDS_ALLOWLIST | P.SPOT_TRADE, has_allowlist=False)
    assert "WITHDRAW" in str(info.value)
    assert "INTERNAL_TRANSFER" in str(info.value)
    assert "SPOT_TRADE" not in str(info.value)


@pytest.mark.parametrize("perm", [P.READ, P.SPOT_TRADE, P.FUTURES_TRADE, P.DEPOSIT])
def test_other_permissions_need_no_allowlist(perm):
    check_permission_rules(P.READ | perm, has_allowlist=False)


def test_read_cannot_be_removed():
    with pytest.raises(InvalidPermissions, match="READ"):
        check_permission_rules(P.SPOT_TRADE, has_allowlist=True)


def test_permission_names_in_declaration_order():
    every = P.INTERNAL_TRANSFER | P.DEPOSIT | P.WITHDRAW | P.FUTURES_TRADE | P.SPOT_TRADE | P.READ
    assert permission_names(every) == [
        "READ",
        "SPOT_TRADE",
        "FUTURES_TRADE",
        "WITHDRAW",
        "DEPOSIT",
        "INTERNAL_TRANSFER",
    ]
    assert permission_names(P.DEPOSIT | P.READ) == ["READ", "DEPOSIT"]
    assert permission_names(P(0)) == []


def test_names_round_trip_through_parse():
    perms = P.READ | P.FUTURES_TRADE | P.WITHDRAW
    assert parse_permissions(",".join(permission_names(perms))) == perms


def test_groups():
    assert TRADING == P.SPOT_TRADE | P.FUTURES_TRADE
    assert NEEDS_ALLOWLIST == P.WITHDRAW | P.INTERNAL_TRANSFER

"""check_access: permissions, modes and the trading lapse."""

from __future__ import annotations

import pytest

from sandex.keys.access import Access, Operation, check_access
from sandex.keys.errors import AccessDenied
from sandex.keys.permissions import Permission
from sandex.keys.policy import Mode

P = Permission
NO_PRIVILEGE = "has no operation privilege"
ALL = P.READ | P.SPOT_TRADE | P.FUTURES_TRADE | P.WITHDRAW | P.DEPOSIT | P.INTERNAL_TRANSFER

READ = Access.READ
PLACE_SPOT = Access(P.SPOT_TRADE, Operation.PLACE_ORDER)
PLACE_FUTURES = Access(P.FUTURES_TRADE, Operation.PLACE_ORDER)
CANCEL_SPOT = Access(P.SPOT_TRADE, Operation.CANCEL_ORDER)
WITHDRAW = Access(P.WITHDRAW, Operation.MOVE_FUNDS)
TRANSFER = Access(P.INTERNAL_TRANSFER, Operation.MOVE_FUNDS)


def check(access, *, permissions=ALL, mode=Mode.NORMAL, lapse=None, now=1_000):
    check_access(access, permissions=permissions, mode=mode, trade_lapses_at=lapse, now=now)


def denied(access, **kwargs) -> AccessDenied:
    with pytest.raises(AccessDenied) as info:
        check(access, **kwargs)
    assert NO_PRIVILEGE in str(info.value)
    return info.value


def test_access_read_constant():
    assert Access.READ == Access(P.READ, Operation.READ)


@pytest.mark.parametrize(
    ("access", "name"),
    [
        (PLACE_SPOT, "SPOT_TRADE"),
        (PLACE_FUTURES, "FUTURES_TRADE"),
        (CANCEL_SPOT, "SPOT_TRADE"),
        (WITHDRAW, "WITHDRAW"),
        (TRANSFER, "INTERNAL_TRANSFER"),
        (Access(P.DEPOSIT, Operation.READ), "DEPOSIT"),
    ],
)
def test_missing_permission_is_named(access, name):
    err = denied(access, permissions=P.READ)
    assert err.permission == name
    assert name in str(err)


def test_spot_does_not_grant_futures():
    check(PLACE_SPOT, permissions=P.READ | P.SPOT_TRADE)
    assert denied(PLACE_FUTURES, permissions=P.READ | P.SPOT_TRADE).permission == "FUTURES_TRADE"


@pytest.mark.parametrize("mode", list(Mode))
def test_read_always_fine(mode):
    check(READ, permissions=P.READ, mode=mode)
    check(READ, permissions=P.READ | P.SPOT_TRADE, mode=mode, lapse=0, now=10**13)


def test_normal_mode_allows_everything_permitted():
    for access in (READ, PLACE_SPOT, PLACE_FUTURES, CANCEL_SPOT, WITHDRAW, TRANSFER):
        check(access, mode=Mode.NORMAL)


def test_cancel_only():
    err = denied(PLACE_SPOT, mode=Mode.CANCEL_ONLY)
    assert "CANCEL_ONLY" in str(err)
    assert err.permission is None
    denied(PLACE_FUTURES, mode=Mode.CANCEL_ONLY)
    check(CANCEL_SPOT, mode=Mode.CANCEL_ONLY)
    check(WITHDRAW, mode=Mode.CANCEL_ONLY)
    check(TRANSFER, mode=Mode.CANCEL_ONLY)
    check(READ, mode=Mode.CANCEL_ONLY)


def test_frozen_reads_and_cancels_only():
    check(READ, mode=Mode.FROZEN)
    check(CANCEL_SPOT, mode=Mode.FROZEN)
    for access in (PLACE_SPOT, PLACE_FUTURES, WITHDRAW, TRANSFER):
        err = denied(access, mode=Mode.FROZEN)
        assert "FROZEN" in str(err)


def test_mode_does_not_hide_a_missing_permission():
    err = denied(WITHDRAW, permissions=P.READ, mode=Mode.FROZEN)
    assert err.permission == "WITHDRAW"


@pytest.mark.parametrize("access", [PLACE_SPOT, PLACE_FUTURES])
def test_trading_lapse(access):
    lapse = 5_000
    check(access, lapse=lapse, now=lapse - 1)
    for now in (lapse, lapse + 1, lapse + 10**9):
        err = denied(access, lapse=lapse, now=now)
        assert err.permission == access.permission.name
        assert "IP allowlist" in str(err)
    # cancelling still works after the lapse, so a bot can pull its orders
    check(CANCEL_SPOT, lapse=lapse, now=lapse + 1)
    check(READ, lapse=lapse, now=lapse + 1)


def test_no_lapse_scheduled_never_lapses():
    check(PLACE_SPOT, lapse=None, now=10**15)


def test_lapse_does_not_touch_fund_movements():
    check(WITHDRAW, lapse=0, now=10**13)

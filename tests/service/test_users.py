"""Users and 2FA through the service layer, against real storage."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from conftest import NOW
from sandex.accounts import (
    HashParams,
    InvalidCode,
    InvalidEmail,
    SignUpMode,
    Throttled,
    WeakPassword,
    WrongPassword,
)
from sandex.bootstrap import Sandex, open_sandex
from sandex.config import Settings
from sandex.service import Actor, Conflict, InvalidRequest
from sandex.service.errors import SignUpRefused
from sandex.storage.tables import invites
from support import OPERATOR, PASSWORD, enable_totp, make_user, next_step, totp_code

MINE = "198.51.100.7"
STRANGER = "203.0.113.66"


@pytest.fixture
def make_sandex(settings: Settings) -> Iterator[Callable[..., Sandex]]:
    """Open Sandex with setting overrides; closed after the test."""
    opened: list[Sandex] = []

    def make(**overrides: Any) -> Sandex:
        opened.append(open_sandex(dataclasses.replace(settings, **overrides)))
        return opened[-1]

    yield make
    for sx in opened:
        sx.close()


def test_a_user_signs_up_and_logs_in(sandex: Sandex) -> None:
    user = make_user(sandex, "Alice@Example.com", now=NOW)
    assert user.email == "alice@example.com"
    assert sandex.users.login("ALICE@example.com", PASSWORD, now=NOW, source="198.51.100.7") == user
    assert user.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    ("email", "password", "error"),
    [
        ("not-an-email", PASSWORD, InvalidEmail),
        ("bob@example.com", "short", WeakPassword),
        ("bob@example.com", "aaaaaaaaaaaaaaaa", WeakPassword),
    ],
)
def test_bad_sign_ups_are_refused_and_write_nothing(sandex: Sandex, email, password, error) -> None:
    with pytest.raises(error):
        sandex.users.create(email, password, now=NOW, actor=OPERATOR)
    assert sandex.users.all() == []
    assert sandex.audit.verify().checked == 0


def test_an_email_is_taken_once(sandex: Sandex) -> None:
    make_user(sandex, now=NOW)
    with pytest.raises(Conflict, match="already exists"):
        sandex.users.create("ALICE@example.com", PASSWORD, now=NOW, actor=OPERATOR)


def test_wrong_passwords_are_throttled_per_account_and_source(sandex: Sandex) -> None:
    make_user(sandex, now=NOW)
    for n in range(5):
        with pytest.raises(WrongPassword):
            sandex.users.login("alice@example.com", "wrong password!!", now=NOW + n, source=MINE)
    with pytest.raises(Throttled) as info:  # even the right password waits now, from there
        sandex.users.login("alice@example.com", PASSWORD, now=NOW + 10, source=MINE)
    assert info.value.retry_after_ms == 4 + 30_000 - 10
    assert "from 198.51.100.7" in str(info.value)
    later = NOW + 4 + 30_000
    assert sandex.users.login("alice@example.com", PASSWORD, now=later, source=MINE)
    # a success starts the pair afresh: five more guesses before the next wait
    for _ in range(5):
        with pytest.raises(WrongPassword):
            sandex.users.login("alice@example.com", "wrong password!!", now=later, source=MINE)
    with pytest.raises(Throttled):
        sandex.users.login("alice@example.com", PASSWORD, now=later, source=MINE)


def test_a_stranger_cannot_lock_the_owner_out(sandex: Sandex) -> None:
    # Finding 8a: anyone who knew an e-mail kept that account locked for up to an hour.
    # The stranger's guesses from their address slow down the stranger only.
    make_user(sandex, now=NOW)
    now, refused = NOW, 0
    for _ in range(60):  # an hour of guessing, as fast as the throttles let them
        try:
            sandex.users.login("alice@example.com", "wrong password!!", now=now, source=STRANGER)
        except Throttled as exc:
            refused += 1
            now += exc.retry_after_ms
        except WrongPassword:
            pass
        assert sandex.users.login("alice@example.com", PASSWORD, now=now, source=MINE)
    assert refused > 0
    sandex.activity.flush()
    failures = [r for r in sandex.audit.tail(limit=500) if r.event.event == "auth.factor_failed"]
    assert all(r.event.ip == STRANGER for r in failures)


def test_guessing_from_many_addresses_is_slowed_down_not_locked_out(sandex: Sandex) -> None:
    # The account's own ceiling, against guesses spread over many addresses: far above
    # the per-address limits, and it delays by seconds (at most a minute), never an hour.
    make_user(sandex, now=NOW)
    for n in range(100):
        with pytest.raises(WrongPassword):
            sandex.users.login(
                "alice@example.com", "wrong password!!", now=NOW, source=f"10.0.{n // 200}.{n}"
            )
    with pytest.raises(Throttled) as info:
        sandex.users.login("alice@example.com", PASSWORD, now=NOW, source=MINE)
    assert info.value.retry_after_ms == 1_000
    now = NOW
    for n in range(100, 130):  # the distributed guessing goes on, one guess per delay
        now += 60_000
        with pytest.raises(WrongPassword):
            sandex.users.login(
                "alice@example.com", "wrong password!!", now=now, source=f"10.0.0.{n}"
            )
    with pytest.raises(Throttled) as info:
        sandex.users.login("alice@example.com", PASSWORD, now=now, source=MINE)
    assert info.value.retry_after_ms == 60_000  # the ceiling's longest delay
    assert sandex.users.login("alice@example.com", PASSWORD, now=now + 60_000, source=MINE)


def test_wrong_passwords_are_throttled_per_source(sandex: Sandex) -> None:
    for n in range(20):
        with pytest.raises(WrongPassword):  # unknown users cost the attacker as much as known
            sandex.users.login(f"u{n}@example.com", "wrong password!!", now=NOW, source="192.0.2.9")
    make_user(sandex, "carol@example.com", now=NOW)
    with pytest.raises(Throttled):
        sandex.users.login("carol@example.com", PASSWORD, now=NOW + 1, source="192.0.2.9")
    assert sandex.users.login("carol@example.com", PASSWORD, now=NOW + 1, source="192.0.2.10")


def test_totp_enrolment_needs_a_valid_first_code_and_gives_recovery_codes(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    enrolment = sandex.users.begin_totp(user.id, now=NOW, actor=OPERATOR)
    assert enrolment.uri.startswith("otpauth://totp/Sandex:alice%40example.com?secret=")
    with pytest.raises(InvalidCode):
        sandex.users.confirm_totp(
            user.id,
            "000000" if totp_code(enrolment.secret, NOW) != "000000" else "111111",
            now=NOW,
            actor=OPERATOR,
        )
    assert not sandex.users.get(user.id).has_2fa
    codes = sandex.users.confirm_totp(
        user.id, totp_code(enrolment.secret, NOW), now=NOW, actor=OPERATOR
    )
    assert len(codes) == 10 and len(set(codes)) == 10
    assert sandex.users.get(user.id).has_2fa
    assert sandex.users.recovery_codes_left(user.id) == 10
    with pytest.raises(Conflict):
        sandex.users.begin_totp(user.id, now=NOW, actor=OPERATOR)


def test_a_totp_code_cannot_be_used_twice(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    secret, _ = enable_totp(sandex, user, now=NOW)
    # the code that confirmed enrolment is spent; so is every older one
    with pytest.raises(InvalidCode, match="already used"):
        sandex.users.disable_totp(user.id, totp_code(secret, NOW), now=NOW + 1000, actor=OPERATOR)
    later = next_step(NOW)
    sandex.users.disable_totp(user.id, totp_code(secret, later), now=later, actor=OPERATOR)
    assert not sandex.users.get(user.id).has_2fa


def test_recovery_codes_work_once_each(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    _, codes = enable_totp(sandex, user, now=NOW)
    new_codes = sandex.users.regenerate_recovery_codes(
        user.id, codes[0].upper(), now=NOW, actor=OPERATOR
    )
    with pytest.raises(InvalidCode):  # the old set is gone, including unused codes
        sandex.users.disable_totp(user.id, codes[1], now=NOW, actor=OPERATOR)
    sandex.users.disable_totp(user.id, new_codes[0].replace("-", ""), now=NOW, actor=OPERATOR)
    assert sandex.users.recovery_codes_left(user.id) == 0


def test_wrong_codes_are_throttled(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    secret, _ = enable_totp(sandex, user, now=NOW)
    right = totp_code(secret, next_step(NOW))
    wrong = "123456" if right != "123456" else "654321"
    for n in range(5):
        with pytest.raises(InvalidCode):
            sandex.users.disable_totp(user.id, wrong, now=next_step(NOW) + n, actor=OPERATOR)
    with pytest.raises(Throttled):
        sandex.users.disable_totp(user.id, right, now=next_step(NOW) + 10, actor=OPERATOR)
    assert sandex.users.get(user.id).has_2fa
    sandex.activity.flush()
    failures = [r for r in sandex.audit.tail(limit=50) if r.event.event == "auth.factor_failed"]
    assert len(failures) == 5


def test_disable_without_enrolment_is_refused(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    with pytest.raises(InvalidRequest):
        sandex.users.disable_totp(user.id, "123456", now=NOW, actor=OPERATOR)


def test_a_user_cannot_touch_another_users_2fa(sandex: Sandex) -> None:
    alice = make_user(sandex, now=NOW)
    bob = make_user(sandex, "bob@example.com", now=NOW)
    from sandex.service import NotFound

    with pytest.raises(NotFound):
        sandex.users.begin_totp(alice.id, now=NOW, actor=Actor.user(bob.id, "203.0.113.5"))


# -- self-service sign-up ---------------------------------------------------------------


def _signed_up(sandex: Sandex, email: str, password: str = PASSWORD, **kwargs: Any) -> str:
    kwargs.setdefault("source", MINE)
    return sandex.users.sign_up(email, password, now=kwargs.pop("now", NOW), **kwargs)


def test_sign_up_answers_alike_whether_or_not_the_address_is_taken(sandex: Sandex) -> None:
    # Finding 8b: a taken address was a 409, so anyone could test which are registered.
    owner = make_user(sandex, now=NOW)
    assert _signed_up(sandex, "ALICE@example.com", "another long passphrase") == owner.email
    assert _signed_up(sandex, "newcomer@example.com") == "newcomer@example.com"
    # only the new address got an account; the taken one is untouched
    assert [u.email for u in sandex.users.all()] == ["alice@example.com", "newcomer@example.com"]
    assert sandex.users.login(owner.email, PASSWORD, now=NOW, source=MINE) == owner
    with pytest.raises(WrongPassword):
        sandex.users.login(owner.email, "another long passphrase", now=NOW, source=MINE)
    # the owner can see that someone tried
    sandex.activity.flush()
    events = [r.event for r in sandex.audit.tail(limit=50, user_id=owner.id)]
    assert [(e.event, e.ip, e.outcome) for e in events if e.event == "user.sign_up_refused"] == [
        ("user.sign_up_refused", MINE, "denied")
    ]


def test_a_taken_address_costs_a_password_hash_too(settings: Settings) -> None:
    # The answer's timing must not tell either: the password is hashed whether or not the
    # address is taken (a slow hash here, so that it dominates both).
    slow = dataclasses.replace(settings, password_hash=HashParams(time_cost=3, memory_kib=16_384))
    with open_sandex(slow) as sx:
        _signed_up(sx, "taken@example.com")

        def timed(email: str, n: int) -> float:
            started = time.perf_counter()
            _signed_up(sx, email, source=f"192.0.2.{n}")
            return time.perf_counter() - started

        taken = statistics.median(timed("taken@example.com", n) for n in range(3))
        new = statistics.median(timed(f"new{n}@example.com", n) for n in range(3))
    assert 0.5 < taken / new < 2, (taken, new)


def test_sign_ups_are_limited_per_address(sandex: Sandex) -> None:
    # Finding 8c: sign-up was unthrottled (~20 accounts/s, each with starting money).
    for n in range(5):
        _signed_up(sandex, f"u{n}@example.com", source=STRANGER)
    with pytest.raises(Throttled) as info:  # a taken address counts too: it looks alike
        _signed_up(sandex, "u0@example.com", source=STRANGER)
    assert info.value.retry_after_ms == 3_600_000
    assert str(info.value) == f"too many sign-ups from {STRANGER}; try again in 3600 s"
    with pytest.raises(Throttled):
        _signed_up(sandex, "u9@example.com", source=STRANGER, now=NOW + 3_599_999)
    assert _signed_up(sandex, "mine@example.com", source=MINE)
    assert len(sandex.users.all()) == 6
    assert _signed_up(sandex, "u9@example.com", source=STRANGER, now=NOW + 3_600_000)


def test_invite_mode_takes_one_time_codes(make_sandex: Callable[..., Sandex]) -> None:
    sx = make_sandex(signup=SignUpMode.INVITE, signup_per_hour=100)
    with pytest.raises(SignUpRefused, match="needs an invitation code"):
        _signed_up(sx, "bob@example.com")
    invitation = sx.users.invite(now=NOW, actor=OPERATOR)
    assert invitation.expires_at == NOW + 7 * 86_400_000
    forged = invitation.code[:-1] + ("a" if invitation.code[-1] != "a" else "b")
    with pytest.raises(SignUpRefused, match="wrong, used or expired"):
        _signed_up(sx, "bob@example.com", invite=forged)
    assert _signed_up(sx, "bob@example.com", invite=invitation.code.upper())
    with pytest.raises(SignUpRefused, match="wrong, used or expired"):
        _signed_up(sx, "carol@example.com", invite=invitation.code)
    assert [u.email for u in sx.users.all()] == ["bob@example.com"]
    # a code is spent on a taken address too (else it would tell taken from new)
    spent = sx.users.invite(now=NOW, actor=OPERATOR)
    assert _signed_up(sx, "bob@example.com", invite=spent.code)
    with pytest.raises(SignUpRefused):
        _signed_up(sx, "carol@example.com", invite=spent.code)
    # and it expires
    short = sx.users.invite(now=NOW, actor=OPERATOR, ttl_ms=60_000)
    with pytest.raises(SignUpRefused):
        _signed_up(sx, "carol@example.com", invite=short.code, now=NOW + 60_000)
    sx.activity.flush()
    events = [r.event.event for r in sx.audit.tail(limit=100)]
    assert events.count("invite.created") == 3 and events.count("invite.used") == 2
    # only a keyed hash of each code is stored
    with sx.db.connect() as conn:
        stored = conn.execute(select(invites)).all()
    assert len(stored) == 3
    for code in (invitation.code, spent.code, short.code):
        assert all(code.encode() not in bytes(row.digest) for row in stored)
    assert all(len(bytes(row.digest)) == 32 for row in stored)


def test_closed_mode_refuses_sign_up_but_the_operator_can_create_users(
    make_sandex: Callable[..., Sandex],
) -> None:
    sx = make_sandex(signup=SignUpMode.CLOSED)
    with pytest.raises(SignUpRefused, match="closed"):
        _signed_up(sx, "bob@example.com")
    assert make_user(sx, "bob@example.com", now=NOW).email == "bob@example.com"

"""Throttling: counting failures in a window, escalating lockouts, and the Throttled error."""

from __future__ import annotations

import pytest

from sandex.accounts import (
    SOURCE_THROTTLE,
    USER_THROTTLE,
    Throttled,
    ThrottlePolicy,
    ThrottleState,
    check_throttle,
    record_failure,
)

NOW = 1_800_000_000_000
CUSTOM = ThrottlePolicy(
    max_failures=3, window_ms=60_000, base_lockout_ms=1_000, max_lockout_ms=5_000
)
POLICIES = [
    pytest.param(USER_THROTTLE, id="user"),
    pytest.param(SOURCE_THROTTLE, id="source"),
    pytest.param(CUSTOM, id="custom"),
]


def fail(
    policy: ThrottlePolicy, times: int, *, now: int, state: ThrottleState | None = None
) -> ThrottleState:
    state = ThrottleState() if state is None else state
    for _ in range(times):
        state = record_failure(policy, state, now=now)
    return state


def is_locked(state: ThrottleState, now: int) -> bool:
    try:
        check_throttle(state, now=now, what="x")
    except Throttled:
        return True
    return False


def test_the_documented_policies() -> None:
    assert USER_THROTTLE == ThrottlePolicy(5, 15 * 60_000, 30_000, 60 * 60_000)
    assert USER_THROTTLE.max_failures == 5
    assert USER_THROTTLE.base_lockout_ms == 30_000


def test_an_empty_state_passes() -> None:
    check_throttle(ThrottleState(), now=NOW, what="alice@example.com")


@pytest.mark.parametrize("policy", POLICIES)
def test_failures_below_the_limit_are_counted_but_do_not_lock(policy: ThrottlePolicy) -> None:
    state = ThrottleState()
    for n in range(1, policy.max_failures):
        now = NOW + n * 1_000
        state = record_failure(policy, state, now=now)
        assert state.failures == n
        check_throttle(state, now=now, what="alice@example.com")


@pytest.mark.parametrize("policy", POLICIES)
def test_reaching_max_failures_locks_for_the_base_lockout(policy: ThrottlePolicy) -> None:
    state = fail(policy, policy.max_failures - 1, now=NOW)
    last = NOW + 5_000
    state = record_failure(policy, state, now=last)
    assert state.locked_until == last + policy.base_lockout_ms

    with pytest.raises(Throttled) as info:
        check_throttle(state, now=last, what="alice@example.com")
    assert info.value.retry_after_ms == policy.base_lockout_ms

    with pytest.raises(Throttled) as info:
        check_throttle(state, now=last + policy.base_lockout_ms - 1, what="alice@example.com")
    assert info.value.retry_after_ms == 1

    check_throttle(state, now=last + policy.base_lockout_ms, what="alice@example.com")
    check_throttle(state, now=last + policy.base_lockout_ms + 60_000, what="alice@example.com")


def test_user_throttle_lockouts_double_up_to_the_maximum() -> None:
    state = fail(USER_THROTTLE, 4, now=NOW)
    lockouts = []
    for _ in range(10):
        state = record_failure(USER_THROTTLE, state, now=NOW)
        lockouts.append(state.locked_until - NOW)
    assert lockouts == [
        30_000,
        60_000,
        120_000,
        240_000,
        480_000,
        960_000,
        1_920_000,
        3_600_000,
        3_600_000,
        3_600_000,
    ]


def test_custom_policy_lockouts_double_up_to_the_maximum() -> None:
    state = ThrottleState()
    lockouts = []
    for k in range(7):
        now = NOW + k * 6_000  # each failure after the previous lockout ended, inside the window
        assert not is_locked(state, now)
        state = record_failure(CUSTOM, state, now=now)
        lockouts.append(max(0, state.locked_until - now))
    assert lockouts == [0, 0, 1_000, 2_000, 4_000, 5_000, 5_000]


def test_a_huge_number_of_failures_stays_at_the_maximum() -> None:
    state = ThrottleState(failures=10_000, window_started_at=NOW, locked_until=0)
    state = record_failure(USER_THROTTLE, state, now=NOW)
    assert state.locked_until == NOW + USER_THROTTLE.max_lockout_ms


def test_a_persistent_attacker_keeps_escalating_to_the_maximum_lockout() -> None:
    # Someone who guesses again every time the lock ends must meet ever longer lockouts,
    # up to max_lockout_ms (an hour): the escalation must not silently start over at the
    # base lockout with fresh free guesses while the attack goes on. (Lockout sum before
    # the 10th failure: 30+60+120+240+480 s = 930 s, past the 15-minute window.)
    state = fail(USER_THROTTLE, 4, now=NOW)
    now = NOW
    lockouts = []
    for _ in range(10):
        assert not is_locked(state, now)
        state = record_failure(USER_THROTTLE, state, now=now)
        lockouts.append(state.locked_until - now)
        now = max(now, state.locked_until)
    assert lockouts == [
        30_000,
        60_000,
        120_000,
        240_000,
        480_000,
        960_000,
        1_920_000,
        3_600_000,
        3_600_000,
        3_600_000,
    ]


@pytest.mark.parametrize("policy", POLICIES)
def test_failures_inside_the_window_add_up(policy: ThrottlePolicy) -> None:
    state = fail(policy, policy.max_failures - 1, now=NOW)
    # The last failure comes just inside the window opened by the first ones.
    state = record_failure(policy, state, now=NOW + policy.window_ms - 1)
    assert state.failures == policy.max_failures
    assert is_locked(state, NOW + policy.window_ms - 1)


@pytest.mark.parametrize("policy", POLICIES)
def test_failures_outside_the_window_restart_the_count(policy: ThrottlePolicy) -> None:
    state = fail(policy, policy.max_failures - 1, now=NOW)
    later = NOW + policy.window_ms + 1
    state = record_failure(policy, state, now=later)
    assert state.failures == 1
    assert not is_locked(state, later)
    # A whole new allowance: max_failures - 1 more failures still do not lock...
    state = fail(policy, policy.max_failures - 2, now=later, state=state)
    assert not is_locked(state, later)
    # ...and the max_failures-th failure of the new window locks again, for the base time.
    state = record_failure(policy, state, now=later)
    assert state.locked_until == later + policy.base_lockout_ms


def test_after_a_quiet_window_the_lockout_starts_again_from_the_base() -> None:
    state = fail(USER_THROTTLE, 7, now=NOW)  # locked for 120 s
    assert state.locked_until == NOW + 120_000
    much_later = NOW + 24 * 3_600_000
    assert not is_locked(state, much_later)
    state = fail(USER_THROTTLE, 5, now=much_later, state=state)
    assert state.locked_until == much_later + USER_THROTTLE.base_lockout_ms


@pytest.mark.parametrize(
    ("wait_ms", "seconds"),
    [(30_000, 30), (29_001, 30), (29_000, 29), (1_500, 2), (1_000, 1), (1, 1)],
)
def test_the_message_names_what_is_throttled_and_the_wait_in_seconds(
    wait_ms: int, seconds: int
) -> None:
    state = ThrottleState(failures=5, window_started_at=NOW, locked_until=NOW + wait_ms)
    with pytest.raises(Throttled) as info:
        check_throttle(state, now=NOW, what="alice@example.com")
    message = str(info.value)
    assert "alice@example.com" in message
    assert f"try again in {seconds} s" in message
    assert info.value.retry_after_ms == wait_ms


def test_the_message_names_a_source_too() -> None:
    state = fail(USER_THROTTLE, 5, now=NOW)
    with pytest.raises(Throttled, match=r"203\.0\.113\.7.*30 s"):
        check_throttle(state, now=NOW, what="203.0.113.7")


def test_custom_policy_full_cycle() -> None:
    state = fail(CUSTOM, 2, now=NOW)
    assert not is_locked(state, NOW)
    state = record_failure(CUSTOM, state, now=NOW + 100)
    with pytest.raises(Throttled) as info:
        check_throttle(state, now=NOW + 100, what="bob@example.com")
    assert info.value.retry_after_ms == 1_000
    assert "try again in 1 s" in str(info.value)
    with pytest.raises(Throttled) as info:
        check_throttle(state, now=NOW + 600, what="bob@example.com")
    assert info.value.retry_after_ms == 500
    check_throttle(state, now=NOW + 1_100, what="bob@example.com")

"""Throttling: counting failures in a window, escalating lockouts, admitting attempts before
they are checked (and refunding those that were not failures), and the Throttled error."""

from __future__ import annotations

import pytest

from sandex.accounts import (
    ACCOUNT_THROTTLE,
    PAIR_THROTTLE,
    SOURCE_THROTTLE,
    Throttled,
    ThrottlePolicy,
    ThrottleState,
    admit,
    check_throttle,
    record_failure,
    refund,
)

NOW = 1_800_000_000_000
CUSTOM = ThrottlePolicy(
    max_failures=3, window_ms=60_000, base_lockout_ms=1_000, max_lockout_ms=5_000
)
POLICIES = [
    pytest.param(PAIR_THROTTLE, id="pair"),
    pytest.param(SOURCE_THROTTLE, id="source"),
    pytest.param(ACCOUNT_THROTTLE, id="account"),
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
    assert PAIR_THROTTLE == ThrottlePolicy(5, 15 * 60_000, 30_000, 15 * 60_000)
    assert SOURCE_THROTTLE == ThrottlePolicy(20, 15 * 60_000, 60_000, 60 * 60_000)
    assert ACCOUNT_THROTTLE == ThrottlePolicy(100, 15 * 60_000, 1_000, 60_000)


def test_the_account_ceiling_is_far_above_the_others_and_only_slows_down() -> None:
    assert ACCOUNT_THROTTLE.max_failures >= 5 * SOURCE_THROTTLE.max_failures
    state = fail(ACCOUNT_THROTTLE, 10_000, now=NOW)
    assert state.locked_until - NOW == ACCOUNT_THROTTLE.max_lockout_ms == 60_000


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


def test_source_throttle_lockouts_double_up_to_the_maximum() -> None:
    state = fail(SOURCE_THROTTLE, 19, now=NOW)
    lockouts = []
    for _ in range(9):
        state = record_failure(SOURCE_THROTTLE, state, now=NOW)
        lockouts.append(state.locked_until - NOW)
    assert lockouts == [
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
    state = record_failure(PAIR_THROTTLE, state, now=NOW)
    assert state.locked_until == NOW + PAIR_THROTTLE.max_lockout_ms


def test_a_persistent_attacker_keeps_escalating_to_the_maximum_lockout() -> None:
    # Someone who guesses again every time the lock ends must meet ever longer lockouts,
    # up to max_lockout_ms (15 minutes): the escalation must not silently start over at
    # the base lockout with fresh free guesses while the attack goes on. (Lockout sum
    # before the 10th failure: 30+60+120+240+480+900 s, far past the 15-minute window.)
    state = fail(PAIR_THROTTLE, 4, now=NOW)
    now = NOW
    lockouts = []
    for _ in range(10):
        assert not is_locked(state, now)
        state = record_failure(PAIR_THROTTLE, state, now=now)
        lockouts.append(state.locked_until - now)
        now = max(now, state.locked_until)
    assert lockouts == [30_000, 60_000, 120_000, 240_000, 480_000] + [900_000] * 5


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
    state = fail(PAIR_THROTTLE, 7, now=NOW)  # locked for 120 s
    assert state.locked_until == NOW + 120_000
    much_later = NOW + 24 * 3_600_000
    assert not is_locked(state, much_later)
    state = fail(PAIR_THROTTLE, 5, now=much_later, state=state)
    assert state.locked_until == much_later + PAIR_THROTTLE.base_lockout_ms


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
    state = fail(PAIR_THROTTLE, 5, now=NOW)
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


@pytest.mark.parametrize("policy", POLICIES)
def test_admit_lets_exactly_max_failures_attempts_through(policy: ThrottlePolicy) -> None:
    # Each attempt is counted before it is checked: of any number of attempts made
    # before a single result is known, exactly max_failures get through.
    state = ThrottleState()
    admitted = 0
    for _ in range(3 * policy.max_failures):
        try:
            state = admit(policy, state, now=NOW, what="x")
        except Throttled:
            continue
        admitted += 1
    assert admitted == policy.max_failures
    assert state.failures == policy.max_failures  # refused attempts count nothing
    assert state.locked_until == NOW + policy.base_lockout_ms


def test_admit_refuses_while_locked_and_counts_like_a_failure_otherwise() -> None:
    state = fail(CUSTOM, 3, now=NOW)
    with pytest.raises(Throttled):
        admit(CUSTOM, state, now=NOW + 999, what="x")
    assert admit(CUSTOM, state, now=NOW + 1_000, what="x") == record_failure(
        CUSTOM, state, now=NOW + 1_000
    )


def test_a_refunded_attempt_is_as_if_it_was_never_counted() -> None:
    state = fail(CUSTOM, 1, now=NOW)
    assert refund(CUSTOM, admit(CUSTOM, state, now=NOW + 5, what="x")) == state
    # the attempt that reached the limit and locked, then succeeded: the lock goes
    two = fail(CUSTOM, 2, now=NOW)
    assert is_locked(admit(CUSTOM, two, now=NOW + 5, what="x"), NOW + 5)
    back = refund(CUSTOM, admit(CUSTOM, two, now=NOW + 5, what="x"))
    assert back.failures == 2 and not is_locked(back, NOW + 5)


def test_a_refund_keeps_a_lock_the_remaining_failures_earned() -> None:
    state = fail(CUSTOM, 4, now=NOW)  # 4 failures: locked at the 3rd, longer at the 4th
    state = refund(CUSTOM, state)
    assert state.failures == 3 and is_locked(state, NOW)
    assert refund(CUSTOM, ThrottleState()) == ThrottleState()

"""Throttling of wrong passwords and codes, per account and source, per source, and per
account from everywhere.

One party's failures never lock another party out (OWASP ASVS 2.2.1): a stranger who
guesses an account's password from their address is stopped by the throttle of that
(account, address) pair and of their address; the owner, from theirs, is not. Only the
account's global ceiling, far higher and kept against guessing spread over many
addresses, touches every address, and it slows attempts down (seconds, at most a minute)
rather than locking the account.

Pure state transitions. An attempt is counted *before* it is checked, so that parallel
attempts cannot all pass a check made before any of them failed: the caller loads a
:class:`ThrottleState` under a lock, stores what :func:`admit` returns (or gives up on
:class:`Throttled`), checks the password or code, and stores what :func:`refund`
returns if the attempt turned out not to be a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sandex.accounts.errors import Throttled

__all__ = [
    "ThrottlePolicy",
    "ThrottleState",
    "PAIR_THROTTLE",
    "SOURCE_THROTTLE",
    "ACCOUNT_THROTTLE",
    "admit",
    "check_throttle",
    "record_failure",
    "refund",
]


@dataclass(frozen=True)
class ThrottlePolicy:
    """After ``max_failures`` inside ``window_ms``, lock for ``base_lockout_ms``,
    doubling with each further failure up to ``max_lockout_ms``."""

    max_failures: int
    window_ms: int
    base_lockout_ms: int
    max_lockout_ms: int


PAIR_THROTTLE: Final = ThrottlePolicy(5, 15 * 60_000, 30_000, 15 * 60_000)
"""One account from one address: 5 wrong guesses, then 30 s, doubling up to 15 min."""
SOURCE_THROTTLE: Final = ThrottlePolicy(20, 15 * 60_000, 60_000, 60 * 60_000)
"""One address, whatever the accounts: 20 wrong guesses, then 1 min, doubling up to 1 h."""
ACCOUNT_THROTTLE: Final = ThrottlePolicy(100, 15 * 60_000, 1_000, 60_000)
"""One account from everywhere: 100 wrong guesses, then 1 s, doubling up to 1 min."""


@dataclass(frozen=True)
class ThrottleState:
    failures: int = 0
    window_started_at: int = 0
    locked_until: int = 0


def check_throttle(state: ThrottleState, *, now: int, what: str) -> None:
    """Raise :class:`Throttled` while ``state`` is locked."""
    if now < state.locked_until:
        wait = state.locked_until - now
        raise Throttled(
            f"too many failed attempts for {what}; try again in {max(1, -(-wait // 1000))} s",
            retry_after_ms=wait,
        )


def record_failure(policy: ThrottlePolicy, state: ThrottleState, *, now: int) -> ThrottleState:
    """The state after one more failure at ``now``."""
    # The window runs from its start or from the end of the last lockout, whichever is
    # later: an attacker who retries each time a lockout ends keeps escalating.
    if now - max(state.window_started_at, state.locked_until) > policy.window_ms:
        failures, started = 1, now
    else:
        failures, started = state.failures + 1, state.window_started_at
    locked = state.locked_until
    if failures >= policy.max_failures:
        extra = failures - policy.max_failures
        lockout = min(policy.base_lockout_ms * (2 ** min(extra, 30)), policy.max_lockout_ms)
        locked = now + lockout
    return ThrottleState(failures, started, locked)


def admit(policy: ThrottlePolicy, state: ThrottleState, *, now: int, what: str) -> ThrottleState:
    """Let one attempt through, counted as a failure until :func:`refund`; raise
    :class:`Throttled` (counting nothing) while ``state`` is locked."""
    check_throttle(state, now=now, what=what)
    return record_failure(policy, state, now=now)


def refund(policy: ThrottlePolicy, state: ThrottleState) -> ThrottleState:
    """Take back one attempt :func:`admit` counted, which was not a failure after all.

    A lock stays only while the failures left still reach the limit: below it, any lock
    was set by the attempt refunded (an earlier one had ended, or it would not have been
    admitted)."""
    failures = max(0, state.failures - 1)
    locked = state.locked_until if failures >= policy.max_failures else 0
    return ThrottleState(failures, state.window_started_at, locked)

"""Throttling of wrong passwords and codes, per user and per source.

Pure state transitions: the caller loads a :class:`ThrottleState`, asks
:func:`check_throttle`, and stores what :func:`record_failure` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sandex.accounts.errors import Throttled

__all__ = [
    "ThrottlePolicy",
    "ThrottleState",
    "USER_THROTTLE",
    "SOURCE_THROTTLE",
    "check_throttle",
    "record_failure",
]


@dataclass(frozen=True)
class ThrottlePolicy:
    """After ``max_failures`` inside ``window_ms``, lock for ``base_lockout_ms``,
    doubling with each further failure up to ``max_lockout_ms``."""

    max_failures: int
    window_ms: int
    base_lockout_ms: int
    max_lockout_ms: int


USER_THROTTLE: Final = ThrottlePolicy(5, 15 * 60_000, 30_000, 60 * 60_000)
SOURCE_THROTTLE: Final = ThrottlePolicy(20, 15 * 60_000, 60_000, 60 * 60_000)


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

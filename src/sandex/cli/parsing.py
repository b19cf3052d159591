"""Parsing of times and durations typed on the command line."""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["CliInputError", "parse_duration_ms", "parse_expiry_ms", "format_ms"]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class CliInputError(ValueError):
    """A value typed on the command line cannot be understood."""


def parse_duration_ms(text: str) -> int:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` → milliseconds."""
    match = _DURATION.match(text)
    if match is None:
        raise CliInputError(f"{text!r} is not a duration (like 30m, 24h, 7d)")
    return int(match.group(1)) * _UNIT_MS[match.group(2).lower()]


def parse_expiry_ms(text: str, *, now: int) -> int:
    """An ISO 8601 date/time (UTC unless it says otherwise), or a duration from now (``90d``)."""
    if _DURATION.match(text):
        return now + parse_duration_ms(text)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliInputError(
            f"{text!r} is not an ISO 8601 date (like 2027-01-31 or 2027-01-31T12:00:00Z)"
            " or a duration (like 90d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def format_ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

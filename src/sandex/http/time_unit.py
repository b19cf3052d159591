"""Binance's ``X-MBX-TIME-UNIT`` request header: time fields in microseconds.

A client that sends ``X-MBX-TIME-UNIT: MICROSECOND`` (or ``microsecond``) gets every
time and timestamp field of a ``/api/...`` answer in µs; ``MILLISECOND`` (or
``millisecond``) is the default; anything else is -1194. The handlers keep answering
in ms and the gateway converts their answer here, once: an instant (``time``,
``transactTime``, an ``openTime``) becomes ``ms * 1000``, and the inclusive end of a
period (a candle's or a trading day's ``closeTime``) its last µs, ``ms * 1000 + 999``.
Ids (``lastUpdateId``, ``tradeGroupId``) and ``-1`` ("none") are left alone.
"""

from __future__ import annotations

from typing import Final

from sandex.exchange.rejections import INVALID_TIME_UNIT
from sandex.http.errors import BadParameters

__all__ = ["wants_microseconds", "in_microseconds"]

_MICRO: Final = frozenset({"MICROSECOND", "microsecond"})
_MILLI: Final = frozenset({"MILLISECOND", "millisecond"})
_INSTANTS: Final = frozenset(
    {
        "serverTime",
        "time",
        "updateTime",
        "transactTime",
        "transactionTime",  # an order list's
        "workingTime",
        "openTime",
        "closeTime",
        "T",  # an aggregate trade's time
    }
)
_PERIOD_ENDS: Final = {
    "/api/v3/klines": "rows",
    "/api/v3/uiKlines": "rows",
    "/api/v3/ticker/tradingDay": "closeTime",
}
"""Routes whose ``closeTime`` (a kline row's seventh value) ends a period."""


def wants_microseconds(value: str | None) -> bool:
    """True for ``MICROSECOND``; False for no header or ``MILLISECOND``; else -1194."""
    if value is None or value in _MILLI:
        return False
    if value in _MICRO:
        return True
    raise BadParameters(*INVALID_TIME_UNIT)


def in_microseconds(path: str, body: object) -> object:
    """``body`` (a handler's answer for ``path``) with its time fields in µs."""
    end = _PERIOD_ENDS.get(path)
    if end == "rows" and isinstance(body, list):
        return [
            [row[0] * 1000, *row[1:6], row[6] * 1000 + 999, *row[7:]]
            if isinstance(row, list) and len(row) > 6
            else row
            for row in body
        ]
    return _convert(body, end == "closeTime")


def _convert(value: object, close_ends: bool) -> object:
    if isinstance(value, list):
        return [_convert(item, close_ends) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, object] = {}
    for name, item in value.items():
        if name in _INSTANTS and type(item) is int and item >= 0:
            item = item * 1000 + (999 if close_ends and name == "closeTime" else 0)
        elif isinstance(item, dict | list):
            item = _convert(item, close_ends)
        out[name] = item
    return out

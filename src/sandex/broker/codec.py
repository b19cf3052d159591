"""Engine commands, replies and events as bytes on the broker, and back.

JSON (orjson) with a type tag per record. Only the types registered here decode: a
message naming anything else is refused (:class:`CodecError`), so a broker that someone
else can write to can at worst send a bad command, never make a process run code (no
pickle). Records are encoded positionally, in their fields' order, which both sides
share because they run the same release.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

import orjson

from sandex.exchange import (
    CancelAll,
    CancelOrder,
    CancelReplace,
    CancelReplaceMode,
    CancelRestriction,
    OrderStatus,
    OrderType,
    PlaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from sandex.exchange.book import Level
from sandex.exchange.events import (
    Accepted,
    Canceled,
    Expired,
    Rejected,
    ReplaceFailed,
    SelfTradePrevented,
    Trade,
    Triggered,
)
from sandex.exchange.order_lists import ContingencyType, NewOco, NewOto, NewOtoco, OrderList
from sandex.exchange.venue import Fill, OrderRecord
from sandex.keys import RiskPolicy
from sandex.keys.policy import Mode
from sandex.service.engine_commands import (
    Cancel,
    CancelList,
    CancelOpen,
    Check,
    Place,
    PlaceList,
    PolicyRefusal,
    Replace,
    Reply,
    Snapshot,
)
from sandex.service.market_feed import BookChange, BookState, MarketSnapshot, PublicTradeEvent

__all__ = ["encode", "decode", "CodecError"]


class CodecError(ValueError):
    """A message that is not one this release writes."""


_RECORDS: Final[tuple[type, ...]] = (
    Place,
    Check,
    Cancel,
    CancelOpen,
    Replace,
    PlaceList,
    CancelList,
    Snapshot,
    Reply,
    PolicyRefusal,
    PlaceOrder,
    CancelOrder,
    CancelAll,
    CancelReplace,
    NewOco,
    NewOto,
    NewOtoco,
    OrderList,
    OrderRecord,
    Fill,
    Accepted,
    Rejected,
    Trade,
    Expired,
    Canceled,
    Triggered,
    SelfTradePrevented,
    ReplaceFailed,
    RiskPolicy,
    Level,
    BookChange,
    BookState,
    MarketSnapshot,
    PublicTradeEvent,
)
_ENUMS: Final[tuple[type[enum.Enum], ...]] = (
    Side,
    OrderType,
    TimeInForce,
    SelfTradePrevention,
    OrderStatus,
    CancelRestriction,
    CancelReplaceMode,
    ContingencyType,
    Mode,
)


def _fields(cls: type) -> tuple[str, ...]:
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return tuple(cls._fields)  # type: ignore[attr-defined]


_ENCODE: Final[dict[type, tuple[str, tuple[str, ...]]]] = {
    cls: (cls.__name__, _fields(cls)) for cls in _RECORDS
}
_DECODE: Final[dict[str, Callable[..., Any]]] = {cls.__name__: cls for cls in _RECORDS}
_ENUM_BY_NAME: Final[dict[str, type[enum.Enum]]] = {cls.__name__: cls for cls in _ENUMS}
_PLAIN: Final = frozenset({int, str, bool, float, type(None)})


def _enc(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return [_enc(v) for v in value]
    record = _ENCODE.get(kind)
    if record is not None:
        name, fields = record
        return {"t": name, "f": [_enc(getattr(value, f)) for f in fields]}
    if isinstance(value, enum.Enum):
        return {"e": kind.__name__, "v": value.value}
    if kind is tuple:
        return {"u": [_enc(v) for v in value]}
    if kind is dict:
        return {"m": [[_enc(k), _enc(v)] for k, v in value.items()]}
    if kind is Decimal:
        return {"d": str(value)}
    if kind is frozenset:
        return {"s": [_enc(v) for v in sorted(value)]}
    raise CodecError(f"cannot encode a {kind.__name__}")


def _dec(value: Any) -> Any:
    if type(value) is list:
        return [_dec(v) for v in value]
    if type(value) is not dict:
        return value
    fields = value.get("f")
    if fields is not None:
        cls = _DECODE.get(value.get("t", ""))
        if cls is None:
            raise CodecError(f"unknown record {value.get('t')!r}")
        return cls(*[_dec(v) for v in fields])
    if "e" in value:
        enum_cls = _ENUM_BY_NAME.get(value["e"])
        if enum_cls is None:
            raise CodecError(f"unknown enumeration {value['e']!r}")
        return enum_cls(value["v"])
    if "u" in value:
        return tuple(_dec(v) for v in value["u"])
    if "m" in value:
        return {_dec(k): _dec(v) for k, v in value["m"]}
    if "d" in value:
        return Decimal(value["d"])
    if "s" in value:
        return frozenset(_dec(v) for v in value["s"])
    raise CodecError("unknown value")


def encode(value: object) -> bytes:
    """``value`` (a registered record, or lists and plain values of them) as bytes."""
    return orjson.dumps(_enc(value))


def decode(data: bytes) -> Any:
    """What :func:`encode` wrote (raises :class:`CodecError` for anything else)."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None
    try:
        return _dec(raw)
    except (TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"malformed message: {exc}") from None

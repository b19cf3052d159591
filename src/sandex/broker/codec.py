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
import types
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, Union

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
from sandex.exchange.account_events import (
    BalanceDelta,
    BalancesChanged,
    Execution,
    ListStatus,
    OrderUpdate,
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
from sandex.exchange.venue import Fill, OrderRecord, PreventedMatch
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
    Watch,
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
    Watch,
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
    PreventedMatch,
    OrderUpdate,
    ListStatus,
    BalancesChanged,
    BalanceDelta,
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
    Execution,
)


def _fields(cls: type) -> tuple[str, ...]:
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return tuple(cls._fields)  # type: ignore[attr-defined]


_PLAIN: Final = frozenset({int, str, bool, float, type(None)})
_ENUM_BY_NAME: Final[dict[str, type[enum.Enum]]] = {cls.__name__: cls for cls in _ENUMS}
_ENUM_NAMES: Final[dict[type, str]] = {cls: cls.__name__ for cls in _ENUMS}


# -- each record's fields by their declared types ----------------------------------------
#
# A field declared as plain values (int, str, bool, float, None, or a NewType of them)
# goes out as it is and must come back as one of those types; an enumeration (or None)
# as its value; a registered record (or a list of one kind of record) as the list of its
# fields, untagged; anything else (a union of records, a Decimal, a set) tagged, as
# _enc/_dec write it. The encoders and decoders are generated once, at import, from the
# field names and annotations of the registered classes only.


def _unwrap(hint: Any) -> Any:
    while hasattr(hint, "__supertype__"):  # a NewType of int
        hint = hint.__supertype__
    return hint


def _field_kind(hint: Any) -> tuple[str, Any]:
    """How a field declared ``hint`` travels: (kind, its class or its plain types)."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else ()
    members = [_unwrap(a) for a in args] if args else [_unwrap(hint)]
    optional = type(None) in members
    rest = [m for m in members if m is not type(None)]
    if all(m in _PLAIN for m in members):
        return "plain", frozenset(members)
    if len(rest) == 1:
        (only,) = rest
        kind = "?" if optional else ""
        if only in _ENUM_NAMES:
            return "enum" + kind, only
        if only in _ENCODE:
            return "record" + kind, only
        if not optional and typing.get_origin(only) is list:
            (item,) = typing.get_args(only) or (None,)
            if item in _ENCODE:
                return "records", item
    return "any", None


_LINKS: Final[list[tuple[dict[str, Any], int, type]]] = []
"""Nested records' encoders and decoders, bound in the generated code after they exist."""


def _compile(cls: type) -> tuple[Callable[[Any], list[Any]], Callable[[Any], Any]]:
    """The untagged encoder and decoder of record ``cls`` (generated from its fields)."""
    fields = _fields(cls)
    hints = typing.get_type_hints(cls)
    name = cls.__name__
    env: dict[str, Any] = {"cls": cls, "enc": _enc, "dec": _dec, "bad": _bad, "N": len(fields)}
    out: list[str] = []
    back: list[str] = []
    for n, field_name in enumerate(fields):
        kind, of = _field_kind(hints[field_name])
        env[f"T{n}"] = of
        if kind.startswith("enum"):
            env[f"M{n}"] = {member.value: member for member in of}
        get, got = f"v.{field_name}", f"f[{n}]"
        if kind == "plain":
            out.append(get)
            back.append(f"({got} if type({got}) in T{n} else bad({name!r}, {field_name!r}))")
        elif kind == "enum":  # by value, from a map of the members (KeyError: refused)
            out.append(f"{get}.value")
            back.append(f"M{n}[{got}]")
        elif kind == "enum?":
            out.append(f"(None if {get} is None else {get}.value)")
            back.append(f"(None if {got} is None else M{n}[{got}])")
        elif kind == "record":
            out.append(f"E{n}({get})")
            back.append(f"D{n}({got})")
        elif kind == "record?":
            out.append(f"(None if {get} is None else E{n}({get}))")
            back.append(f"(None if {got} is None else D{n}({got}))")
        elif kind == "records":
            out.append(f"[E{n}(x) for x in {get}]")
            back.append(f"[D{n}(x) for x in {got}]")
        else:
            out.append(f"enc({get})")
            back.append(f"dec({got})")
        if kind.startswith("record"):  # bound once every record is compiled
            _LINKS.append((env, n, of))
    source = (
        f"def encode(v):\n    return [{', '.join(out)}]\n"
        "def decode(f):\n"
        "    if type(f) is not list or len(f) != N:\n"
        f"        bad({name!r}, 'fields')\n"
        f"    return cls({', '.join(back)})\n"
    )
    exec(compile(source, f"<codec {name}>", "exec"), env)  # noqa: S102 - our own field names
    return env["encode"], env["decode"]


def _bad(record: str, field_name: str) -> Any:
    raise CodecError(f"{record}.{field_name}: not a value this release writes")


def _enc(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return [_enc(v) for v in value]
    compiled = _COMPILED.get(kind)
    if compiled is not None:
        return {"t": _ENCODE[kind], "f": compiled[0](value)}
    enum_name = _ENUM_NAMES.get(kind)
    if enum_name is not None:
        return {"e": enum_name, "v": value.value}
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
        decoder = _DECODE.get(value.get("t", ""))
        if decoder is None:
            raise CodecError(f"unknown record {value.get('t')!r}")
        return decoder(fields)
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


_ENCODE: Final[dict[type, str]] = {cls: cls.__name__ for cls in _RECORDS}
_COMPILED: Final[dict[type, tuple[Callable[[Any], list[Any]], Callable[[Any], Any]]]] = {
    cls: _compile(cls) for cls in _RECORDS
}
for _env, _n, _of in _LINKS:
    _env[f"E{_n}"], _env[f"D{_n}"] = _COMPILED[_of]
_DECODE: Final[dict[str, Callable[[Any], Any]]] = {
    cls.__name__: _COMPILED[cls][1] for cls in _RECORDS
}


def encode(value: object) -> bytes:
    """``value`` (a registered record, or lists and plain values of them) as bytes: one
    line of JSON (never a newline byte, so that the broker can join several)."""
    try:
        return orjson.dumps(_enc(value))
    except (AttributeError, TypeError) as exc:  # a field holding what it must not
        raise CodecError(f"cannot encode: {exc}") from None


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

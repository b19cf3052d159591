"""API-key permissions and the rules that tie them to restrictions."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

from sandex.keys.errors import InvalidPermissions

__all__ = [
    "Permission",
    "TRADING",
    "NEEDS_ALLOWLIST",
    "parse_permissions",
    "permission_names",
    "check_permission_rules",
]


class Permission(enum.IntFlag):
    """What a key may do. ``READ`` is always on."""

    READ = 1
    SPOT_TRADE = 2
    FUTURES_TRADE = 4
    WITHDRAW = 8
    DEPOSIT = 16
    INTERNAL_TRANSFER = 32


TRADING: Final = Permission.SPOT_TRADE | Permission.FUTURES_TRADE
"""Permissions that lapse on a key without an IP allowlist."""

NEEDS_ALLOWLIST: Final = Permission.WITHDRAW | Permission.INTERNAL_TRANSFER
"""Permissions a key may hold only with an IP allowlist."""

_BY_NAME: Final = {p.name.lower(): p for p in Permission if p.name}


def parse_permissions(names: Iterable[str] | str) -> Permission:
    """Parse ``"read,spot_trade"`` (or a list of names) into a :class:`Permission`.

    Names are case-insensitive; ``READ`` is always included.
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    result = Permission.READ
    unknown = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        perm = _BY_NAME.get(name)
        if perm is None:
            unknown.append(raw.strip())
        else:
            result |= perm
    if unknown:
        known = ", ".join(n for n in _BY_NAME)
        raise InvalidPermissions(f"unknown permission {', '.join(unknown)} (known: {known})")
    return result


def permission_names(perms: Permission) -> list[str]:
    """Names of the permissions in ``perms``, in declaration order (``["READ", "SPOT_TRADE"]``)."""
    return [p.name for p in Permission if p in perms and p.name]


def check_permission_rules(perms: Permission, *, has_allowlist: bool) -> None:
    """Raise :class:`InvalidPermissions` when ``perms`` break a rule.

    WITHDRAW and INTERNAL_TRANSFER need an IP allowlist.
    """
    if Permission.READ not in perms:
        raise InvalidPermissions("READ cannot be removed from a key")
    needing = perms & NEEDS_ALLOWLIST
    if needing and not has_allowlist:
        names = " and ".join(permission_names(needing))
        raise InvalidPermissions(f"{names} requires an IP allowlist (--ip)")

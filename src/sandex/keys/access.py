"""What an endpoint asks of a key, and the check that a key may do it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from sandex.keys.errors import AccessDenied
from sandex.keys.permissions import TRADING, Permission
from sandex.keys.policy import Mode

__all__ = ["Operation", "Access", "check_access"]


class Operation(enum.Enum):
    """The kind of thing a request does, which decides how the key's mode applies."""

    READ = "READ"
    PLACE_ORDER = "PLACE_ORDER"
    CANCEL_ORDER = "CANCEL_ORDER"
    MOVE_FUNDS = "MOVE_FUNDS"


@dataclass(frozen=True, slots=True)
class Access:
    """An endpoint's requirement: one permission and the operation it performs."""

    permission: Permission
    operation: Operation

    READ: ClassVar[Access]


Access.READ = Access(Permission.READ, Operation.READ)


def check_access(
    access: Access,
    *,
    permissions: Permission,
    mode: Mode,
    trade_lapses_at: int | None,
    now: int,
) -> None:
    """Raise :class:`AccessDenied` unless a key with these settings may perform ``access``.

    Messages contain "has no operation privilege" so that ccxt raises PermissionDenied.
    """
    needed = access.permission
    if needed not in permissions:
        raise AccessDenied(
            f"This API key has no operation privilege: {needed.name} is not enabled for it.",
            permission=needed.name,
        )
    op = access.operation
    if op is Operation.READ:
        return
    if (
        needed & TRADING
        and op is Operation.PLACE_ORDER
        and trade_lapses_at is not None
        and now >= trade_lapses_at
    ):
        raise AccessDenied(
            f"This API key has no operation privilege: {needed.name} lapsed because the key has"
            " no IP allowlist. Add an IP allowlist to trade again.",
            permission=needed.name,
        )
    if mode is Mode.NORMAL or op is Operation.CANCEL_ORDER:
        return
    if mode is Mode.CANCEL_ONLY and op is Operation.MOVE_FUNDS:
        return
    raise AccessDenied(
        f"This API key has no operation privilege for this request: it is {mode.value}"
        " (reads and cancels only)."
        if mode is Mode.FROZEN
        else "This API key has no operation privilege for new orders: it is CANCEL_ONLY.",
    )

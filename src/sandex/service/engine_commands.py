"""What a gateway asks the engine (commands) and what it hears back (a :class:`Reply`).

One interface at every size (DESIGN §7): a command in, its reply and the engine's
events out. In one process the gateway hands the command to the engine directly
(:class:`~sandex.service.exchange_core.LocalEngineLink`); scaled out, it travels over
the broker (:mod:`sandex.broker`). Either way the reply comes only once what the
command changed is durable.

Commands carry the key's id and risk policy: the policy's limits (open orders per
key, notional at the book's prices) can only be judged where the book is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from sandex.exchange import CancelAll, CancelOrder, CancelReplace, PlaceOrder, Rejected
from sandex.exchange.events import Event, ReplaceFailed
from sandex.exchange.order_lists import NewOco, NewOto, NewOtoco, OrderList
from sandex.exchange.venue import OrderRecord
from sandex.keys import RiskPolicy

__all__ = [
    "Place",
    "Check",
    "Cancel",
    "CancelOpen",
    "Replace",
    "PlaceList",
    "CancelList",
    "Snapshot",
    "Watch",
    "EngineCommand",
    "Reply",
    "PolicyRefusal",
    "EngineLink",
    "EngineUnavailable",
]


@dataclass(frozen=True, slots=True)
class Place:
    order: PlaceOrder
    key_id: int | None = None
    policy: RiskPolicy | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """``POST /api/v3/order/test``: every check of a new order, nothing placed."""

    order: PlaceOrder
    key_id: int | None = None
    policy: RiskPolicy | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    cancel: CancelOrder


@dataclass(frozen=True, slots=True)
class CancelOpen:
    """Cancel every open order of an account on a symbol."""

    cancel: CancelAll


@dataclass(frozen=True, slots=True)
class Replace:
    replace: CancelReplace
    key_id: int | None = None
    policy: RiskPolicy | None = None


@dataclass(frozen=True, slots=True)
class PlaceList:
    """Place an OCO, OTO or OTOCO; each of its orders passes the key's policy."""

    new: NewOco | NewOto | NewOtoco
    key_id: int | None = None
    policy: RiskPolicy | None = None


@dataclass(frozen=True, slots=True)
class CancelList:
    symbol: str
    account: int
    list_id: int | None
    list_client_order_id: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A gateway starting up asks for the books as they stand (see the read model)."""


@dataclass(frozen=True, slots=True)
class Watch:
    """Some gateway has user data subscriptions for ``accounts`` until ``until`` (ms):
    the engine makes their account events until then (no one else's). Sent before a
    subscription is answered, so that the client's next order is watched, and renewed
    while it lasts (:class:`~sandex.service.account_streams.AccountStreams`)."""

    accounts: tuple[int, ...]
    until: int


EngineCommand: TypeAlias = (
    Place | Check | Cancel | CancelOpen | Replace | PlaceList | CancelList | Watch
)


@dataclass(frozen=True, slots=True)
class PolicyRefusal:
    """The key's risk policy refused the order (:class:`~sandex.keys.PolicyViolation`)."""

    message: str
    limit: str


@dataclass(slots=True)
class Reply:
    """What one command did: the engine's events, and copies of the records of the
    orders it placed or canceled (taken when it was applied), in the order they
    happened; the order list it placed or canceled; or why it was refused."""

    events: list[Event] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    order_list: OrderList | None = None
    refusal: PolicyRefusal | None = None
    checked: Rejected | None = None
    """:class:`Check`'s answer (None: the order would be accepted)."""
    changed: bool = False
    """Whether the command changed the exchange (then it was journaled)."""

    @property
    def rejected(self) -> Rejected | None:
        first = self.events[0] if self.events else None
        return first if isinstance(first, Rejected) else None

    @property
    def replace_failed(self) -> ReplaceFailed | None:
        last = self.events[-1] if self.events else None
        return last if isinstance(last, ReplaceFailed) else None


class EngineUnavailable(Exception):
    """The engine did not answer in time (down, restarting, or the broker is away): the
    command may or may not have been applied (Binance's -1007)."""


class EngineLink(Protocol):
    """How a gateway reaches the engine."""

    async def submit(self, command: EngineCommand, now: int) -> Reply:
        """Apply ``command`` and return its reply once what it changed is durable
        (raises :class:`EngineUnavailable`)."""
        ...

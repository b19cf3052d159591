"""The user data stream's hub in a gateway: each account's events to its subscriptions.

The engine's committed account events (:mod:`sandex.exchange.account_events`) reach
every gateway process (in the server's own process, or over the broker) and are handed
to :meth:`AccountStreams.publish`. An event for an account nobody on this process
listens to costs a dictionary lookup; one that is listened to is made into Binance's
payload once (:func:`~sandex.service.account_views.account_payload`) and handed, as the
same text, to every subscription of that account (:class:`AccountSink`, a WebSocket API
connection's ``userDataStream.subscribe.signature``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

import orjson

from sandex.exchange import Symbol
from sandex.exchange.account_events import AccountEvent
from sandex.service.account_views import account_payload
from sandex.service.ports import Clock

__all__ = ["AccountSink", "AccountStreams"]

_log = logging.getLogger(__name__)


class AccountSink(Protocol):
    def deliver(self, event: str) -> None:
        """One event: ``event`` is the JSON text of Binance's event object
        (``{"e":"executionReport",...}``). Must not block (the connection queues it)."""


class AccountStreams:
    """Subscriptions by account, and the delivery of each account's events to them."""

    def __init__(self, symbols: Mapping[str, Symbol], clock: Clock) -> None:
        self._symbols = symbols
        self._now = clock.now
        self._sinks: dict[int, list[AccountSink]] = {}

    def subscribe(self, account: int, sink: AccountSink) -> None:
        sinks = self._sinks.setdefault(account, [])
        if sink not in sinks:
            sinks.append(sink)

    def unsubscribe(self, account: int, sink: AccountSink) -> None:
        sinks = self._sinks.get(account)
        if sinks is not None and sink in sinks:
            sinks.remove(sink)
            if not sinks:
                del self._sinks[account]

    def subscribers(self, account: int | None = None) -> int:
        """How many subscriptions there are (of ``account``, or in all)."""
        if account is not None:
            return len(self._sinks.get(account, ()))
        return sum(len(s) for s in self._sinks.values())

    def publish(self, events: Iterable[AccountEvent]) -> None:
        """Deliver ``events`` (in order) to their accounts' subscriptions. A payload
        that cannot be made is one log line; the others still go out."""
        sinks_of = self._sinks
        if not sinks_of:
            return
        now = self._now()
        for event in events:
            sinks = sinks_of.get(event.account)
            if not sinks:
                continue
            try:
                text = orjson.dumps(account_payload(event, self._symbols, now)).decode()
            except Exception as exc:  # a bug in one payload must not stop the stream
                _log.error(
                    "an account event of %s was not delivered: %s: %s",
                    type(event).__name__,
                    type(exc).__name__,
                    exc,
                )
                continue
            for sink in tuple(sinks):
                sink.deliver(text)

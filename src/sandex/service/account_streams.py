"""The user data stream's hub in a gateway: each account's events to its subscriptions.

The engine's committed account events (:mod:`sandex.exchange.account_events`) reach
every gateway process (in the server's own process, or over the broker) and are handed
to :meth:`AccountStreams.publish`. An event for an account nobody on this process
listens to costs a dictionary lookup; one that is listened to is made into Binance's
payload once (:func:`~sandex.service.account_views.account_payload`) and handed, as the
same text, to every subscription of that account (:class:`AccountSink`, a WebSocket API
connection's ``userDataStream.subscribe.signature``).

The engine makes account events only for accounts some gateway follows (copying an
order at each execution and carrying it over the broker costs the engine a third of its
throughput): a subscription tells the engine (:class:`~sandex.service.engine_commands.Watch`,
:meth:`AccountStreams.watch`) before it is answered, so the client's next order is
followed, and :meth:`AccountStreams.run` renews the watch of every account subscribed
here every :data:`WATCH_RENEW_S` for :data:`WATCH_MS` (a gateway that vanished stops
costing the engine a little later; an engine that restarted hears again within
:data:`WATCH_RENEW_S`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Final, Protocol

import orjson

from sandex.exchange import Symbol
from sandex.exchange.account_events import AccountEvent
from sandex.service.account_views import account_payload
from sandex.service.engine_commands import EngineLink, Watch
from sandex.service.failures import Quietly
from sandex.service.ports import Clock

__all__ = ["AccountSink", "AccountStreams", "WATCH_MS", "WATCH_RENEW_S"]

_log = logging.getLogger(__name__)

WATCH_MS: Final = 30_000
"""How long one watch lasts at the engine."""
WATCH_RENEW_S: Final = 5.0
"""How often this gateway renews the watch of the accounts subscribed here."""


class AccountSink(Protocol):
    def deliver(self, event: str) -> None:
        """One event: ``event`` is the JSON text of Binance's event object
        (``{"e":"executionReport",...}``). Must not block (the connection queues it)."""


class AccountStreams:
    """Subscriptions by account, and the delivery of each account's events to them."""

    def __init__(
        self, symbols: Mapping[str, Symbol], clock: Clock, link: EngineLink | None = None
    ) -> None:
        self._symbols = symbols
        self._now = clock.now
        self._sinks: dict[int, list[AccountSink]] = {}
        self.link = link
        """Where watches go (None: the engine makes every account's events)."""
        self._task: asyncio.Task[None] | None = None

    async def watch(self, account: int) -> None:
        """Tell the engine to make ``account``'s events (raises
        :class:`~sandex.service.engine_commands.EngineUnavailable`)."""
        if self.link is not None:
            now = self._now()
            await self.link.submit(Watch((account,), now + WATCH_MS), now)

    def start(self) -> None:
        """Renew the watches on the running loop (see the module)."""
        if self._task is None and self.link is not None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def run(self) -> None:
        """Every :data:`WATCH_RENEW_S`, renew the watch of every account subscribed here;
        a failure is one log line (then quiet until a renewal succeeds)."""
        failures = Quietly(
            _log,
            "user data watches not renewed at the engine; retrying",
            level=logging.WARNING,
            recovered="user data watches renewed at the engine again",
        )
        while True:
            await asyncio.sleep(WATCH_RENEW_S)
            accounts = tuple(self._sinks)
            if not accounts or self.link is None:
                continue
            now = self._now()
            try:
                await self.link.submit(Watch(accounts, now + WATCH_MS), now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.succeeded()

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

"""The AMI bridge: AMI events → call tracker → pops, call log, agent state, bus.

Order of work per event is deliberate: the pop (the agent is waiting for it) first, then
the call log (queued to its own writer), then the bus for other packages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from crm_core.db import Database
from crm_core.events import EventBus
from crm_core.lookup import NumberLookup
from cti.agent_state import AgentStates, MemberState
from cti.call_events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallIdentified,
    CallStarted,
    RingWithdrawn,
)
from cti.call_log import CallLogWriter
from cti.directory import AgentDirectory
from cti.pops import Extra, PopService, PopSink
from cti.tracker import AmiEventLike, CallTracker

log = logging.getLogger(__name__)
StateListener = Callable[[str, MemberState], Awaitable[None]]


class CtiBridge:
    def __init__(
        self, db: Database, bus: EventBus, sink: PopSink, open_requests: Extra | None = None
    ) -> None:
        self.db = db
        self.bus = bus
        self.finder = NumberLookup(db.settings)
        self.directory = AgentDirectory(db)
        self.pops = PopService(
            db, directory=self.directory, finder=self.finder, sink=sink, open_requests=open_requests
        )
        self.call_log = CallLogWriter(db, self.directory, self.finder, bus)
        self._pending: list[object] = []
        self.tracker = CallTracker(self._pending.append)
        self.agents = AgentStates()
        self.state_listeners: list[StateListener] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self.handled = 0
        self.lag_ns = 0  # of the last event: from its last byte read to handled

    async def start(self) -> None:
        await self.finder.open()
        await self.directory.reload()
        self.call_log.start()
        self._tasks.append(asyncio.create_task(self.pops.run_writer(), name="pop-writer"))

    async def stop(self) -> None:
        try:
            await self.call_log.stop()
            await self.pops.drain()
        finally:  # whatever failed above, the tasks end and the lookup connection closes
            await self.pops.stop()  # 360s in flight use the lookup and hold pooled connections
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
            await self.finder.close()

    async def drain(self) -> None:
        """Wait until everything handled so far is in the database (tests, shutdown)."""
        await self.call_log.drain()
        await self.pops.drain()

    async def on_event(self, event: Any) -> None:
        server = getattr(event, "server", "pbx")
        changed = self.agents.apply(server, event.name, event.headers)
        self.tracker.handle(server, event)
        await self._dispatch()
        if changed is not None:
            for listener in self.state_listeners:
                await listener(server, changed)
        self.handled += 1
        received = getattr(event, "received_ns", 0)
        if received:
            self.lag_ns = time.monotonic_ns() - received

    def handle_replay(self, server: str, event: AmiEventLike) -> None:
        """Feed a recorded event (tests): same path, without the AMI socket."""
        self.agents.apply(server, event.name, event.headers)
        self.tracker.handle(server, event)

    async def _dispatch(self) -> None:
        while self._pending:
            domain_event = self._pending.pop(0)
            await self._to_pops(domain_event)
            self.call_log.submit(domain_event)
            await self.bus.publish(domain_event)

    async def dispatch_pending(self) -> None:
        await self._dispatch()

    async def _to_pops(self, e: object) -> None:
        try:
            if isinstance(e, CallStarted):
                self.pops.on_started(e)
            elif isinstance(e, CallIdentified):
                self.pops.on_identified(e)
            elif isinstance(e, AgentRinging):
                await self.pops.on_ringing(e)
            elif isinstance(e, RingWithdrawn):
                await self.pops.on_withdrawn(e)
            elif isinstance(e, CallAnswered):
                await self.pops.on_answered(e)
            elif isinstance(e, CallEnded):
                await self.pops.on_ended(e)
        except Exception:
            log.exception("pop handling failed for %r", e)

    async def on_resync(self, server: str, snapshot: Any) -> None:
        """After every (re)connect: calls the PBX no longer has are ended, states reloaded."""
        live = {c.headers.get("Linkedid", "") for c in snapshot.channels}
        ended = self.tracker.resync(server, live)
        if ended:
            log.warning(
                "resync %s: %d call(s) lost while disconnected: %s",
                server,
                len(ended),
                ", ".join(ended),
            )
        await self._dispatch()
        self.agents.resync(server, snapshot.queues)

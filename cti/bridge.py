"""The AMI bridge: AMI events → call tracker → pops, call log, agent state, bus.

Order of work per event is deliberate: the pop (the agent is waiting for it) first, then
the call log (handed to its writer), then the bus for other packages.

The serving loop keeps only what a ring needs: AMI, the tracker, routing pops to sockets.
The database work that follows calls (building each caller's 360 while they are in the IVR,
the call log, the pop rows) runs on the CTI database thread, where its SQLAlchemy steps
cannot hold up a ring (measured with bench/pop_latency.py: they were most of the p99).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from cti.db_thread import DbThread
from cti.directory import AgentDirectory
from cti.pop_payload import Extra, Pop360Builder
from cti.pop_writer import PopWriter
from cti.pops import PopService, PopSink
from cti.tracker import AmiEventLike, CallTracker

log = logging.getLogger(__name__)
StateListener = Callable[[str, MemberState], Awaitable[None]]


class CtiBridge:
    def __init__(
        self, db: Database, bus: EventBus, sink: PopSink, open_requests: Extra | None = None
    ) -> None:
        self.db = db
        self.bus = bus
        self.directory = AgentDirectory(db)
        # The database work that follows calls (the 360s, the call log, the pop rows) runs on
        # its own thread and engine (see cti/db_thread.py); it is set up there at start().
        self.db_thread = DbThread(db.settings)
        self.open_requests = open_requests
        self._writers: _Writers | None = None
        self.pops = PopService(self.directory, sink, build=self._build_360, store=self._store_pop)
        self._pending: list[object] = []
        self.tracker = CallTracker(self._pending.append)
        self.agents = AgentStates()
        self.state_listeners: list[StateListener] = []
        self.handled = 0
        self.lag_ns = 0  # of the last event: from its last byte read to handled

    async def start(self) -> None:
        await self.directory.reload()
        self.db_thread.start()
        publisher = _ServingLoopBus(self.bus, asyncio.get_running_loop())
        try:
            self._writers = await self.db_thread.run(
                _Writers.open(self.db_thread, publisher, self.open_requests)
            )
        except BaseException:
            await self.db_thread.stop()
            raise

    async def stop(self) -> None:
        try:
            await self.pops.stop()  # the 360s in flight, before their engine closes
            if self._writers is not None:
                await self.db_thread.run(self._writers.close())
                await self._writers.publisher.settled()
        finally:  # whatever failed above, the thread ends and its connections close
            self._writers = None
            await self.db_thread.stop()

    async def drain(self) -> None:
        """Wait until everything handled so far is in the database (tests, shutdown)."""
        if self._writers is not None:
            await self.db_thread.run(self._writers.drain())
            await self._writers.publisher.settled()

    async def _build_360(self, caller: str, customer_id: int | None) -> dict[str, Any]:
        if self._writers is None:
            return {"match": "unknown", "number": caller}  # stopped: nothing to read with
        return await self.db_thread.run(self._writers.builder.build(caller, customer_id))

    def _store_pop(self, kind: str, data: dict[str, Any]) -> None:
        if self._writers is not None:
            self.db_thread.call_soon(self._writers.pops.submit, kind, data)

    def _log_call(self, event: object) -> None:
        if self._writers is not None:
            self.db_thread.call_soon(self._writers.call_log.submit, event)

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
            self._log_call(domain_event)
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


class _ServingLoopBus:
    """The bus as the database thread sees it: events are published on the serving loop,
    where the subscribers live. `settled()` waits for those publishes (drain, stop)."""

    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop) -> None:
        self.bus = bus
        self.loop = loop
        self._pending: set[concurrent.futures.Future[None]] = set()

    async def publish(self, event: object) -> None:
        future = asyncio.run_coroutine_threadsafe(self.bus.publish(event), self.loop)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    async def settled(self) -> None:
        pending = [asyncio.wrap_future(f) for f in list(self._pending)]
        await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class _Writers:
    """What lives on the database thread: the 360 builder, the call log and the pop rows,
    with their own directory and number lookup (an engine or driver connection is tied to
    the loop that uses it)."""

    call_log: CallLogWriter
    pops: PopWriter
    builder: Pop360Builder
    finder: NumberLookup
    publisher: _ServingLoopBus

    @classmethod
    async def open(
        cls, thread: DbThread, publisher: _ServingLoopBus, open_requests: Extra | None
    ) -> _Writers:
        assert thread.db is not None
        db = thread.db
        finder = await NumberLookup(db.settings).open()
        try:
            directory = AgentDirectory(db)
            await directory.reload()
        except BaseException:
            await finder.close()
            raise
        writers = cls(
            CallLogWriter(db, directory, finder, publisher),
            PopWriter(db),
            Pop360Builder(db, finder, open_requests),
            finder,
            publisher,
        )
        writers.call_log.start()
        writers.pops.start()
        return writers

    async def drain(self) -> None:
        await self.call_log.drain()
        await self.pops.drain()

    async def close(self) -> None:
        try:
            await self.call_log.stop()
            await self.pops.stop()
        finally:
            await self.finder.close()

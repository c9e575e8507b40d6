"""The AMI bridge: AMI events → call tracker → pops, call log, agent state, bus.

Order of work per event is deliberate: the pop (the agent is waiting for it) first, then
the call log (handed to its writer), then the bus for other packages.

The serving loop keeps only what a ring needs: AMI, the tracker, routing pops to sockets.
The database work that follows calls (building each caller's 360 while they are in the IVR,
the call log, the pop rows) runs in the CTI database worker, a process of its own, where its
SQLAlchemy steps cannot hold up a ring, not even for the GIL (cti/db_worker.py says why).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from crm_core.db import Database
from crm_core.events import EventBus
from cti.agent_state import AgentStates, MemberState
from cti.call_events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallIdentified,
    CallStarted,
    RingWithdrawn,
)
from cti.db_process import DbProcess, WorkerFailed
from cti.directory import AgentDirectory
from cti.outage_recovery import read_records, recovered_calls
from cti.pop_payload import Extra
from cti.pop_reads import open_pop_rows
from cti.pops import PopService, PopSink
from cti.resync_calls import ADOPTED_VARIABLES, SeenCall, seen_calls
from cti.takeover import close_orphans
from cti.tracker import AmiEventLike, CallTracker
from cti.tracker_resync import bring_up_to_date, log_recovered

log = logging.getLogger(__name__)
RECORDS_MARGIN_S = 15.0
StateListener = Callable[[str, MemberState], Awaitable[None]]
# Sees every raw AMI event after the tracker (supervisor spy legs: cti/supervise.py). Sync
# and quick: anything slow is the listener's own task.
EventListener = Callable[[str, AmiEventLike], None]
# (server, channel, variable names) -> their values: AMI Getvar, given by the composition root.
ChannelVariables = Callable[[str, str, Sequence[str]], Awaitable[dict[str, str]]]


class CtiBridge:
    def __init__(
        self, db: Database, bus: EventBus, sink: PopSink, open_requests: Extra | None = None
    ) -> None:
        self.db = db
        self.bus = bus
        self.directory = AgentDirectory(db)
        # The database work that follows calls (the 360s, the call log, the pop rows) runs in
        # a worker process with its own engine (see cti/db_worker.py), started at start().
        self.worker = DbProcess(db.settings, bus.publish, open_requests)
        self._running = False
        self.pops = PopService(self.directory, sink, build=self._build_360, store=self._store_pop)
        self._pending: list[object] = []
        self.tracker = CallTracker(self._pending.append)
        self.agents = AgentStates()
        self.state_listeners: list[StateListener] = []
        self.event_listeners: list[EventListener] = []
        self.channel_variables: ChannelVariables | None = None
        # Where this server's call records (CDR) and recordings are, if this host can read
        # them: after an outage, calls that began and ended meanwhile are logged from them.
        self.call_records: Callable[[str], Path | None] | None = None
        self.recording_of: Callable[[str, str], str | None] | None = None
        self.taking_over: set[str] = set()  # servers whose next resync is a takeover's
        self.handled = 0
        self.lag_ns = 0  # of the last event: from its last byte read to handled

    async def start(self) -> None:
        await self.directory.reload()
        await self.worker.start()
        self._running = True

    async def stop(self) -> None:
        try:
            await self.pops.stop()  # the 360s in flight, before the worker's engine closes
        finally:  # whatever failed above, the worker writes what it has and ends
            self._running = False
            await self.worker.stop()

    async def drain(self) -> None:
        """Wait until everything handled so far is in the database (tests, shutdown)."""
        if self._running:
            await self.worker.call("drain")
            await self.worker.settled()

    async def _build_360(self, caller: str, customer_id: int | None) -> dict[str, Any]:
        unknown = {"match": "unknown", "number": caller}
        if not self._running:
            return unknown  # stopped: nothing to read with
        try:
            result: dict[str, Any] = await self.worker.call("build", caller, customer_id)
        except WorkerFailed as exc:
            log.warning("pop: no 360 for %s: %s", caller, exc)
            return unknown
        return result

    def _store_pop(self, kind: str, data: dict[str, Any]) -> None:
        if self._running:
            self.worker.send("pop", kind, data)

    def _log_call(self, event: object) -> None:
        if self._running:
            self.worker.send("log", event)

    def set_fence(self, epochs: dict[str, int]) -> None:
        """The lease epochs the call-state writes of this node are made under (a cluster's
        AMI leader; crm_core/cluster/fence.py). The worker applies them at once, to the writes
        it still has queued too."""
        if self._running:
            self.worker.send("fence", dict(epochs))

    def forget(self, server: str) -> None:
        """This node no longer leads `server`: drop what it knew of its calls, pops and
        agents, silently. Ending them here would log and pop what the new leader now owns."""
        for key in [k for k in self.tracker.calls if k[0] == server]:
            del self.tracker.calls[key]
        self.pops.forget(server)
        for member in [k for k in self.agents.members if k[0] == server]:
            del self.agents.members[member]

    async def on_event(self, event: Any) -> None:
        server = getattr(event, "server", "pbx")
        changed = self.agents.apply(server, event.name, event.headers)
        self.tracker.handle(server, event)
        await self._dispatch()
        for listen in self.event_listeners:
            try:
                listen(server, event)
            except Exception:
                log.exception("AMI event listener failed on %s", event.name)
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
        """After every (re)connect: calls the PBX no longer has are ended, calls it has that
        we do not know (they began while the link was down) are adopted, known calls catch
        up, agent states are reloaded (cti/tracker_resync.py)."""
        now = time.time()
        seen = seen_calls(snapshot.channels, snapshot.queues)
        unknown = [s for s in seen if (server, s.linkedid) not in self.tracker.calls]
        if unknown and self.channel_variables is not None:
            await asyncio.gather(*(self._read_variables(server, s) for s in unknown))
        if unknown:
            await self._restore_pops(server, [s.linkedid for s in unknown])
        adopted = [s.linkedid for s in seen if bring_up_to_date(self.tracker, server, s, now)]
        live = {c.headers.get("Linkedid", "") for c in snapshot.channels}
        outage_ns = getattr(snapshot, "outage_ns", None)
        if outage_ns:
            adopted += await self._recover_ended(server, live, now - outage_ns / 1e9)
        if server in self.taking_over:
            self.taking_over.discard(server)
            adopted += await self._close_orphans(server, live)
        ended = self.tracker.resync(server, live)
        if adopted or ended or outage_ns:
            down = f"down {outage_ns / 1e9:.1f} s" if outage_ns else "new"
            log.warning(
                "resync %s (link %s): %d call(s) that began meanwhile recovered%s; "
                "%d call(s) lost%s",
                server,
                down,
                len(adopted),
                f" ({', '.join(adopted)})" if adopted else "",
                len(ended),
                f" ({', '.join(ended)})" if ended else "",
            )
        await self._dispatch()
        self.agents.resync(server, snapshot.queues)

    def begin_takeover(self, server: str) -> None:
        """This node has just taken `server` over from another: its first resync also closes
        the calls the call log shows open but the PBX no longer has (cti/takeover.py)."""
        self.taking_over.add(server)

    async def _close_orphans(self, server: str, live: set[str]) -> list[str]:
        records = self.call_records(server) if self.call_records is not None else None
        try:
            return await close_orphans(
                self.db, self.tracker, server, live, records, self.recording_of
            )
        except Exception:
            log.exception("takeover %s: could not close the calls that ended meanwhile", server)
            return []

    async def _restore_pops(self, server: str, linkedids: list[str]) -> None:
        """Pops sent for these calls before this process adopted them (a cluster's previous
        leader, or this process before a restart) are taken over, not sent again."""
        try:
            self.pops.restore(server, await open_pop_rows(self.db, server, linkedids))
        except Exception:
            log.exception("resync %s: could not read the open pops of adopted calls", server)

    async def _recover_ended(self, server: str, live: set[str], since: float) -> list[str]:
        """Calls that began and ended while the link was down, from the PBX's call records
        (cti/outage_recovery.py); only where the composition root can reach that file."""
        path = self.call_records(server) if self.call_records is not None else None
        if path is None:
            return []
        # A few seconds before the drop: the link notices a dead peer only after a ping.
        records = await asyncio.to_thread(read_records, path, since - RECORDS_MARGIN_S)
        recovered = []
        for call in recovered_calls(records):
            # Only calls that began during the outage: one that began before it was seen (or
            # belongs to an earlier run of this process) and is not ours to log again.
            if call.linkedid in live or call.started_at < since - RECORDS_MARGIN_S:
                continue
            recording = self.recording_of(server, call.linkedid) if self.recording_of else None
            if log_recovered(self.tracker, server, call, recording):
                recovered.append(call.linkedid)
        return recovered

    async def _read_variables(self, server: str, seen: SeenCall) -> None:
        """The recording, customer and keyed request of a call we did not see begin."""
        assert self.channel_variables is not None
        try:
            seen.variables = await self.channel_variables(
                server, seen.caller.channel, ADOPTED_VARIABLES
            )
        except Exception:
            log.exception("resync %s: could not read the variables of %s", server, seen.linkedid)

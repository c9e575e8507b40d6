"""After-call work (话后处理): the agent's wrap-up after an answered queue call.

Asterisk keeps a member out of the queue for the queue's `wrapuptime` after each call on its
own; this service mirrors that period for the desktop (countdown) and the wallboard, records
it on the call, and adds the one extension an agent may ask for. Asterisk cannot lengthen its
wrapuptime for one member, so the extension is a QueuePause with the reason WRAPUP_REASON,
undone when the extended period ends.

The pause is the PBX's state, so it is handled as such: the timer unpauses only a phone that is
still paused for wrap-up (a break the agent took meanwhile stays), a restart reloads unfinished
wrap-ups from the calls table, and every AMI resync releases wrap-up pauses nobody owns any
more (a crash, or a failed unpause).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import cti.wrapup_store as store
from crm_core.db import Database
from crm_core.errors import HotlineError
from cti.agent_state import WRAPUP_REASON, AgentStates
from cti.call_events import AgentCompleted
from cti.queue_membership import ActionSender, set_pause

log = logging.getLogger(__name__)
# The queue's wrap-up seconds, resolved as the PBX configuration renders them.
SecondsFor = Callable[[str | None], Awaitable[int]]
Resolve = Callable[[str, str], Awaitable[int | None]]  # (interface, member) -> user id
Notify = Callable[[int, dict[str, Any]], Awaitable[object]]  # (user id, message)
LOG_LAG_RETRIES = (0.2, 0.5, 1.0, 2.0)  # the call log is written by another process


class WrapUpOver(HotlineError):
    status = 409
    error_id = "wrapup_over"


class AlreadyExtended(HotlineError):
    status = 409
    error_id = "wrapup_already_extended"


class NotYourWrapUp(HotlineError):
    status = 403
    error_id = "not_your_wrapup"


@dataclass
class WrapUp:
    server: str
    linkedid: str
    interface: str
    agent_id: int | None
    queue: str | None
    started: float  # epoch: when the agent left the call
    until: float
    extension: float  # what the one extension adds: the queue's wrap-up time again
    call_id: int | None = None
    extended: bool = False

    def message(self) -> dict[str, Any]:
        now = time.time()
        return {
            "type": "wrapup",
            "call_id": self.call_id,
            "linkedid": self.linkedid,
            "queue": self.queue,
            "started_at": self.started,
            "until": self.until,
            "seconds_left": round(max(0.0, self.until - now), 1),
            "extended": self.extended,
            "can_extend": not self.extended and self.extension > 0,
        }


class WrapUpService:
    def __init__(
        self,
        db: Database,
        agents: AgentStates,
        ami: ActionSender,
        seconds_for: SecondsFor,
        resolve: Resolve,
        notify: Notify,
    ) -> None:
        self.db, self.agents, self.ami = db, agents, ami
        self.seconds_for, self.resolve, self.notify = seconds_for, resolve, notify
        self.active: dict[str, WrapUp] = {}  # by agent interface: one wrap-up per phone
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for row in await store.unfinished(self.db):
            seconds = await self.seconds_for(row.queue)
            started = row.until - seconds * (2 if row.extended else 1)
            wrapup = WrapUp(
                row.server, row.linkedid, row.interface, row.agent_id, row.queue,
                started, row.until, float(seconds), row.call_id, row.extended,
            )  # fmt: skip
            self.hold(wrapup)
        self._task = asyncio.create_task(self._run(), name="wrap-up-timer")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._jobs) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def on_agent_completed(self, event: AgentCompleted) -> None:
        """Bus handler. The AMI pump is waiting for it: the database work runs as a task."""
        if event.interface:
            job = asyncio.create_task(self._begin(event))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)

    async def _begin(self, e: AgentCompleted) -> None:
        try:
            seconds = await self.seconds_for(e.queue)
            previous = self.active.get(e.interface)
            if previous is not None:  # a new call ended the previous after-call work
                await self._finish(previous, e.at)
            if seconds <= 0:
                return
            agent_id = await self.resolve(e.interface, e.member_name)
            wrapup = WrapUp(
                e.server, e.linkedid, e.interface, agent_id, e.queue,
                e.at, e.at + seconds, float(seconds),
            )  # fmt: skip
            self.hold(wrapup)
            wrapup.call_id = await self._stored(e.server, e.linkedid, wrapup.until)
            await self._tell(wrapup, wrapup.message())
        except Exception:
            log.exception("wrap-up: could not start for %s", e.interface)

    async def _stored(self, server: str, linkedid: str, until: float) -> int | None:
        for delay in (*LOG_LAG_RETRIES, None):
            call_id = await store.begin(self.db, server, linkedid, until)
            if call_id is not None or delay is None:
                return call_id
            await asyncio.sleep(delay)
        return None

    def hold(self, wrapup: WrapUp) -> None:
        """Track a running wrap-up (the service's own, or one a test sets up)."""
        self.active[wrapup.interface] = wrapup
        self.agents.set_wrapup(wrapup.interface, wrapup.until)
        self._wake.set()

    def for_agent(self, user_id: int) -> WrapUp | None:
        return next((w for w in self.active.values() if w.agent_id == user_id), None)

    def for_call(self, server: str, linkedid: str) -> WrapUp | None:
        return next(
            (w for w in self.active.values() if (w.server, w.linkedid) == (server, linkedid)),
            None,
        )

    async def extend(self, user_id: int, server: str, linkedid: str) -> WrapUp:
        """Once per call: the wrap-up grows by the queue's wrap-up time, and the phone is
        paused for it (Asterisk's own wrapuptime only covers the first period)."""
        wrapup = self.for_call(server, linkedid)
        if wrapup is None:
            raise WrapUpOver("this call's after-call work is already over")
        if wrapup.agent_id != user_id:
            raise NotYourWrapUp("only the agent who took the call can extend its wrap-up")
        if wrapup.extended or wrapup.extension <= 0:
            raise AlreadyExtended("the after-call work can be extended once per call")
        wrapup.extended = True
        wrapup.until += wrapup.extension
        self.hold(wrapup)
        if wrapup.call_id is not None:
            await store.extend(self.db, wrapup.call_id, wrapup.until)
        if not self.agents.paused_otherwise(wrapup.interface):
            await set_pause(self.ami, wrapup.server, wrapup.interface, True, WRAPUP_REASON)
        await self._tell(wrapup, wrapup.message())
        return wrapup

    async def finish_call(self, server: str, linkedid: str) -> float | None:
        """The agent saved the disposition: their after-call work is done (see the caller)."""
        wrapup = self.for_call(server, linkedid)
        if wrapup is None:
            return None
        return await self._finish(wrapup, time.time())

    async def _finish(self, wrapup: WrapUp, at: float) -> float:
        if self.active.get(wrapup.interface) is wrapup:
            del self.active[wrapup.interface]
            self.agents.set_wrapup(wrapup.interface, None)
        seconds = max(0.0, min(at, wrapup.until) - wrapup.started)
        if wrapup.call_id is not None:
            await store.finish(self.db, wrapup.call_id, seconds)
        if wrapup.extended and self.agents.wrapup_pause(wrapup.interface):
            await self._unpause(wrapup.server, wrapup.interface)
        ended = {"type": "wrapup.ended", "call_id": wrapup.call_id, "linkedid": wrapup.linkedid}
        await self._tell(wrapup, {**ended, "wrapup_seconds": round(seconds, 1)})
        return seconds

    async def _unpause(self, server: str, interface: str) -> None:
        try:
            await set_pause(self.ami, server, interface, False, "")
        except Exception:  # the next resync releases it (reconcile)
            log.exception("wrap-up: could not unpause %s; retried at the next resync", interface)

    async def _tell(self, wrapup: WrapUp, message: dict[str, Any]) -> None:
        if wrapup.agent_id is not None:
            await self.notify(wrapup.agent_id, message)

    async def reconcile(self, server: str) -> None:
        """After an AMI (re)connect, with the member states fresh from QueueStatus: release
        wrap-up pauses no running wrap-up owns; pause again an extended one the PBX forgot."""
        owned = {w.interface for w in self.active.values() if w.extended and w.server == server}
        interfaces = {m.interface for m in self.agents.all()}
        for interface in sorted(interfaces):
            paused = self.agents.wrapup_pause(interface)
            if paused and interface not in owned:
                await self._unpause(server, interface)
            elif interface in owned and not paused and not self.agents.paused_otherwise(interface):
                try:
                    await set_pause(self.ami, server, interface, True, WRAPUP_REASON)
                except Exception:
                    log.exception("wrap-up: could not pause %s again", interface)

    async def _run(self) -> None:
        while True:
            now = time.time()
            for wrapup in [w for w in self.active.values() if w.until <= now]:
                try:
                    await self._finish(wrapup, wrapup.until)
                except Exception:
                    log.exception("wrap-up: could not finish %s", wrapup.interface)
                    self.active.pop(wrapup.interface, None)
            self._wake.clear()
            deadlines = [w.until for w in self.active.values()]
            timeout = max(0.0, min(deadlines) - time.time()) if deadlines else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

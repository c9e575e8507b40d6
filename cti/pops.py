"""Screen pops: the right agent's browser learns who is calling while the phone rings.

The customer 360 is assembled when the call enters (seconds before any agent rings), so
`AgentRinging` only has to route an already-built payload. Pops are kept in memory per
agent, so a reconnecting browser gets the current state back; receipts and the pop rows are
written to the database off the hot path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.customer360 import customer_360
from crm_core.db import Database
from crm_core.lookup import NumberLookup
from cti.call_events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallIdentified,
    CallStarted,
    RingWithdrawn,
)
from cti.directory import AgentDirectory
from cti.models import Call, ScreenPop

log = logging.getLogger(__name__)
PROTOCOL_VERSION = 1
RECENT_CALLS = 5
MAX_REMEMBERED = 50_000
Extra = Callable[[int], Awaitable[list[dict[str, Any]]]]


class PopSink(Protocol):
    """Where pops go: the WebSocket hub, which knows each agent's open tabs. A `str` message
    is JSON text already encoded (pops are, so the ring does not pay for encoding the 360)."""

    async def send_to_user(self, user_id: int, message: dict[str, Any] | str) -> int: ...


def encode_members(payload: dict[str, Any]) -> str:
    """A JSON object's members without the braces, ready to splice into a bigger object."""
    return json.dumps(payload, ensure_ascii=False, default=str)[1:-1]


@dataclass
class Pop:
    id: str
    user_id: int
    server: str
    linkedid: str
    ring_id: str
    state: str
    caller: str
    queue: str | None
    rang_at: float
    payload: dict[str, Any]

    def _fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "linkedid": self.linkedid,
            "caller": self.caller,
            "queue": self.queue,
            "rang_at": self.rang_at,
        }

    def message(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "type": "pop", "pop": {**self._fields(), **self.payload}}

    def encoded(self, payload_members: str | None = None) -> str:
        """`message()` as JSON text. Given the payload already encoded (the 360, the bulk of
        it, is encoded when the call enters), only the few pop fields are encoded here."""
        members = payload_members or encode_members(self.payload)
        fields = encode_members(self._fields())
        return f'{{"v": {PROTOCOL_VERSION}, "type": "pop", "pop": {{{fields}, {members}}}}}'


@dataclass
class CallContext:
    caller: str
    task: asyncio.Task[dict[str, Any]]
    pops: dict[str, Pop] = field(default_factory=dict)  # by ring id
    # The current 360 with its JSON members. The dict itself is held, not its id(): an id
    # can be reused by a new dict once a replaced 360 (CallIdentified) is freed.
    encoded: tuple[dict[str, Any], str] | None = None

    def members(self, payload: dict[str, Any]) -> str | None:
        """The payload's JSON members if it is the built 360, encoded once for every agent
        it rings (ring-all); None for a stand-in payload (pending, unknown)."""
        if self.encoded is not None and self.encoded[0] is payload:
            return self.encoded[1]
        return None

    def encode_when_built(self) -> None:
        """Encode the 360 as soon as it is built, while the caller is still in the IVR."""

        def done(task: asyncio.Task[dict[str, Any]]) -> None:
            if task is self.task and not task.cancelled() and task.exception() is None:
                self.encoded = (task.result(), encode_members(task.result()))

        self.task.add_done_callback(done)


class PopService:
    def __init__(
        self,
        db: Database,
        directory: AgentDirectory,
        finder: NumberLookup,
        sink: PopSink,
        open_requests: Extra | None = None,
    ) -> None:
        self.db = db
        self.directory = directory
        self.finder = finder
        self.sink = sink
        self.open_requests = open_requests
        self.calls: dict[tuple[str, str], CallContext] = {}
        self.by_user: dict[int, dict[str, Pop]] = {}
        self.writes: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._background: set[asyncio.Task[None]] = set()
        # Every 360 being built: each holds a pooled connection and the lookup while it runs,
        # and a call that ends (or is identified again) drops its reference to the task.
        self._builds: set[asyncio.Task[dict[str, Any]]] = set()
        self.owners: dict[str, int] = {}  # pop id → agent, for receipts (bounded below)

    # -- building the payload, while the caller is still in the IVR ---------------------
    async def _payload_for_customer(self, customer_id: int) -> dict[str, Any] | None:
        snapshot = await customer_360(self.db, customer_id)
        if snapshot is None:
            return None
        snapshot["recent_calls"] = await self._recent_calls(customer_id)
        if self.open_requests is not None:
            snapshot["open_requests"] = await self.open_requests(customer_id)
        return {"match": "customer", "customer_360": snapshot}

    async def _recent_calls(self, customer_id: int) -> list[dict[str, Any]]:
        calls = Call.__table__
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        calls.c.id,
                        calls.c.direction,
                        calls.c.entered_at,
                        calls.c.outcome,
                        calls.c.talk_seconds,
                        calls.c.recording_path,
                        calls.c.disposition,
                    )
                    .where(calls.c.customer_id == customer_id, calls.c.status == "ended")
                    .order_by(calls.c.entered_at.desc())
                    .limit(RECENT_CALLS)
                )
            ).all()
        return [
            {
                "id": r.id,
                "direction": r.direction,
                "at": r.entered_at.isoformat(),
                "outcome": r.outcome,
                "talk_seconds": r.talk_seconds,
                "has_recording": bool(r.recording_path),
                "disposition": r.disposition,
            }
            for r in rows
        ]

    async def build(self, caller: str, customer_id: int | None) -> dict[str, Any]:
        if customer_id is not None:
            found = await self._payload_for_customer(customer_id)
            if found is not None:
                return found
        candidates = await self.finder.find(caller)
        customers = {c.customer_id for c in candidates}
        if len(customers) == 1:
            found = await self._payload_for_customer(customers.pop())
            if found is not None:
                found["candidates"] = [c.as_dict() for c in candidates]
                return found
        if candidates:
            return {"match": "candidates", "candidates": [c.as_dict() for c in candidates]}
        return {"match": "unknown", "number": caller}

    # -- bus handlers --------------------------------------------------------------------
    def _start_build(
        self, caller: str, customer_id: int | None, linkedid: str
    ) -> asyncio.Task[dict[str, Any]]:
        task = asyncio.create_task(self.build(caller, customer_id), name=f"pop-360-{linkedid}")
        self._builds.add(task)
        task.add_done_callback(self._builds.discard)
        return task

    def on_started(self, e: CallStarted) -> None:
        context = CallContext(e.caller, self._start_build(e.caller, None, e.linkedid))
        context.encode_when_built()
        self.calls[(e.server, e.linkedid)] = context

    def on_identified(self, e: CallIdentified) -> None:
        context = self.calls.get((e.server, e.linkedid))
        if context is not None:
            context.task = self._start_build(context.caller, e.customer_id, e.linkedid)
            context.encode_when_built()

    @staticmethod
    def _payload(context: CallContext | None, caller: str) -> dict[str, Any]:
        """The 360 if it is ready; never wait for it. A wait here would hold up every event
        behind this one (events are handled in order), so an unready 360 goes out as
        `pending` and follows in a second message."""
        if context is None:
            return {"match": "unknown", "number": caller}
        task = context.task
        if not task.done():
            return {"match": "pending", "number": caller}
        if task.cancelled() or task.exception() is not None:
            log.error(
                "pop: customer 360 failed for %s: %r",
                caller,
                None if task.cancelled() else task.exception(),
            )
            return {"match": "unknown", "number": caller}
        return task.result()

    async def on_ringing(self, e: AgentRinging) -> None:
        agent = await self.directory.resolve(e.interface, e.member_name)
        if agent is None:
            log.warning("pop: no user has phone %s (member %s)", e.interface, e.member_name)
            return
        context = self.calls.get((e.server, e.linkedid))
        pop = Pop(
            str(uuid.uuid4()),
            agent.user_id,
            e.server,
            e.linkedid,
            e.ring_id,
            "ringing",
            e.caller,
            e.queue,
            e.at,
            self._payload(context, e.caller),
        )
        if context is not None:
            context.pops[e.ring_id] = pop
        self.by_user.setdefault(agent.user_id, {})[pop.id] = pop
        self.owners[pop.id] = agent.user_id
        if len(self.owners) > MAX_REMEMBERED:
            del self.owners[next(iter(self.owners))]
        members = context.members(pop.payload) if context is not None else None
        await self.sink.send_to_user(agent.user_id, pop.encoded(members))
        self.writes.put_nowait(("insert", {"pop": pop}))
        if pop.payload.get("match") == "pending" and context is not None:
            task = asyncio.create_task(self._complete_later(pop, context))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _complete_later(self, pop: Pop, context: CallContext) -> None:
        """A pop that went out before its 360 was ready gets the full payload when it is."""
        try:
            pop.payload = await context.task
        except Exception:
            return
        if pop.state in ("ringing", "connected"):
            await self.sink.send_to_user(pop.user_id, pop.message())

    async def _update(self, pop: Pop, state: str, **extra: Any) -> None:
        if pop.state == state:
            return
        pop.state = state
        message = {
            "v": PROTOCOL_VERSION,
            "type": "pop.update",
            "pop_id": pop.id,
            "state": state,
            **extra,
        }
        await self.sink.send_to_user(pop.user_id, message)
        self.writes.put_nowait(("state", {"pop": pop}))
        if state in ("withdrawn", "ended"):
            self.by_user.get(pop.user_id, {}).pop(pop.id, None)

    async def on_withdrawn(self, e: RingWithdrawn) -> None:
        context = self.calls.get((e.server, e.linkedid))
        pop = context.pops.get(e.ring_id) if context else None
        if pop is not None and pop.state == "ringing":
            await self._update(pop, "withdrawn", reason=e.reason)

    async def on_answered(self, e: CallAnswered) -> None:
        context = self.calls.get((e.server, e.linkedid))
        pop = context.pops.get(e.ring_id or "") if context else None
        if pop is not None:
            await self._update(pop, "connected")

    async def on_ended(self, e: CallEnded) -> None:
        context = self.calls.pop((e.server, e.linkedid), None)
        if context is None:
            return
        for pop in context.pops.values():
            if pop.state in ("ringing", "connected"):
                await self._update(pop, "ended", outcome=e.outcome.value)

    def active_for(self, user_id: int) -> list[dict[str, Any]]:
        """Pops a (re)connecting browser must show, oldest first."""
        pops = sorted(self.by_user.get(user_id, {}).values(), key=lambda p: p.rang_at)
        return [p.message()["pop"] for p in pops]

    def receipt(self, user_id: int, pop_id: str, stage: str) -> bool:
        """The browser says a pop arrived (`delivered`) or is on screen (`displayed`).

        Queued behind the pop's own insert, so an instant acknowledgement is never lost."""
        if stage not in ("delivered", "displayed") or self.owners.get(pop_id) != user_id:
            return False
        self.writes.put_nowait(
            (
                "receipt",
                {"pop_id": pop_id, "user_id": user_id, "stage": stage, "at": datetime.now(UTC)},
            )
        )
        return True

    # -- persistence worker ---------------------------------------------------------------
    async def run_writer(self) -> None:
        while True:
            batch = [await self.writes.get()]
            while not self.writes.empty() and len(batch) < 500:
                batch.append(self.writes.get_nowait())
            try:
                async with self.db.transaction() as session:
                    for kind, data in batch:
                        await self._write(session, kind, data)
            except Exception:
                log.exception("pop: could not store %d pop change(s)", len(batch))
            finally:
                for _ in batch:
                    self.writes.task_done()

    async def _write(self, session: AsyncSession, kind: str, data: dict[str, Any]) -> None:
        if kind == "receipt":
            column = "delivered_at" if data["stage"] == "delivered" else "displayed_at"
            await session.execute(
                update(ScreenPop)
                .where(
                    ScreenPop.id == data["pop_id"],
                    ScreenPop.agent_id == data["user_id"],
                    getattr(ScreenPop, column).is_(None),
                )
                .values({column: data["at"]})
            )
            return
        pop: Pop = data["pop"]
        if kind == "insert":
            session.add(
                ScreenPop(
                    id=pop.id,
                    server=pop.server,
                    linkedid=pop.linkedid,
                    ring_id=pop.ring_id,
                    agent_id=pop.user_id,
                    state=pop.state,
                    payload=pop.message()["pop"],
                )
            )
            await session.flush()
        else:
            closed = datetime.now(UTC) if pop.state in ("withdrawn", "ended") else None
            await session.execute(
                update(ScreenPop)
                .where(ScreenPop.id == pop.id)
                .values(state=pop.state, closed_at=closed)
            )

    async def drain(self) -> None:
        await self.writes.join()

    async def stop(self, grace: float = 5.0) -> None:
        """Shutdown: let the 360s and late pops in flight finish, cancel what is left after
        `grace`. Before the lookup and the engine close: a build still holding a pooled
        connection when the engine is disposed returns it to the discarded pool, where it is
        never closed (an unclosed aiosqlite connection, found later by the GC)."""
        pending = self._builds | self._background
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

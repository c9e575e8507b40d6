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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cti.call_events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallIdentified,
    CallStarted,
    RingWithdrawn,
)
from cti.directory import AgentDirectory

log = logging.getLogger(__name__)
PROTOCOL_VERSION = 1
MAX_REMEMBERED = 50_000
Build360 = Callable[[str, int | None], Coroutine[Any, Any, dict[str, Any]]]


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

    def row(self, pop_json: str | None = None) -> dict[str, Any]:
        """The pop's database row, copied now (the writer runs on another thread). Its
        `payload` is the pop object as JSON text (`encoded_pop`), stored as it is."""
        return {
            "id": self.id,
            "server": self.server,
            "linkedid": self.linkedid,
            "ring_id": self.ring_id,
            "agent_id": self.user_id,
            "state": self.state,
            "payload": pop_json or self.encoded_pop(),
        }

    def message(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "type": "pop", "pop": {**self._fields(), **self.payload}}

    def encoded_pop(self, payload_members: str | None = None) -> str:
        """`message()["pop"]` as JSON text. Given the payload already encoded (the 360, the
        bulk of it, is encoded when the call enters), only the few pop fields are encoded."""
        members = payload_members or encode_members(self.payload)
        return f"{{{encode_members(self._fields())}, {members}}}"

    def encoded(self, payload_members: str | None = None) -> str:
        """`message()` as JSON text (see `encoded_pop`)."""
        return wrap_pop(self.encoded_pop(payload_members))


def wrap_pop(pop_json: str) -> str:
    """The pop message around a pop object already encoded."""
    return f'{{"v": {PROTOCOL_VERSION}, "type": "pop", "pop": {pop_json}}}'


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
        directory: AgentDirectory,
        sink: PopSink,
        build: Build360,
        store: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.directory = directory
        self.sink = sink
        # Builds a caller's 360 (the bridge asks the CTI database worker process).
        self.build = build
        self.calls: dict[tuple[str, str], CallContext] = {}
        self.by_user: dict[int, dict[str, Pop]] = {}
        # Where pop rows go (the bridge sends them to the CTI database worker process).
        self.store: Callable[[str, dict[str, Any]], None] = store or (lambda _kind, _data: None)
        self._background: set[asyncio.Task[None]] = set()
        # Every 360 being built: each holds a pooled connection and the lookup while it runs,
        # and a call that ends (or is identified again) drops its reference to the task.
        self._builds: set[asyncio.Task[dict[str, Any]]] = set()
        self.owners: dict[str, int] = {}  # pop id → agent, for receipts (bounded below)
        # Pops another node (a cluster's previous leader) sent for calls this node is
        # adopting, by call: they are taken over, not sent again (restore()).
        self.restored: dict[tuple[str, str], dict[str, Pop]] = {}

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
        context.pops.update(self.restored.pop((e.server, e.linkedid), {}))
        self.calls[(e.server, e.linkedid)] = context

    def restore(self, server: str, rows: list[dict[str, Any]]) -> None:
        """Take over pops already sent for calls about to be adopted (pop_reads.py rows):
        their later updates (connected, ended) go to the same pop ids, and the adopted
        rings they stand for pop nothing again."""
        for row in rows:
            pop = Pop(
                row["id"],
                int(row["agent_id"]),
                server,
                row["linkedid"],
                row["ring_id"],
                row["state"],
                row["caller"],
                row["queue"],
                row["rang_at"],
                row["payload"],
            )
            self.restored.setdefault((server, pop.linkedid), {})[pop.ring_id] = pop
            self.by_user.setdefault(pop.user_id, {})[pop.id] = pop
            self.owners[pop.id] = pop.user_id

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
        if context is not None and e.ring_id in context.pops:
            return  # popped already, by the node that led this server before (restore())
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
        # Encoded once, for the agent's browser and for the pop's row.
        pop_json = pop.encoded_pop(members)
        await self.sink.send_to_user(agent.user_id, wrap_pop(pop_json))
        self.store("insert", pop.row(pop_json))
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
        closed = datetime.now(UTC) if state in ("withdrawn", "ended") else None
        self.store("state", {"id": pop.id, "state": state, "closed_at": closed})
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

    def forget(self, server: str) -> None:
        """Drop the calls and pops of a server this node no longer leads (no messages)."""
        self.restored = {k: v for k, v in self.restored.items() if k[0] != server}
        for key in [k for k in self.calls if k[0] == server]:
            context = self.calls.pop(key)
            context.task.cancel()
        for pops in self.by_user.values():
            for pop_id in [i for i, p in pops.items() if p.server == server]:
                del pops[pop_id]

    def active_for(self, user_id: int) -> list[dict[str, Any]]:
        """Pops a (re)connecting browser must show, oldest first."""
        pops = sorted(self.by_user.get(user_id, {}).values(), key=lambda p: p.rang_at)
        return [p.message()["pop"] for p in pops]

    def receipt(self, user_id: int, pop_id: str, stage: str) -> bool:
        """The browser says a pop arrived (`delivered`) or is on screen (`displayed`).

        Queued behind the pop's own insert, so an instant acknowledgement is never lost."""
        if stage not in ("delivered", "displayed") or self.owners.get(pop_id) != user_id:
            return False
        self.store(
            "receipt",
            {"pop_id": pop_id, "user_id": user_id, "stage": stage, "at": datetime.now(UTC)},
        )
        return True

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

"""The call log: one row per call, written from the tracker's events.

Writes go through one queue and one worker, in event order, off the pop's hot path: a slow
disk delays the log, never a screen pop. Every write is idempotent (keyed by server and
Linkedid), so a replayed or duplicated event cannot create a second row.

The writes are Core statements (cti/call_log_sql.py), not ORM objects: this runs on the CTI
database worker (cti/db_worker.py), and its CPU is CPU the serving process may need.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Update

from crm_core.cluster.fence import Fence, FencedOut
from crm_core.db import Database
from crm_core.events import CallRecordingFinished
from crm_core.lookup import NumberLookup
from crm_core.phones import normalize
from cti import call_log_sql as sql
from cti.call_events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallIdentified,
    CallQueued,
    CallStarted,
    RecordingStarted,
)
from cti.directory import AgentDirectory
from cti.held_connection import HeldConnection

log = logging.getLogger(__name__)
CallRow = Row[*tuple[Any, ...]]  # sql.NEEDED_FOR_TIMES
MAX_BATCH = 500


class Publisher(Protocol):
    """The bus, or a stand-in that carries events to the loop the bus lives on."""

    async def publish(self, event: object) -> None: ...


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _key(e: Any) -> dict[str, str]:
    return {"k_server": e.server, "k_linkedid": e.linkedid}


def _plain_update(event: object) -> tuple[Update, dict[str, Any]] | None:
    """The events that only set columns: their statement and parameters."""
    if isinstance(event, CallIdentified):
        who = {"v_customer_id": event.customer_id, "v_business_key": event.business_key}
        return sql.SET_IDENTIFIED, {**_key(event), **who}
    if isinstance(event, CallQueued):
        return sql.SET_QUEUED, {
            **_key(event),
            "v_queue": event.queue,
            "v_queued_at": _when(event.at),
        }
    if isinstance(event, AgentRinging):
        ring = {"v_ringing_at": _when(event.at), "v_queue": event.queue}
        return sql.SET_FIRST_RING, {**_key(event), **ring}
    if isinstance(event, RecordingStarted):
        return sql.SET_RECORDING, {**_key(event), "v_recording_path": event.path}
    return None


def _seconds_between(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


class CallLogWriter:
    def __init__(
        self,
        db: Database,
        directory: AgentDirectory,
        finder: NumberLookup,
        bus: Publisher | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.directory = directory
        self.finder = finder
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._upsert_started = sql.upsert_started(db.engine.dialect.name)
        self._held = HeldConnection(db.engine)
        # A cluster's AMI leader writes under its lease epochs (crm_core/cluster/fence.py).
        self.fence = Fence()

    def submit(self, event: object) -> None:
        self.queue.put_nowait(event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-log-writer")

    async def stop(self) -> None:
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._held.close()

    async def drain(self) -> None:
        await self.queue.join()

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self.queue.get_nowait())
            try:
                await self._write_batch(batch)
            except FencedOut as exc:
                # Another node leads these calls now; it resyncs them from the PBX.
                log.warning("call log: %d event(s) not written: %s", len(batch), exc)
            except Exception:
                log.exception("call log: batch of %d failed; retrying one by one", len(batch))
                for event in batch:
                    await self._write_alone(event)
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def _write_batch(self, batch: list[object]) -> None:
        # One transaction for everything queued: at 50 calls/s a commit per event costs far
        # more CPU, and this thread shares the GIL with the loop that sends pops.
        finished: list[CallRecordingFinished] = []
        async with self._held.transaction() as conn:
            await self.fence.check(conn, {f"ami:{getattr(e, 'server', '')}" for e in batch})
            for event in batch:
                done = await self.apply(conn, event)
                if done is not None:
                    finished.append(done)
        for event in finished:
            if self.bus is not None:
                await self.bus.publish(event)

    async def _write_alone(self, event: object) -> None:
        try:
            await self._write_batch([event])
        except Exception:
            log.exception("call log: could not record %r", event)

    async def write(self, event: object) -> None:
        await self._write_batch([event])

    async def apply(self, conn: AsyncConnection, event: object) -> CallRecordingFinished | None:
        if isinstance(event, CallStarted):
            await self._started(conn, event)
        elif isinstance(event, CallAnswered):
            await self._answered(conn, event)
        elif isinstance(event, CallEnded):
            return await self._ended(conn, event)
        elif (plain := _plain_update(event)) is not None:
            await conn.execute(*plain)
        return None

    async def _customer_for(self, number: str) -> int | None:
        candidates = await self.finder.find(number)
        exact = {c.customer_id for c in candidates if c.match == "exact"}
        return exact.pop() if len(exact) == 1 else None

    async def _started(self, conn: AsyncConnection, e: CallStarted) -> None:
        phone = normalize(e.caller, home_area_code=self.db.settings.home_area_code)
        values = {
            "v_server": e.server,
            "v_linkedid": e.linkedid,
            "v_direction": e.direction.value,
            "v_number": e.caller[:60],
            "v_number_e164": phone.e164 if phone else None,
            "v_did": e.did or None,
            "v_entered_at": _when(e.at),
            "v_customer_id": await self._customer_for(e.caller) if phone else None,
        }
        if not e.request_id:
            await conn.execute(self._upsert_started, values)
            return
        # Click-to-dial: the row may be ours already (a replay), or the request's, written
        # before anything was dialled and keyed `pending:<request id>` until now.
        if (await conn.execute(sql.RESTART_BY_KEY, {**_key(e), **values})).rowcount:
            return
        rekeyed = await conn.execute(sql.REKEY_BY_REQUEST, {"k_request_id": e.request_id, **values})
        if not rekeyed.rowcount:
            await conn.execute(sql.INSERT_STARTED, {"v_request_id": e.request_id, **values})

    @staticmethod
    async def _times(conn: AsyncConnection, e: Any) -> CallRow | None:
        return (await conn.execute(sql.NEEDED_FOR_TIMES, _key(e))).first()

    async def _answered(self, conn: AsyncConnection, e: CallAnswered) -> None:
        agent = await self.directory.resolve(e.interface, e.member_name)
        row = await self._times(conn, e)
        if row is None or row.answered_at is not None:
            return
        answered_at = _when(e.at)
        await conn.execute(
            sql.SET_ANSWERED,
            {
                "k_id": row.id,
                "v_answered_at": answered_at,
                "v_agent_interface": e.interface,
                "v_agent_id": agent.user_id if agent else row.agent_id,
                "v_queue": e.queue or row.queue,
                # In the queue: from queue entry (the greeting and IVR are not waiting).
                "v_wait_seconds": _seconds_between(row.queued_at or row.entered_at, answered_at),
            },
        )

    async def _ended(self, conn: AsyncConnection, e: CallEnded) -> CallRecordingFinished | None:
        row = await self._times(conn, e)
        if row is None or row.status == "ended":
            return None
        ended_at = _when(e.at)
        values = {"k_id": row.id, "v_ended_at": ended_at, "v_outcome": e.outcome.value}
        talk_seconds = row.talk_seconds
        if row.answered_at is not None:
            talk_end = _when(e.talk_end) if e.talk_end else ended_at
            talk_seconds = _seconds_between(row.answered_at, talk_end)
            await conn.execute(sql.END_TALKED, {**values, "v_talk_seconds": talk_seconds})
        else:
            waited = _seconds_between(row.queued_at or row.entered_at, ended_at)
            await conn.execute(sql.END_UNANSWERED, {**values, "v_wait_seconds": waited})
        return _recording_finished(row, ended_at, talk_seconds)


def _recording_finished(
    row: CallRow, ended_at: datetime, talk_seconds: float | None
) -> CallRecordingFinished | None:
    """What the recordings side needs to index a finished call's recording, if it has one."""
    if not row.recording_path:
        return None
    return CallRecordingFinished(
        call_id=row.id,
        server=row.server,
        linkedid=row.linkedid,
        path=row.recording_path,
        direction=row.direction,
        customer_id=row.customer_id,
        agent_id=row.agent_id,
        queue=row.queue,
        service_request_id=row.service_request_id,
        answered_at=row.answered_at.isoformat() if row.answered_at else None,
        ended_at=ended_at.isoformat(),
        talk_seconds=talk_seconds,
    )

"""The call log: one row per call, written from the tracker's events.

Writes go through one queue and one worker, in event order, off the pop's hot path: a slow
disk delays the log, never a screen pop. Every write is idempotent (keyed by server and
Linkedid), so a replayed or duplicated event cannot create a second row.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import Database
from crm_core.events import CallRecordingFinished
from crm_core.lookup import NumberLookup
from crm_core.phones import normalize
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
from cti.models import Call

log = logging.getLogger(__name__)
MAX_BATCH = 500


class Publisher(Protocol):
    """The bus, or a stand-in that carries events to the loop the bus lives on."""

    async def publish(self, event: object) -> None: ...


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


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

    def submit(self, event: object) -> None:
        self.queue.put_nowait(event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-log-writer")

    async def stop(self) -> None:
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def drain(self) -> None:
        await self.queue.join()

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self.queue.get_nowait())
            try:
                await self._write_batch(batch)
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
        async with self.db.transaction() as session:
            for event in batch:
                done = await self.apply(session, event)
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

    async def apply(self, session: AsyncSession, event: object) -> CallRecordingFinished | None:
        if isinstance(event, CallStarted):
            await self._started(session, event)
        elif isinstance(event, CallIdentified):
            await self._set(
                session, event, customer_id=event.customer_id, business_key=event.business_key
            )
        elif isinstance(event, CallQueued):
            await self._set(session, event, queue=event.queue, queued_at=_when(event.at))
        elif isinstance(event, AgentRinging):
            await self._first_ring(session, event)
        elif isinstance(event, CallAnswered):
            await self._answered(session, event)
        elif isinstance(event, RecordingStarted):
            await self._set(session, event, recording_path=event.path)
        elif isinstance(event, CallEnded):
            return await self._ended(session, event)
        return None

    async def _customer_for(self, number: str) -> int | None:
        candidates = await self.finder.find(number)
        exact = {c.customer_id for c in candidates if c.match == "exact"}
        return exact.pop() if len(exact) == 1 else None

    async def _started(self, session: AsyncSession, e: CallStarted) -> None:
        phone = normalize(e.caller, home_area_code=self.db.settings.home_area_code)
        customer_id = await self._customer_for(e.caller) if phone else None
        values: dict[str, Any] = {
            "direction": e.direction.value,
            "number": e.caller[:60],
            "number_e164": phone.e164 if phone else None,
            "did": e.did or None,
            "entered_at": _when(e.at),
        }
        row = await self._row(session, e.server, e.linkedid)
        if row is None and e.request_id:
            query = select(Call).where(Call.request_id == e.request_id)
            row = (await session.scalars(query)).first()
        if row is None:
            row = Call(server=e.server, linkedid=e.linkedid, request_id=e.request_id)
            session.add(row)
        row.server, row.linkedid = e.server, e.linkedid
        for key, value in values.items():
            setattr(row, key, value)
        row.customer_id = row.customer_id or customer_id
        await session.flush()

    @staticmethod
    async def _row(session: AsyncSession, server: str, linkedid: str) -> Call | None:
        query = select(Call).where(Call.server == server, Call.linkedid == linkedid)
        row: Call | None = (await session.scalars(query)).first()
        return row

    async def _set(self, session: AsyncSession, e: Any, **values: Any) -> None:
        await session.execute(
            update(Call)
            .where(Call.server == e.server, Call.linkedid == e.linkedid)
            .values(**values)
        )

    async def _first_ring(self, session: AsyncSession, e: AgentRinging) -> None:
        await session.execute(
            update(Call)
            .where(Call.server == e.server, Call.linkedid == e.linkedid, Call.ringing_at.is_(None))
            .values(ringing_at=_when(e.at), queue=e.queue)
        )

    async def _answered(self, session: AsyncSession, e: CallAnswered) -> None:
        agent = await self.directory.resolve(e.interface, e.member_name)
        row = await self._row(session, e.server, e.linkedid)
        if row is None or row.answered_at is not None:
            return
        row.answered_at = _when(e.at)
        row.agent_interface = e.interface
        row.agent_id = agent.user_id if agent else row.agent_id
        row.queue = e.queue or row.queue
        waited_from = row.queued_at or row.entered_at
        row.wait_seconds = max(0.0, (row.answered_at - waited_from).total_seconds())

    async def _ended(self, session: AsyncSession, e: CallEnded) -> CallRecordingFinished | None:
        row = await self._row(session, e.server, e.linkedid)
        if row is None or row.status == "ended":
            return None
        row.ended_at, row.status, row.outcome = _when(e.at), "ended", e.outcome.value
        if row.answered_at is not None:
            talk_end = _when(e.talk_end) if e.talk_end else row.ended_at
            row.talk_seconds = max(0.0, (talk_end - row.answered_at).total_seconds())
        else:
            waited_from = row.queued_at or row.entered_at
            row.wait_seconds = max(0.0, (row.ended_at - waited_from).total_seconds())
        await session.flush()
        return self._recording_finished(row)

    @staticmethod
    def _recording_finished(row: Call) -> CallRecordingFinished | None:
        if not row.recording_path or row.ended_at is None:
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
            ended_at=row.ended_at.isoformat(),
            talk_seconds=row.talk_seconds,
        )

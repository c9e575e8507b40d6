"""Queue callback jobs: a caller who pressed 1 keeps their place and is called back.

States (one transition function each, every change a conditional UPDATE so two workers or
a worker and a late FastAGI result cannot both win)::

    waiting --claim--> calling --result ANSWER--> done
                          |---result other--> waiting (next_attempt_at later) | failed
    waiting/calling --cancel--> cancelled (an agent called the customer back by hand)

`claim` commits the attempt (attempt_id, attempts + 1) before anything is dialled, so a crash
after it never dials the same attempt again: a restarted worker reads the attempt's result
from the PBX (ASTdb) or sees its channel still up, and only an attempt that provably never
rang anybody is tried again. Failed jobs stay on the agents' callback list (their call has
no callback_done_at), which is the "missed call" entry the issue asks for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import Database
from cti.models import Call, QueueCallback

WAITING, CALLING, DONE, FAILED, CANCELLED = "waiting", "calling", "done", "failed", "cancelled"
OPEN_STATES = (WAITING, CALLING)


@dataclass(frozen=True)
class Attempt:
    job_id: int
    attempt_id: str  # "<job>x<n>": part of the Local channel's name and the ASTdb key
    queue: str
    number: str
    customer_id: int | None


def attempt_id(job_id: int, attempt: int) -> str:
    return f"{job_id}x{attempt}"


async def request(
    db: Database,
    *,
    server: str,
    linkedid: str,
    queue: str,
    number: str,
    place_at: datetime,
    max_attempts: int,
) -> QueueCallback:
    """Register a callback for the call `linkedid` (once: pressing 1 twice is one job)."""
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            call = (
                await session.scalars(
                    select(Call).where(Call.server == server, Call.linkedid == linkedid)
                )
            ).first()
            job = QueueCallback(
                server=server,
                linkedid=linkedid,
                source="queue",
                queue=queue,
                number=number,
                customer_id=call.customer_id if call is not None else None,
                place_at=min(place_at, now),
                requested_at=now,
                state=WAITING,
                attempts=0,
                max_attempts=max_attempts,
                next_attempt_at=now,
            )
            session.add(job)
            if call is not None:
                call.routed = "callback"
        return job
    except IntegrityError:
        async with db.transaction() as session:
            return (
                await session.scalars(
                    select(QueueCallback).where(
                        QueueCallback.server == server, QueueCallback.linkedid == linkedid
                    )
                )
            ).one()


async def due(db: Database, server: str, now: datetime) -> list[QueueCallback]:
    """Waiting jobs whose next try is due, oldest place first."""
    async with db.transaction() as session:
        rows = await session.scalars(
            select(QueueCallback)
            .where(
                QueueCallback.server == server,
                QueueCallback.state == WAITING,
                QueueCallback.next_attempt_at <= now,
            )
            .order_by(QueueCallback.place_at, QueueCallback.id)
        )
        return list(rows)


async def claim(db: Database, job: QueueCallback) -> Attempt | None:
    """Start the job's next attempt; None when another worker (or a result) got there first."""
    attempt = job.attempts + 1
    chosen = attempt_id(job.id, attempt)
    async with db.transaction() as session:
        done = await session.execute(
            update(QueueCallback)
            .where(
                QueueCallback.id == job.id,
                QueueCallback.state == WAITING,
                QueueCallback.attempts == job.attempts,
            )
            .values(
                state=CALLING,
                attempts=attempt,
                attempt_id=chosen,
                claim_token=uuid.uuid4().hex,
                claimed_at=datetime.now(UTC),
                last_result=None,
            )
        )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return Attempt(job.id, chosen, job.queue, job.number, job.customer_id)


async def record_result(
    db: Database, chosen: str, result: str, retry_after: timedelta, agent_id: int | None = None
) -> str | None:
    """Apply an attempt's result (from the FastAGI or the ASTdb); returns the new state, or
    None when the attempt is not the job's current one (a duplicate or late report)."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        job = (
            await session.scalars(
                select(QueueCallback)
                .where(QueueCallback.attempt_id == chosen, QueueCallback.state == CALLING)
                .with_for_update()
            )
        ).first()
        if job is None:
            return None
        job.last_result = result[:60]
        job.claim_token = None
        if result == "ANSWER":
            job.state, job.done_at = DONE, now
            job.agent_id = agent_id or job.agent_id
            await _close_original(session, job, now)
        elif job.attempts >= job.max_attempts:
            job.state, job.done_at = FAILED, now
        else:
            job.state, job.next_attempt_at = WAITING, now + retry_after
        return job.state


async def _close_original(session: AsyncSession, job: QueueCallback, now: datetime) -> None:
    await session.execute(
        update(Call)
        .where(Call.server == job.server, Call.linkedid == job.linkedid)
        .values(callback_done_at=now)
    )


async def attempt_details(db: Database, chosen: str) -> Attempt | None:
    """The attempt's job, for the callback's queue leg (only while it is being called)."""
    async with db.transaction() as session:
        job = (
            await session.scalars(
                select(QueueCallback).where(
                    QueueCallback.attempt_id == chosen, QueueCallback.state == CALLING
                )
            )
        ).first()
    if job is None:
        return None
    return Attempt(job.id, chosen, job.queue, job.number, job.customer_id)


async def in_flight(db: Database, server: str, older_than: datetime) -> list[QueueCallback]:
    """Attempts claimed before `older_than` with no result yet (a worker restarted, or the
    result's FastAGI call failed): the worker settles them from the PBX's own record."""
    async with db.transaction() as session:
        rows = await session.scalars(
            select(QueueCallback).where(
                QueueCallback.server == server,
                QueueCallback.state == CALLING,
                QueueCallback.claimed_at < older_than,
            )
        )
        return list(rows)


async def pending_linkedids(db: Database, linkedids: list[str]) -> set[str]:
    """Which of these calls have an open callback job (the worker will call them back)."""
    if not linkedids:
        return set()
    async with db.transaction() as session:
        rows = await session.scalars(
            select(QueueCallback.linkedid).where(
                QueueCallback.linkedid.in_(linkedids), QueueCallback.state.in_(OPEN_STATES)
            )
        )
        return set(rows)


async def release(db: Database, chosen: str, retry_after: timedelta) -> None:
    """Give back an attempt that provably dialled nothing (the AMI link was down when it was
    to be sent): it does not count as a try."""
    async with db.transaction() as session:
        await session.execute(
            update(QueueCallback)
            .where(QueueCallback.attempt_id == chosen, QueueCallback.state == CALLING)
            .values(
                state=WAITING,
                attempts=QueueCallback.attempts - 1,
                attempt_id=None,
                claim_token=None,
                next_attempt_at=datetime.now(UTC) + retry_after,
            )
        )

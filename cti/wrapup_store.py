"""The wrap-up columns of a call (cti_0004): when it ends, whether it was extended, how long
the after-call work took. Core statements, keyed like the call log (server, Linkedid)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from crm_core.db import Database
from cti.models import Call

LOOK_BACK = timedelta(days=1)  # older unfinished wrap-ups are history, not work


@dataclass(frozen=True)
class StoredWrapUp:
    call_id: int
    server: str
    linkedid: str
    interface: str
    agent_id: int | None
    queue: str | None
    until: float
    extended: bool


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def begin(db: Database, server: str, linkedid: str, until: float) -> int | None:
    """Mark the call as in wrap-up until `until`; its id, or None if the call is not logged
    (yet: the call log is written by another process and may lag by a moment)."""
    async with db.transaction() as session:
        call_id = await session.scalar(
            select(Call.id).where(Call.server == server, Call.linkedid == linkedid)
        )
        if call_id is None:
            return None
        await session.execute(
            update(Call)
            .where(Call.id == call_id)
            .values(wrapup_until=_when(until), wrapup_extended=False, wrapup_seconds=None)
        )
    return int(call_id)


async def extend(db: Database, call_id: int, until: float) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Call)
            .where(Call.id == call_id)
            .values(wrapup_until=_when(until), wrapup_extended=True)
        )


async def finish(db: Database, call_id: int, seconds: float) -> None:
    """Record how long the after-call work took; a wrap-up is finished once."""
    async with db.transaction() as session:
        await session.execute(
            update(Call)
            .where(Call.id == call_id, Call.wrapup_seconds.is_(None))
            .values(wrapup_seconds=round(max(0.0, seconds), 1))
        )


async def unfinished(db: Database) -> list[StoredWrapUp]:
    """Wrap-ups a previous run of the server started and did not finish (a restart)."""
    query = select(Call).where(
        Call.wrapup_until.is_not(None),
        Call.wrapup_seconds.is_(None),
        Call.wrapup_until > datetime.now(UTC) - LOOK_BACK,
    )
    async with db.transaction() as session:
        rows = (await session.scalars(query)).all()
    return [
        StoredWrapUp(
            call_id=r.id,
            server=r.server,
            linkedid=r.linkedid,
            interface=r.agent_interface or "",
            agent_id=r.agent_id,
            queue=r.queue,
            until=r.wrapup_until.timestamp() if r.wrapup_until else 0.0,
            extended=bool(r.wrapup_extended),
        )
        for r in rows
        if r.agent_interface
    ]

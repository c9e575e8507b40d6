"""Reading and finishing calls: wrap-up dispositions, unprocessed calls, the callback list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select, update
from sqlalchemy.orm import aliased

import cti.dispositions as dispositions
from crm_core.db import Database
from crm_core.errors import HotlineError, NotFound, ValidationError
from crm_core.models import Customer, User
from crm_core.records import to_json
from cti.models import Call, QueueCallback

MAX_NOTE = 2000
SHANGHAI = timedelta(hours=8)  # the hotline's day starts at 00:00 Beijing time


class NotYourCall(HotlineError):
    status = 403
    error_id = "not_your_call"


@dataclass(frozen=True)
class Viewer:
    """Who is asking: an agent sees their own calls, a supervisor their region's."""

    user_id: int
    role: str
    region: str | None


def start_of_today() -> datetime:
    now = datetime.now(UTC) + SHANGHAI
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - SHANGHAI


def call_row(call: Call) -> dict[str, Any]:
    return {c.key: to_json(getattr(call, c.key)) for c in Call.__table__.columns}


def scoped(query: Select[Any], viewer: Viewer) -> Select[Any]:
    if viewer.role == "admin":
        return query
    if viewer.role == "supervisor":
        agents = select(User.id).where(User.region == viewer.region)
        return query.where(or_(Call.agent_id.in_(agents), Call.agent_id.is_(None)))
    return query.where(Call.agent_id == viewer.user_id)


async def get_call(db: Database, viewer: Viewer, call_id: int) -> Call:
    async with db.transaction() as session:
        query = scoped(select(Call).where(Call.id == call_id), viewer)
        call: Call | None = (await session.scalars(query)).first()
    if call is None:
        raise NotFound(f"call {call_id} does not exist or is not yours", call_id=call_id)
    return call


async def set_disposition(
    db: Database, viewer: Viewer, call_id: int, disposition: str, note: str
) -> Call:
    """Wrap-up. The call counts as processed once it has both a disposition and a note.
    The codes are the active ones of the disposition_codes table (cti/dispositions.py)."""
    await dispositions.check_active(db, disposition)
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationError(f"note is at most {MAX_NOTE} characters", field="note")
    async with db.transaction() as session:
        call = await session.get(Call, call_id)
        if call is None:
            raise NotFound(f"call {call_id} does not exist", call_id=call_id)
        if viewer.role == "agent" and call.agent_id != viewer.user_id:
            raise NotYourCall("only the agent who took the call can wrap it up")
        call.disposition, call.note = disposition, note or None
        call.processed_at = datetime.now(UTC) if note else None
    return call


async def my_unprocessed(db: Database, viewer: Viewer) -> list[dict[str, Any]]:
    query = (
        scoped(select(Call), viewer)
        .where(
            Call.status == "ended",
            Call.answered_at.is_not(None),
            Call.processed_at.is_(None),
            Call.entered_at >= start_of_today(),
        )
        .order_by(Call.entered_at)
    )
    async with db.transaction() as session:
        return [call_row(c) for c in (await session.scalars(query)).all()]


async def unprocessed_by_agent(db: Database, viewer: Viewer) -> list[dict[str, Any]]:
    """The seed's "a leader sees at once whose calls of today are not handled"."""
    query = (
        select(User.id, User.username, User.display_name, func.count(Call.id).label("n"))
        .join(Call, Call.agent_id == User.id)
        .where(
            Call.status == "ended",
            Call.answered_at.is_not(None),
            Call.processed_at.is_(None),
            Call.entered_at >= start_of_today(),
        )
        .group_by(User.id, User.username, User.display_name)
        .order_by(func.count(Call.id).desc())
    )
    if viewer.role == "supervisor":
        query = query.where(User.region == viewer.region)
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        {
            "user_id": r.id,
            "username": r.username,
            "display_name": r.display_name,
            "unprocessed": r.n,
        }
        for r in rows
    ]


async def callback_list(db: Database, viewer: Viewer, days: int = 3) -> list[dict[str, Any]]:
    """Missed and abandoned inbound calls nobody has called back or answered since."""
    later = aliased(Call)
    answered_since = (
        select(later.id)
        .where(
            later.number_e164 == Call.number_e164,
            later.entered_at > Call.entered_at,
            later.answered_at.is_not(None),
        )
        .exists()
    )
    query = (
        select(Call, Customer.name)
        .outerjoin(Customer, Customer.id == Call.customer_id)
        .where(
            Call.direction == "inbound",
            Call.outcome.in_(("missed", "abandoned")),
            Call.callback_done_at.is_(None),
            Call.number_e164.is_not(None),
            Call.entered_at >= datetime.now(UTC) - timedelta(days=days),
            ~answered_since,
            ~_callback_pending(),
        )
        .order_by(Call.entered_at.desc())
        .limit(200)
    )
    if viewer.role == "supervisor":
        query = query.where(
            or_(
                Call.agent_id.is_(None),
                and_(Call.agent_id.in_(select(User.id).where(User.region == viewer.region))),
            )
        )
    async with db.transaction() as session:
        rows = (await session.execute(query)).all()
    return [{**call_row(call), "customer_name": name} for call, name in rows]


async def mark_called_back(db: Database, call_id: int) -> None:
    async with db.transaction() as session:
        call = await session.get(Call, call_id)
        if call is None:
            raise NotFound(f"call {call_id} does not exist", call_id=call_id)
        call.callback_done_at = call.callback_done_at or datetime.now(UTC)
        # Called back by hand: the queue-callback worker must not call them again.
        await session.execute(
            update(QueueCallback)
            .where(QueueCallback.linkedid == call.linkedid, QueueCallback.state == "waiting")
            .values(state="cancelled", done_at=datetime.now(UTC), last_result="CALLED_BACK")
        )


def _callback_pending() -> Any:
    """The caller pressed 1 and the callback worker will call them (it is not the agents'
    to call by hand); a failed callback comes back onto the list."""
    return (
        select(QueueCallback.id)
        .where(
            QueueCallback.linkedid == Call.linkedid,
            QueueCallback.state.in_(("waiting", "calling")),
        )
        .exists()
    )


async def survey_scores_by_agent(
    db: Database, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Callers' IVR satisfaction per agent for calls surveyed in [since, until): how many,
    the mean, and how many were 1 or 2 (dissatisfied). Best mean first."""
    low = func.sum(case((Call.survey_score <= 2, 1), else_=0))
    query = (
        select(Call.agent_id, func.count(Call.id), func.avg(Call.survey_score), low)
        .where(
            Call.survey_score.is_not(None),
            Call.agent_id.is_not(None),
            Call.surveyed_at >= since,
            Call.surveyed_at < until,
        )
        .group_by(Call.agent_id)
    )
    async with db.transaction() as session:
        rows = (await session.execute(query)).all()
    scores = [
        {
            "agent_id": agent_id,
            "count": int(count),
            "mean": round(float(mean), 2),
            "dissatisfied": int(dissatisfied or 0),
        }
        for agent_id, count, mean, dissatisfied in rows
    ]
    return sorted(scores, key=lambda s: (-s["mean"], -s["count"]))


async def survey_scores(db: Database, call_ids: set[int]) -> dict[int, int]:
    """call id -> the caller's IVR score, for the calls that have one."""
    if not call_ids:
        return {}
    query = select(Call.id, Call.survey_score).where(
        Call.id.in_(call_ids), Call.survey_score.is_not(None)
    )
    async with db.transaction() as session:
        rows = (await session.execute(query)).all()
    return {call_id: score for call_id, score in rows if score is not None}

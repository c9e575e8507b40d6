"""Reading recordings: the review list with its filters, one recording with its facts, and
the live owner facts the access rule needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, exists, func, or_, select

from crm_core.db import Database
from crm_core.models import Customer
from recordings.access import AGENT, RecordingOwners, Viewer, scope
from recordings.errors import RecordingNotFound
from recordings.models import QaReview, Recording, RecordingPause

LIST_LIMIT = 200


@dataclass(frozen=True)
class Filters:
    date_from: date | None = None
    date_to: date | None = None
    agent_id: int | None = None
    customer: str | None = None  # a name prefix or a customer id
    queue: str | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None
    outcome: str | None = None  # answered | unanswered
    qa_status: str | None = None  # reviewed | unreviewed
    has_request: bool | None = None


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, zone)


def _filtered(query: Select[Any], f: Filters, zone: ZoneInfo) -> Select[Any]:
    if f.date_from:
        query = query.where(Recording.ended_at >= _day_start(f.date_from, zone))
    if f.date_to:
        query = query.where(Recording.ended_at < _day_start(f.date_to + timedelta(days=1), zone))
    if f.agent_id is not None:
        query = query.where(Recording.agent_id == f.agent_id)
    if f.customer:
        by_name = Customer.name.startswith(f.customer, autoescape=True)
        query = query.where(
            or_(by_name, Recording.customer_id == int(f.customer))
            if f.customer.isdigit()
            else by_name
        )
    if f.queue:
        query = query.where(Recording.queue == f.queue)
    if f.min_seconds is not None:
        query = query.where(Recording.duration_seconds >= f.min_seconds)
    if f.max_seconds is not None:
        query = query.where(Recording.duration_seconds <= f.max_seconds)
    if f.outcome == "answered":
        query = query.where(Recording.talk_seconds > 0)
    elif f.outcome == "unanswered":
        query = query.where(or_(Recording.talk_seconds.is_(None), Recording.talk_seconds <= 0))
    reviewed = exists().where(QaReview.recording_id == Recording.id)
    if f.qa_status == "reviewed":
        query = query.where(reviewed)
    elif f.qa_status == "unreviewed":
        query = query.where(~reviewed)
    if f.has_request is True:
        query = query.where(Recording.service_request_id.is_not(None))
    elif f.has_request is False:
        query = query.where(Recording.service_request_id.is_(None))
    return query


def _base() -> Select[Any]:
    latest = (
        select(QaReview.score)
        .where(QaReview.recording_id == Recording.id)
        .order_by(QaReview.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(Recording, Customer.name, AGENT.display_name, latest)
        .outerjoin(Customer, Customer.id == Recording.customer_id)
        .outerjoin(AGENT, AGENT.id == Recording.agent_id)
    )


def row_dict(
    rec: Recording, customer: str | None, agent: str | None, score: float | None
) -> dict[str, Any]:
    return {
        "id": rec.id,
        "call_id": rec.call_id,
        "linkedid": rec.linkedid,
        "state": rec.state,
        "direction": rec.direction,
        "queue": rec.queue,
        "customer_id": rec.customer_id,
        "customer_name": customer,
        "agent_id": rec.agent_id,
        "agent_name": agent,
        "service_request_id": rec.service_request_id,
        "ended_at": rec.ended_at.isoformat() if rec.ended_at else None,
        "talk_seconds": rec.talk_seconds,
        "duration_seconds": rec.duration_seconds,
        "qa_score": score,
        "on_hold": rec.hold_reason is not None,
        "playable": rec.state == "complete",
    }


async def list_recordings(
    db: Database, viewer: Viewer, filters: Filters, timezone: str
) -> list[dict[str, Any]]:
    query = _filtered(_base().where(scope(viewer)), filters, ZoneInfo(timezone))
    query = query.where(Recording.state.in_(("complete", "purged")))
    query = query.order_by(Recording.ended_at.desc(), Recording.id.desc()).limit(LIST_LIMIT)
    async with db.transaction() as session:
        return [row_dict(*row) for row in (await session.execute(query)).all()]


async def get_recording(db: Database, recording_id: int) -> Recording:
    async with db.transaction() as session:
        row = await session.get(Recording, recording_id)
    if row is None:
        raise RecordingNotFound(f"recording {recording_id} does not exist")
    return row


async def by_call(db: Database, call_id: int) -> Recording:
    async with db.transaction() as session:
        row = await session.scalar(
            select(Recording).where(Recording.call_id == call_id).order_by(Recording.id).limit(1)
        )
    if row is None:
        raise RecordingNotFound(f"call {call_id} has no recording")
    return row


async def owners(db: Database, recording_id: int) -> RecordingOwners:
    query = (
        select(Recording.agent_id, Customer.owner_id, Customer.region, AGENT.region)
        .select_from(Recording)
        .outerjoin(Customer, Customer.id == Recording.customer_id)
        .outerjoin(AGENT, AGENT.id == Recording.agent_id)
        .where(Recording.id == recording_id)
    )
    async with db.transaction() as session:
        found = (await session.execute(query)).first()
    if found is None:
        raise RecordingNotFound(f"recording {recording_id} does not exist")
    return RecordingOwners(*found)


async def detail(db: Database, recording_id: int) -> dict[str, Any]:
    query = _base().where(Recording.id == recording_id)
    async with db.transaction() as session:
        found = (await session.execute(query)).first()
        if found is None:
            raise RecordingNotFound(f"recording {recording_id} does not exist")
        rec = found[0]
        pauses = (
            await session.scalars(
                select(RecordingPause)
                .where(and_(RecordingPause.linkedid == rec.linkedid))
                .order_by(RecordingPause.id)
            )
        ).all()
    body = row_dict(*found)
    started = rec.ended_at - timedelta(seconds=rec.duration_seconds or 0) if rec.ended_at else None
    body.update(
        sha256=rec.sha256,
        size_bytes=rec.size_bytes,
        rms=rec.rms,
        peaks=rec.peaks or [],
        error=rec.error,
        hold_reason=rec.hold_reason,
        pauses=[
            {
                "from": round((p.paused_at - started).total_seconds(), 1) if started else None,
                "to": round((p.resumed_at - started).total_seconds(), 1)
                if started and p.resumed_at
                else None,
                "resumed_by": p.resumed_by,
            }
            for p in pauses
        ],
    )
    return body


async def count_by_state(db: Database) -> dict[str, int]:
    query = select(Recording.state, func.count()).group_by(Recording.state)
    async with db.transaction() as session:
        return {state: n for state, n in (await session.execute(query)).all()}

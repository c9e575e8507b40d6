"""Read models for the desktop: a request's timeline, the review queue, the dispatch board,
the follow-up list. Plain dicts, ready for JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.models import Role, User
from ticketing.errors import ServiceRequestNotFound
from ticketing.models import FollowUp, ServiceRequest, Transition, WorkOrder
from ticketing.states import OPEN_WORK_ORDER_STATES, RequestState

REVIEW_STATES = (
    RequestState.SUBMITTED.value,
    RequestState.UNDER_REVIEW.value,
    RequestState.COMPLAINT_REVIEW.value,
    RequestState.COMPLAINT_HANDLING.value,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def request_dict(row: ServiceRequest) -> dict[str, Any]:
    return {
        "id": row.id,
        "number": row.number,
        "customer_id": row.customer_id,
        "vehicle_id": row.vehicle_id,
        "contact_id": row.contact_id,
        "channel": row.channel,
        "category": row.category,
        "priority": row.priority,
        "state": row.state,
        "description": row.description,
        "region": row.region,
        "office": row.office,
        "call_linkedid": row.call_linkedid,
        "created_at": _iso(row.created_at),
        "response_due_at": _iso(row.response_due_at),
        "resolution_due_at": _iso(row.resolution_due_at),
        "dispatched_at": _iso(row.dispatched_at),
        "completed_at": _iso(row.completed_at),
        "closed_at": _iso(row.closed_at),
    }


def order_dict(row: WorkOrder) -> dict[str, Any]:
    return {
        "id": row.id,
        "request_id": row.request_id,
        "technician_id": row.technician_id,
        "previous_id": row.previous_id,
        "state": row.state,
        "eta_at": _iso(row.eta_at),
        "accept_due_at": _iso(row.accept_due_at),
        "resolution": row.resolution,
        "parts_needed": row.parts_needed,
        "parts_used": row.parts_used,
    }


def follow_up_dict(row: FollowUp) -> dict[str, Any]:
    return {
        "id": row.id,
        "request_id": row.request_id,
        "assignee_id": row.assignee_id,
        "state": row.state,
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "due_at": _iso(row.due_at),
        "score": row.score,
        "comment": row.comment,
    }


async def get_request(db: Database, request_id: int) -> ServiceRequest:
    async with db.transaction() as s:
        row = await s.get(ServiceRequest, request_id)
    if row is None:
        raise ServiceRequestNotFound(f"service request {request_id} does not exist")
    return row


async def technician_ids_of(db: Database, request_id: int) -> set[int]:
    async with db.transaction() as s:
        rows = await s.scalars(
            select(WorkOrder.technician_id).where(WorkOrder.request_id == request_id)
        )
        return {tech for tech in rows.all() if tech is not None}


async def request_detail(db: Database, request_id: int) -> dict[str, Any]:
    """The request, its work orders, follow-ups and transition timeline."""
    async with db.transaction() as s:
        row = await s.get(ServiceRequest, request_id)
        if row is None:
            raise ServiceRequestNotFound(f"service request {request_id} does not exist")
        orders = (
            await s.scalars(
                select(WorkOrder).where(WorkOrder.request_id == request_id).order_by(WorkOrder.id)
            )
        ).all()
        follow_ups = (
            await s.scalars(
                select(FollowUp).where(FollowUp.request_id == request_id).order_by(FollowUp.id)
            )
        ).all()
        records = (
            await s.scalars(
                select(Transition)
                .where(Transition.request_id == request_id)
                .order_by(Transition.id)
            )
        ).all()
    return {
        "request": request_dict(row),
        "work_orders": [order_dict(o) for o in orders],
        "follow_ups": [follow_up_dict(f) for f in follow_ups],
        "transitions": [
            {
                "at": _iso(t.at),
                "entity": t.entity,
                "entity_id": t.entity_id,
                "action": t.action,
                "from": t.from_state,
                "to": t.to_state,
                "user_id": t.user_id,
                "actor": t.actor,
                "reason": t.reason,
            }
            for t in records
        ],
    }


async def list_requests(
    db: Database,
    *,
    states: tuple[str, ...] = (),
    region: str | None = None,
    office: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    query = select(ServiceRequest).order_by(ServiceRequest.id.desc()).limit(limit)
    if states:
        query = query.where(ServiceRequest.state.in_(states))
    if region:
        query = query.where(ServiceRequest.region == region)
    if office:
        query = query.where(ServiceRequest.office == office)
    async with db.transaction() as s:
        return [request_dict(r) for r in (await s.scalars(query)).all()]


async def dispatch_board(db: Database, office: str | None, region: str | None) -> dict[str, Any]:
    """Requests waiting for a technician, and the office's technicians with their open load."""
    waiting = await list_requests(
        db, states=(RequestState.DISPATCHED_TO_OFFICE.value,), office=office, region=region
    )
    load = (
        select(WorkOrder.technician_id, func.count().label("open"))
        .where(WorkOrder.state.in_([s.value for s in OPEN_WORK_ORDER_STATES]))
        .group_by(WorkOrder.technician_id)
        .subquery()
    )
    query = (
        select(User.id, User.display_name, User.office, func.coalesce(load.c.open, 0))
        .outerjoin(load, load.c.technician_id == User.id)
        .where(User.role == Role.TECHNICIAN.value, User.active.is_(True))
        .order_by(User.id)
    )
    if office:
        query = query.where(User.office == office)
    async with db.transaction() as s:
        techs = [
            {"id": i, "name": n, "office": o, "open_orders": int(c)}
            for i, n, o, c in (await s.execute(query)).all()
        ]
    return {"waiting": waiting, "technicians": techs}


async def follow_up_list(db: Database, assignee_id: int | None) -> list[dict[str, Any]]:
    query = (
        select(FollowUp)
        .where(FollowUp.state.in_(("pending", "rescheduled")))
        .order_by(FollowUp.due_at)
    )
    if assignee_id is not None:
        query = query.where(FollowUp.assignee_id == assignee_id)
    async with db.transaction() as s:
        return [follow_up_dict(f) for f in (await s.scalars(query)).all()]

"""SLA reminders on the desktop: the breaches still standing that concern a user, for the
reminders panel, and a `reminder` push to their open tabs the moment a breach is recorded.

Who a breach concerns (the same rule for the list and the push):
- the agent who created the request, and the follow-up's assignee for a late follow-up;
- supervisors of the request's region or office, and supervisors without a region;
- admins.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true

from agent_desktop.common.sessions import SessionUser
from agent_desktop.common.ws_hub import PROTOCOL_VERSION, WebSocketHub
from crm_core.db import Database
from crm_core.events import EventBus, SlaBreached
from crm_core.models import Role, User
from ticketing.models import FollowUp, ServiceRequest, SlaBreach
from ticketing.sla import standing_breaches

log = logging.getLogger(__name__)
LIMIT = 50


def _scope(user: SessionUser) -> ColumnElement[bool]:
    if user.role == Role.ADMIN:
        return true()
    if user.role == Role.SUPERVISOR:
        if user.region is None:
            return true()
        return or_(ServiceRequest.region == user.region, ServiceRequest.office == user.office)
    if user.role == Role.AGENT:
        assigned = (
            select(FollowUp.id)
            .where(FollowUp.id == SlaBreach.entity_id, FollowUp.assignee_id == user.id)
            .exists()
        )
        return or_(
            ServiceRequest.created_by_id == user.id,
            and_(SlaBreach.kind == "follow_up", assigned),
        )
    return false()


async def reminders_for(db: Database, user: SessionUser) -> list[dict[str, Any]]:
    """The standing breaches that concern `user`, longest overdue first."""
    query = standing_breaches().where(_scope(user)).limit(LIMIT)
    async with db.transaction() as session:
        rows = (await session.execute(query)).all()
    return [
        {
            "request_id": breach.request_id,
            "number": request.number,
            "kind": breach.kind,
            "entity": breach.entity,
            "entity_id": breach.entity_id,
            "due_at": breach.due_at.isoformat(),
            "detected_at": breach.detected_at.isoformat(),
        }
        for breach, request in rows
    ]


def _concerns(user: User, request: ServiceRequest, assignee_id: int | None) -> bool:
    if user.role == Role.ADMIN:
        return True
    if user.role == Role.SUPERVISOR:
        return (
            user.region is None
            or user.region == request.region
            or (user.office is not None and user.office == request.office)
        )
    return user.role == Role.AGENT and user.id in (request.created_by_id, assignee_id)


async def recipients(db: Database, event: SlaBreached) -> set[int]:
    async with db.transaction() as session:
        request = await session.get(ServiceRequest, event.request_id)
        if request is None:
            return set()
        assignee = None
        if event.entity == "follow_up":
            assignee = await session.scalar(
                select(FollowUp.assignee_id).where(FollowUp.id == event.entity_id)
            )
        users = (
            await session.scalars(
                select(User).where(
                    User.active.is_(True),
                    User.role.in_([Role.ADMIN.value, Role.SUPERVISOR.value, Role.AGENT.value]),
                )
            )
        ).all()
        return {u.id for u in users if _concerns(u, request, assignee)}


def subscribe(bus: EventBus, db: Database, hub: WebSocketHub) -> None:
    async def on_breach(event: SlaBreached) -> None:
        message = {
            "v": PROTOCOL_VERSION,
            "type": "reminder",
            "kind": "sla",
            "breach": event.kind,
            "request_id": event.request_id,
            "due_at": event.due_at,
        }
        try:
            for user_id in await recipients(db, event):
                await hub.send_to_user(user_id, message)
        except Exception:  # a reminder push must never break the SLA worker's publish
            log.exception("SLA reminder push failed for request %s", event.request_id)

    bus.subscribe(SlaBreached, on_breach)

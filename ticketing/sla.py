"""SLA timers: find what is overdue, record each breach once, escalate overdue dispatches.

`check_sla` is safe to run on every node at once: a breach row is unique per item and kind,
and the escalation SMS is queued in the transaction that inserts it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.exc import IntegrityError

from crm_core.events import SlaBreached
from crm_core.models import Role, User
from ticketing.context import TicketingContext, Unit
from ticketing.models import FollowUp, ServiceRequest, SlaBreach, StaffMobile, WorkOrder
from ticketing.notices import SmsNotice
from ticketing.states import AWAITING_ACCEPT, FollowUpState, RequestState

log = logging.getLogger(__name__)

_AWAITING_RESPONSE = [
    s.value
    for s in (
        RequestState.NEW,
        RequestState.SUBMITTED,
        RequestState.UNDER_REVIEW,
        RequestState.COMPLAINT_REVIEW,
        RequestState.DISPATCHED_TO_OFFICE,
    )
]
_UNRESOLVED = [
    *_AWAITING_RESPONSE,
    RequestState.COMPLAINT_HANDLING.value,
    RequestState.IN_FIELD.value,
]
# Breaches that go to the office supervisor by SMS: the office has not dispatched in time,
# or the technician has not accepted in time.
ESCALATED = frozenset({"dispatch", "accept"})


_FOLLOW_UP_OPEN = [FollowUpState.PENDING.value, FollowUpState.RESCHEDULED.value]


@dataclass(frozen=True)
class Overdue:
    kind: str  # response | dispatch | resolution | accept | follow_up
    entity: str
    entity_id: int
    request_id: int
    due_at: datetime
    office: str | None


async def find_overdue(unit: Unit) -> list[Overdue]:
    """Everything past its due time at `unit.now`, whether or not it was reported before."""
    now, s = unit.now, unit.session
    found: list[Overdue] = []
    for row in await s.scalars(
        select(ServiceRequest).where(
            ServiceRequest.state.in_(_AWAITING_RESPONSE),
            ServiceRequest.response_due_at < now,
        )
    ):
        kind = "dispatch" if row.state == RequestState.DISPATCHED_TO_OFFICE else "response"
        found.append(Overdue(kind, "request", row.id, row.id, row.response_due_at, row.office))
    for row in await s.scalars(
        select(ServiceRequest).where(
            ServiceRequest.state.in_(_UNRESOLVED),
            ServiceRequest.resolution_due_at < now,
        )
    ):
        found.append(
            Overdue("resolution", "request", row.id, row.id, row.resolution_due_at, row.office)
        )
    for order, office in await s.execute(
        select(WorkOrder, ServiceRequest.office)
        .join(ServiceRequest, ServiceRequest.id == WorkOrder.request_id)
        .where(WorkOrder.state.in_(AWAITING_ACCEPT), WorkOrder.accept_due_at < now)
    ):
        found.append(
            Overdue("accept", "work_order", order.id, order.request_id, order.accept_due_at, office)
        )
    for fu, office in await s.execute(
        select(FollowUp, ServiceRequest.office)
        .join(ServiceRequest, ServiceRequest.id == FollowUp.request_id)
        .where(
            FollowUp.state.in_(_FOLLOW_UP_OPEN),
            FollowUp.due_at < now,
        )
    ):
        found.append(Overdue("follow_up", "follow_up", fu.id, fu.request_id, fu.due_at, office))
    return found


def standing_breaches() -> Select[SlaBreach, ServiceRequest]:
    """Recorded breaches whose item is still in the state that made it late (the desktop's
    SLA reminders): a request dispatched since, or a follow-up done, drops off the list."""
    order_waiting = exists().where(
        WorkOrder.id == SlaBreach.entity_id, WorkOrder.state.in_(AWAITING_ACCEPT)
    )
    follow_up_open = exists().where(
        FollowUp.id == SlaBreach.entity_id, FollowUp.state.in_(_FOLLOW_UP_OPEN)
    )
    request_state = ServiceRequest.state
    return (
        select(SlaBreach, ServiceRequest)
        .join(ServiceRequest, ServiceRequest.id == SlaBreach.request_id)
        .where(
            or_(
                and_(
                    SlaBreach.kind.in_(["response", "dispatch"]),
                    request_state.in_(_AWAITING_RESPONSE),
                ),
                and_(SlaBreach.kind == "resolution", request_state.in_(_UNRESOLVED)),
                and_(SlaBreach.kind == "accept", order_waiting),
                and_(SlaBreach.kind == "follow_up", follow_up_open),
            )
        )
        .order_by(SlaBreach.due_at, SlaBreach.id)
    )


async def _supervisors(unit: Unit, office: str | None) -> list[tuple[int, str]]:
    if not office:
        return []
    rows = await unit.session.execute(
        select(User.id, StaffMobile.e164)
        .join(StaffMobile, StaffMobile.user_id == User.id)
        .where(User.role == Role.SUPERVISOR.value, User.office == office, User.active.is_(True))
        .order_by(User.id)
    )
    return [(uid, e164) for uid, e164 in rows]


async def _already(unit: Unit, item: Overdue) -> bool:
    return (
        await unit.session.scalar(
            select(SlaBreach.id).where(
                SlaBreach.entity == item.entity,
                SlaBreach.entity_id == item.entity_id,
                SlaBreach.kind == item.kind,
            )
        )
        is not None
    )


async def _record(ctx: TicketingContext, unit: Unit, item: Overdue) -> None:
    supervisors = await _supervisors(unit, item.office) if item.kind in ESCALATED else []
    unit.session.add(
        SlaBreach(
            request_id=item.request_id,
            kind=item.kind,
            entity=item.entity,
            entity_id=item.entity_id,
            due_at=item.due_at,
            detected_at=unit.now,
            escalated_to_id=supervisors[0][0] if supervisors else None,
        )
    )
    request = await unit.session.get(ServiceRequest, item.request_id)
    for user_id, e164 in supervisors:
        await ctx.notify(
            unit.session,
            SmsNotice(
                to=e164,
                template="sla_escalation",
                params={
                    "kind": item.kind,
                    "request": (request.number or "") if request else "",
                    "order": str(item.entity_id) if item.entity == "work_order" else "",
                    "office": item.office or "",
                },
                key=f"sla:{item.entity}:{item.entity_id}:{item.kind}:{user_id}",
                request_id=item.request_id,
            ),
        )
    unit.events.append(
        SlaBreached(
            item.kind,
            item.request_id,
            item.entity,
            item.entity_id,
            item.office,
            item.due_at.isoformat(),
        )
    )


async def check_sla(ctx: TicketingContext) -> list[Overdue]:
    """Record and escalate the breaches not seen before; return them."""
    try:
        async with ctx.unit() as unit:
            fresh = [i for i in await find_overdue(unit) if not await _already(unit, i)]
            for item in fresh:
                await _record(ctx, unit, item)
            return fresh
    except IntegrityError:
        # Another node recorded the same breach at the same moment; it escalated it.
        log.info("SLA check raced another node; the next round picks up the rest")
        return []


async def run_sla_worker(ctx: TicketingContext, interval: float = 60.0) -> None:
    """The periodic SLA check; run it as a background task and cancel it on shutdown."""
    while True:
        try:
            breaches = await check_sla(ctx)
            if breaches:
                log.info("SLA: %d new breach(es)", len(breaches))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("SLA check failed; retrying in %.0f s", interval)
        await asyncio.sleep(interval)

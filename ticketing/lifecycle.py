"""Shared steps of every ticketing transaction: load-and-lock, apply a machine, record it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ticketing.context import Unit
from ticketing.errors import (
    FollowUpNotFound,
    ServiceRequestNotFound,
    WorkOrderNotFound,
)
from ticketing.journal import Actor, record
from ticketing.models import FollowUp, ServiceRequest, WorkOrder
from ticketing.states import (
    FOLLOW_UP,
    WORK_ORDER,
    FollowUpAction,
    FollowUpState,
    RequestAction,
    RequestState,
    WorkOrderAction,
    WorkOrderState,
    request_machine,
)


async def lock_request(unit: Unit, request_id: int) -> ServiceRequest:
    # FOR UPDATE serialises concurrent transitions on PostgreSQL; SQLite has one writer anyway.
    row = await unit.session.scalar(
        select(ServiceRequest).where(ServiceRequest.id == request_id).with_for_update()
    )
    if row is None:
        raise ServiceRequestNotFound(
            f"service request {request_id} does not exist", request_id=request_id
        )
    return row


async def lock_order(unit: Unit, order_id: int) -> WorkOrder:
    row = await unit.session.scalar(
        select(WorkOrder).where(WorkOrder.id == order_id).with_for_update()
    )
    if row is None:
        raise WorkOrderNotFound(f"work order {order_id} does not exist", work_order_id=order_id)
    return row


async def lock_follow_up(unit: Unit, follow_up_id: int) -> FollowUp:
    row = await unit.session.scalar(
        select(FollowUp).where(FollowUp.id == follow_up_id).with_for_update()
    )
    if row is None:
        raise FollowUpNotFound(
            f"follow-up {follow_up_id} does not exist", follow_up_id=follow_up_id
        )
    return row


_RESPONDED = {RequestAction.RESOLVE_BY_PHONE, RequestAction.DISPATCH_WORK_ORDER}


async def move_request(
    unit: Unit,
    row: ServiceRequest,
    action: RequestAction,
    actor: Actor,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> RequestState:
    before = RequestState(row.state)
    after = request_machine(row.category).apply(before, action)
    row.state = after.value
    _stamp(unit, row, action, after)
    unit.events.append(
        await record(
            unit.session,
            request_id=row.id,
            entity="request",
            entity_id=row.id,
            action=action.value,
            from_state=before.value,
            to_state=after.value,
            actor=actor,
            at=unit.now,
            reason=reason,
            detail=detail,
        )
    )
    return after


def _stamp(unit: Unit, row: ServiceRequest, action: RequestAction, after: RequestState) -> None:
    now = unit.now
    if (action in _RESPONDED or after == RequestState.COMPLAINT_HANDLING) and not row.responded_at:
        row.responded_at = now
    if action == RequestAction.DISPATCH_WORK_ORDER and row.dispatched_at is None:
        row.dispatched_at = now
    if after in (RequestState.COMPLETED, RequestState.RESOLVED_BY_PHONE):
        row.completed_at = now
    if after == RequestState.CLOSED:
        row.closed_at = now
    if action == RequestAction.REOPEN:
        row.reopen_count += 1
        row.closed_at = row.completed_at = row.responded_at = row.dispatched_at = None


async def move_order(
    unit: Unit,
    order: WorkOrder,
    action: WorkOrderAction,
    actor: Actor,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> WorkOrderState:
    before = WorkOrderState(order.state)
    after = WORK_ORDER.apply(before, action)
    order.state = after.value
    unit.events.append(
        await record(
            unit.session,
            request_id=order.request_id,
            entity="work_order",
            entity_id=order.id,
            action=action.value,
            from_state=before.value,
            to_state=after.value,
            actor=actor,
            at=unit.now,
            reason=reason,
            detail=detail,
        )
    )
    return after


async def move_follow_up(
    unit: Unit,
    row: FollowUp,
    action: FollowUpAction,
    after: FollowUpState,
    actor: Actor,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """`after` comes from the caller because no-answer depends on the attempt count."""
    before = FollowUpState(row.state)
    FOLLOW_UP.apply(before, action)
    row.state = after.value
    unit.events.append(
        await record(
            unit.session,
            request_id=row.request_id,
            entity="follow_up",
            entity_id=row.id,
            action=action.value,
            from_state=before.value,
            to_state=after.value,
            actor=actor,
            at=unit.now,
            reason=reason,
            detail=detail,
        )
    )

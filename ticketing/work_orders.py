"""服务派工单: the office supervisor dispatches, the technician reports by SMS, and completion
opens the follow-up. Reassignment (parts, return to factory) ends the order and opens a new
one that points back to it, so the history of both stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from crm_core.errors import ValidationError
from crm_core.events import WorkOrderDispatched
from crm_core.models import Customer, PhoneNumber, Role, User, Vehicle
from ticketing.context import TicketingContext, Unit
from ticketing.errors import ReasonRequired
from ticketing.field_links import FieldLinks
from ticketing.follow_ups import open_follow_up
from ticketing.journal import Actor, record
from ticketing.lifecycle import lock_order, lock_request, move_order, move_request
from ticketing.models import ServiceRequest, StaffMobile, WorkOrder
from ticketing.notices import SmsNotice
from ticketing.states import RequestAction, WorkOrderAction, WorkOrderState, label_zh

MAX_NOTE = 1000


@dataclass(frozen=True)
class FieldReport:
    """What a technician reported: an action, optionally an ETA (local time) and free text."""

    action: WorkOrderAction
    eta: time | None = None
    text: str | None = None
    # Extra facts for the transition record (the mobile page's position on arrival).
    detail: dict[str, Any] | None = None


def eta_from_local(clock_time: time, now: datetime, timezone: str) -> datetime:
    """Next occurrence of a local wall-clock time (a time already past means tomorrow)."""
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    candidate = datetime.combine(local_now.date(), clock_time, tzinfo=zone)
    if candidate < local_now - timedelta(minutes=5):
        candidate += timedelta(days=1)
    return candidate.astimezone(now.tzinfo)


async def mobile_of(unit: Unit, user_id: int) -> str | None:
    return await unit.session.scalar(select(StaffMobile.e164).where(StaffMobile.user_id == user_id))


async def _technician(unit: Unit, user_id: int) -> User:
    user = await unit.session.get(User, user_id)
    if user is None or not user.active or user.role != Role.TECHNICIAN.value:
        raise ValidationError(f"user {user_id} is not an active technician", field="technician_id")
    return user


async def dispatch_params(
    unit: Unit, links: FieldLinks | None, request: ServiceRequest, order: WorkOrder, tech: int
) -> dict[str, str]:
    """The work-order SMS's parameters; `link` (the whole URL) and `token` (its last path
    segment, for provider templates that hold the fixed URL prefix) open the mobile page."""
    customer = await unit.session.get(Customer, request.customer_id)
    vehicle = await unit.session.get(Vehicle, request.vehicle_id) if request.vehicle_id else None
    phone = await unit.session.scalar(
        select(PhoneNumber.raw)
        .where(PhoneNumber.customer_id == request.customer_id)
        .order_by(PhoneNumber.id)
        .limit(1)
    )
    place = " ".join(p for p in (customer.city, customer.address) if p) if customer else ""
    link = links.url(order.id, tech, unit.now) if links else ""
    return {
        "link": link,
        "token": link.rsplit("/", 1)[-1],
        "order": str(order.id),
        "request": request.number or str(request.id),
        "customer": customer.name if customer else "",
        "phone": phone or "",
        "vehicle": (vehicle.plate or vehicle.vin_tail) if vehicle else "",
        "address": place,
        "problem": request.description,
    }


async def notify_technician(
    ctx: TicketingContext,
    unit: Unit,
    request: ServiceRequest,
    order: WorkOrder,
    technician_id: int,
    key: str,
) -> None:
    """Queue the work-order SMS, with the technician's own mobile-page link, in this unit."""
    mobile = await mobile_of(unit, technician_id)
    if mobile:
        params = await dispatch_params(unit, ctx.links, request, order, technician_id)
        notice = SmsNotice(
            to=mobile,
            template="work_order_dispatched",
            params=params,
            key=key,
            request_id=request.id,
        )
        await ctx.notify(unit.session, notice)


class WorkOrderService:
    def __init__(self, ctx: TicketingContext) -> None:
        self.ctx = ctx

    async def dispatch(
        self, request_id: int, technician_id: int, actor: Actor, instructions: str | None = None
    ) -> WorkOrder:
        """派工: the office supervisor assigns a technician; the SMS is queued in this commit."""
        async with self.ctx.unit() as unit:
            request = await lock_request(unit, request_id)
            order = await self._new_order(unit, request, technician_id, actor, instructions, None)
            await move_request(
                unit,
                request,
                RequestAction.DISPATCH_WORK_ORDER,
                actor,
                detail={"work_order_id": order.id},
            )
            return order

    async def _new_order(
        self,
        unit: Unit,
        request: ServiceRequest,
        technician_id: int,
        actor: Actor,
        instructions: str | None,
        previous: WorkOrder | None,
    ) -> WorkOrder:
        await _technician(unit, technician_id)
        order = await add_order(
            unit,
            request,
            actor,
            instructions,
            state=WorkOrderState.ASSIGNED,
            accept_within=self.ctx.policy.accept_within,
            technician_id=technician_id,
            previous_id=previous.id if previous else None,
            action="create",
            detail={
                "technician_id": technician_id,
                "previous_id": previous.id if previous else None,
            },
        )
        await notify_technician(
            self.ctx, unit, request, order, technician_id, f"work_order:{order.id}:dispatched"
        )
        unit.events.append(WorkOrderDispatched(order.id, request.id, technician_id, request.office))
        return order

    async def reassign(
        self,
        order_id: int,
        technician_id: int,
        actor: Actor,
        reason: str,
        instructions: str | None = None,
    ) -> WorkOrder:
        """重新分配派工单: the old order ends as `reassigned`; a new one goes to the technician."""
        if not (reason or "").strip():
            raise ReasonRequired("a reassignment needs a reason", field="reason")
        async with self.ctx.unit() as unit:
            old = await lock_order(unit, order_id)
            request = await lock_request(unit, old.request_id)
            await move_order(
                unit,
                old,
                WorkOrderAction.REASSIGN,
                actor,
                reason=reason,
                detail={"to_technician_id": technician_id},
            )
            new = await self._new_order(unit, request, technician_id, actor, instructions, old)
            await move_request(
                unit,
                request,
                RequestAction.DISPATCH_WORK_ORDER,
                actor,
                reason=reason,
                detail={"work_order_id": new.id, "previous_id": old.id},
            )
            return new

    async def report(
        self,
        order_id: int,
        report: FieldReport,
        actor: Actor,
        reply_to: str | None = None,
        reply_key: str | None = None,
    ) -> WorkOrder:
        """A technician's report (desktop or SMS); with `reply_to`, the confirmation SMS is
        queued in the same transaction."""
        if report.action == WorkOrderAction.REASSIGN:
            raise ValidationError("reassignment is the supervisor's; use reassign")
        async with self.ctx.unit() as unit:
            order = await lock_order(unit, order_id)
            await self.apply_report(unit, order, report, actor)
            if reply_to:
                await self.ctx.notify(
                    unit.session,
                    SmsNotice(
                        to=reply_to,
                        template="command_ok",
                        params={
                            "order": str(order.id),
                            "state": order.state,
                            "state_label": label_zh(WorkOrderState, order.state),
                        },
                        key=reply_key or f"work_order:{order.id}:{report.action}:ok",
                        request_id=order.request_id,
                    ),
                )
            return order

    async def apply_report(
        self, unit: Unit, order: WorkOrder, report: FieldReport, actor: Actor
    ) -> None:
        text = (report.text or "").strip()[:MAX_NOTE] or None
        if report.action == WorkOrderAction.DECLINE and not text:
            raise ReasonRequired("declining a work order needs a reason", field="reason")
        detail: dict[str, Any] = dict(report.detail or {})
        if report.action == WorkOrderAction.SET_ETA:
            if report.eta is None:
                raise ValidationError("ETA needs a time like 14:30", field="eta")
            order.eta_at = eta_from_local(report.eta, unit.now, self.ctx.policy.timezone)
            detail["eta_at"] = order.eta_at.isoformat()
        after = await move_order(unit, order, report.action, actor, reason=text, detail=detail)
        self._stamp(unit, order, report.action, text)
        if after == WorkOrderState.DONE:
            request = await lock_request(unit, order.request_id)
            await move_request(
                unit,
                request,
                RequestAction.COMPLETE,
                actor,
                reason=text,
                detail={"work_order_id": order.id},
            )
            await open_follow_up(unit, self.ctx.policy, request, actor)
        elif after == WorkOrderState.DECLINED:
            request = await lock_request(unit, order.request_id)
            await move_request(
                unit,
                request,
                RequestAction.RETURN_TO_OFFICE,
                actor,
                reason=text,
                detail={"work_order_id": order.id},
            )

    @staticmethod
    def _stamp(unit: Unit, order: WorkOrder, action: WorkOrderAction, text: str | None) -> None:
        if action == WorkOrderAction.ACCEPT:
            order.accepted_at = unit.now
        elif action == WorkOrderAction.ARRIVE:
            order.arrived_at = unit.now
        elif action == WorkOrderAction.NEED_PARTS:
            order.parts_needed = text
        elif action == WorkOrderAction.COMPLETE:
            order.done_at, order.resolution = unit.now, text
            # Parts reported from the mobile page win over the parts asked for by SMS.
            order.parts_used = order.parts_used or order.parts_needed


async def add_order(
    unit: Unit,
    request: ServiceRequest,
    actor: Actor,
    instructions: str | None,
    *,
    state: WorkOrderState,
    accept_within: timedelta,
    technician_id: int | None,
    previous_id: int | None,
    action: str,
    detail: dict[str, object],
) -> WorkOrder:
    """A new work order of `request` and its journal entry: assigned to one technician
    (dispatch) or offered to several (ticketing/offers.py)."""
    order = WorkOrder(
        request_id=request.id,
        technician_id=technician_id,
        assigned_by_id=actor.user_id,
        previous_id=previous_id,
        state=state.value,
        instructions=(instructions or "").strip()[:MAX_NOTE] or None,
        accept_due_at=unit.now + accept_within,
        created_at=unit.now,
    )
    unit.session.add(order)
    await unit.session.flush()
    unit.events.append(
        await record(
            unit.session,
            request_id=request.id,
            entity="work_order",
            entity_id=order.id,
            action=action,
            from_state=None,
            to_state=order.state,
            actor=actor,
            at=unit.now,
            detail=detail,
        )
    )
    return order

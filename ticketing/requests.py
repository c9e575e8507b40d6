"""服务请求: create a request during a call, then review, route to an office, close, reopen.

Each public method is one transaction; its transitions are recorded in it and the events are
published after it commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from crm_core.errors import RequiredFieldMissing, ValidationError
from crm_core.events import CallLinkRequested
from crm_core.models import Contact, Customer, Role, User, Vehicle
from ticketing.context import TicketingContext, Unit
from ticketing.errors import IllegalRequestTransition, ReasonRequired
from ticketing.follow_ups import open_follow_up
from ticketing.journal import Actor, record
from ticketing.lifecycle import lock_request, move_request
from ticketing.models import ServiceRequest
from ticketing.states import Category, Channel, Priority, RequestAction, RequestState

MAX_DESCRIPTION = 4000
# Actions that only the work-order and follow-up flows may take on a request.
_INTERNAL = {RequestAction.DISPATCH_WORK_ORDER, RequestAction.START_FOLLOW_UP}
_NEEDS_REASON = {RequestAction.REJECT, RequestAction.REOPEN, RequestAction.RESOLVE_BY_PHONE}


def _choice(values: Mapping[str, Any], key: str, kind: type[Any], default: str | None) -> str:
    raw = values.get(key, default)
    allowed = [m.value for m in kind]
    if raw not in allowed:
        raise ValidationError(f"{key} must be one of {', '.join(allowed)}", field=key)
    return str(raw)


def _text(values: Mapping[str, Any], key: str, limit: int) -> str | None:
    raw = values.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationError(f"{key} must be text", field=key)
    raw = raw.strip()
    if len(raw) > limit:
        raise ValidationError(f"{key} is {len(raw)} characters; at most {limit}", field=key)
    return raw or None


async def _check_links(unit: Unit, customer_id: Any, values: Mapping[str, Any]) -> Customer:
    customer = (
        await unit.session.get(Customer, customer_id) if isinstance(customer_id, int) else None
    )
    if customer is None or customer.deleted:
        raise ValidationError(f"customer {customer_id} does not exist", field="customer_id")
    for key in ("vehicle_id", "contact_id"):
        ref = values.get(key)
        if ref is None:
            continue
        row: Vehicle | Contact | None = None
        if isinstance(ref, int):
            model = Vehicle if key == "vehicle_id" else Contact
            row = await unit.session.get(model, ref)
        if row is None or row.customer_id != customer.id or row.deleted:
            raise ValidationError(f"{key} {ref} does not belong to this customer", field=key)
    return customer


KNOWN_FIELDS = {
    "customer_id",
    "vehicle_id",
    "contact_id",
    "channel",
    "category",
    "priority",
    "description",
    "region",
    "office",
    "call_linkedid",
}


class ServiceRequestService:
    def __init__(self, ctx: TicketingContext) -> None:
        self.ctx = ctx

    async def create(self, values: Mapping[str, Any], actor: Actor) -> ServiceRequest:
        unknown = sorted(set(values) - KNOWN_FIELDS)
        if unknown:
            raise ValidationError(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
        description = _text(values, "description", MAX_DESCRIPTION)
        if not description:
            raise RequiredFieldMissing("description is required", field="description")
        async with self.ctx.unit() as unit:
            customer = await _check_links(unit, values.get("customer_id"), values)
            priority = _choice(values, "priority", Priority, Priority.NORMAL)
            response_due, resolution_due = self.ctx.policy.due_times(priority, unit.now)
            row = ServiceRequest(
                customer_id=customer.id,
                vehicle_id=values.get("vehicle_id"),
                contact_id=values.get("contact_id"),
                channel=_choice(values, "channel", Channel, Channel.PHONE),
                category=_choice(values, "category", Category, Category.REPAIR),
                priority=priority,
                state=RequestState.NEW.value,
                description=description,
                region=_text(values, "region", 100) or customer.region,
                office=_text(values, "office", 100),
                call_linkedid=_text(values, "call_linkedid", 64),
                created_by_id=actor.user_id,
                created_at=unit.now,
                updated_at=unit.now,
                response_due_at=response_due,
                resolution_due_at=resolution_due,
            )
            unit.session.add(row)
            await unit.session.flush()
            row.number = f"FW{row.id:06d}"
            unit.events.append(
                await record(
                    unit.session,
                    request_id=row.id,
                    entity="request",
                    entity_id=row.id,
                    action="create",
                    from_state=None,
                    to_state=row.state,
                    actor=actor,
                    at=unit.now,
                    detail={"call_linkedid": row.call_linkedid},
                )
            )
            if row.call_linkedid:
                unit.events.append(CallLinkRequested(row.id, row.call_linkedid))
            return row

    async def act(
        self,
        request_id: int,
        action: RequestAction | str,
        actor: Actor,
        reason: str | None = None,
        office: str | None = None,
    ) -> ServiceRequest:
        """Review, approve (to an office), reject, resubmit, resolve by phone, close, reopen."""
        action = RequestAction(action)
        reason = (reason or "").strip() or None
        if action in _NEEDS_REASON and not reason:
            raise ReasonRequired(f"{action} needs a reason", field="reason")
        async with self.ctx.unit() as unit:
            row = await lock_request(unit, request_id)
            self._refuse_internal(row, action)
            if action == RequestAction.APPROVE and row.category != Category.COMPLAINT:
                row.office = await self._office_for(unit, row, office)
            if action == RequestAction.HANDLE_COMPLAINT:
                row.office = await self._office_for(unit, row, office)
            after = await move_request(
                unit,
                row,
                action,
                actor,
                reason=reason,
                detail={"office": row.office} if office else None,
            )
            if action == RequestAction.REOPEN:
                row.response_due_at, row.resolution_due_at = self.ctx.policy.due_times(
                    row.priority, unit.now
                )
            if after == RequestState.COMPLETED:
                await open_follow_up(unit, self.ctx.policy, row, actor)
            return row

    @staticmethod
    def _refuse_internal(row: ServiceRequest, action: RequestAction) -> None:
        internal = (
            action in _INTERNAL
            or (action == RequestAction.COMPLETE and row.category != Category.COMPLAINT)
            or (action == RequestAction.CLOSE and row.state == RequestState.FOLLOW_UP)
        )
        if internal:
            raise IllegalRequestTransition(
                f"{action} happens through the work order or the follow-up, not directly",
                state=row.state,
                action=action.value,
            )

    async def _office_for(self, unit: Unit, row: ServiceRequest, office: str | None) -> str:
        """The office given, else the request's, else the one office of the region's
        supervisors; the reviewer must choose when that is not unique."""
        if office and office.strip():
            return office.strip()[:100]
        if row.office:
            return row.office
        offices = set(
            (
                await unit.session.scalars(
                    select(User.office).where(
                        User.role == Role.SUPERVISOR.value,
                        User.region == row.region,
                        User.active.is_(True),
                        User.office.is_not(None),
                    )
                )
            ).all()
        )
        if len(offices) != 1:
            raise RequiredFieldMissing(
                "choose the office (办事处) to send this request to",
                field="office",
                candidates=sorted(o for o in offices if o),
            )
        return str(offices.pop())

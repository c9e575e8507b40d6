"""抢单: the office offers one work order to several of its technicians; the first to accept
gets it, the others see it taken.

Taking is one conditional UPDATE (`... WHERE state = 'offered' AND technician_id IS NULL`),
never read-then-write: of two technicians accepting at the same moment exactly one UPDATE
matches a row, on PostgreSQL (the second waits for the first's row lock, then re-checks the
condition) as on SQLite (one writer).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, select, update

from crm_core.errors import ValidationError
from crm_core.models import Role, User
from ticketing.context import TicketingContext, Unit
from ticketing.errors import NotYourWorkOrder, WorkOrderTaken
from ticketing.journal import Actor, record
from ticketing.lifecycle import lock_order, lock_request, move_order, move_request
from ticketing.models import ServiceRequest, WorkOrder, WorkOrderOffer
from ticketing.states import (
    WORK_ORDER,
    RequestAction,
    WorkOrderAction,
    WorkOrderState,
)
from ticketing.work_orders import add_order, notify_technician

OPEN, TAKEN, LOST, DECLINED = "open", "taken", "lost", "declined"
MAX_OFFERED = 20


async def open_offer(unit: Unit, order_id: int, technician_id: int) -> WorkOrderOffer | None:
    row: WorkOrderOffer | None = await unit.session.scalar(
        select(WorkOrderOffer).where(
            WorkOrderOffer.work_order_id == order_id,
            WorkOrderOffer.technician_id == technician_id,
        )
    )
    return row


async def _office_technicians(unit: Unit, ids: Sequence[int], office: str | None) -> list[int]:
    wanted = sorted(set(ids))
    if not 2 <= len(wanted) <= MAX_OFFERED:
        raise ValidationError(
            f"offer a work order to 2 to {MAX_OFFERED} technicians", field="technician_ids"
        )
    rows = await unit.session.scalars(
        select(User.id).where(
            User.id.in_(wanted), User.active.is_(True), User.role == Role.TECHNICIAN.value
        )
    )
    found = set(rows.all())
    if found != set(wanted):
        missing = sorted(set(wanted) - found)
        raise ValidationError(f"not active technicians: {missing}", field="technician_ids")
    if office:
        offices = await unit.session.scalars(
            select(User.id).where(User.id.in_(wanted), User.office != office)
        )
        if outside := sorted(offices.all()):
            raise ValidationError(
                f"technicians {outside} do not work for {office}", field="technician_ids"
            )
    return wanted


class OfferService:
    def __init__(self, ctx: TicketingContext) -> None:
        self.ctx = ctx

    async def offer(
        self,
        request_id: int,
        technician_ids: Sequence[int],
        actor: Actor,
        instructions: str | None = None,
    ) -> WorkOrder:
        """One order, offered to each technician by SMS with their own link."""
        async with self.ctx.unit() as unit:
            request = await lock_request(unit, request_id)
            wanted = await _office_technicians(unit, technician_ids, request.office)
            order = await self._offered_order(unit, request, actor, instructions, wanted)
            for technician_id in wanted:
                unit.session.add(
                    WorkOrderOffer(
                        work_order_id=order.id,
                        technician_id=technician_id,
                        state=OPEN,
                        created_at=unit.now,
                    )
                )
                key = f"work_order:{order.id}:offer:{technician_id}"
                await notify_technician(self.ctx, unit, request, order, technician_id, key)
            await move_request(
                unit,
                request,
                RequestAction.DISPATCH_WORK_ORDER,
                actor,
                detail={"work_order_id": order.id, "offered_to": wanted},
            )
            return order

    async def _offered_order(
        self,
        unit: Unit,
        request: ServiceRequest,
        actor: Actor,
        instructions: str | None,
        wanted: list[int],
    ) -> WorkOrder:
        return await add_order(
            unit,
            request,
            actor,
            instructions,
            state=WorkOrderState.OFFERED,
            accept_within=self.ctx.policy.accept_within,
            technician_id=None,
            previous_id=None,
            action="offer",
            detail={"technician_ids": wanted},
        )


async def take_offer(unit: Unit, order: WorkOrder, technician_id: int, actor: Actor) -> None:
    """接单 on an offered order: the conditional UPDATE decides who gets it."""
    offer = await open_offer(unit, order.id, technician_id)
    if offer is None:
        raise NotYourWorkOrder(
            f"work order {order.id} was not offered to you", work_order_id=order.id
        )
    before = WorkOrderState.OFFERED
    after = WORK_ORDER.apply(before, WorkOrderAction.ACCEPT)
    result = await unit.session.execute(
        update(WorkOrder)
        .where(
            WorkOrder.id == order.id,
            WorkOrder.state == before.value,
            WorkOrder.technician_id.is_(None),
        )
        .values(technician_id=technician_id, state=after.value, accepted_at=unit.now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise WorkOrderTaken(
            f"work order {order.id} was taken by another technician", work_order_id=order.id
        )
    await unit.session.execute(
        update(WorkOrderOffer)
        .where(WorkOrderOffer.work_order_id == order.id, WorkOrderOffer.state == OPEN)
        .values(
            state=case((WorkOrderOffer.technician_id == technician_id, TAKEN), else_=LOST),
            answered_at=unit.now,
        )
        .execution_options(synchronize_session=False)
    )
    await unit.session.refresh(order)
    unit.events.append(
        await record(
            unit.session,
            request_id=order.request_id,
            entity="work_order",
            entity_id=order.id,
            action=WorkOrderAction.ACCEPT.value,
            from_state=before.value,
            to_state=after.value,
            actor=actor,
            at=unit.now,
            detail={"offer": True},
        )
    )


async def decline_offer(
    unit: Unit, order_id: int, technician_id: int, reason: str, actor: Actor
) -> WorkOrder:
    """拒单 on an offer: the order stays offered to the others; when nobody is left, it is
    declined and the request goes back to the office."""
    order = await lock_order(unit, order_id)
    offer = await open_offer(unit, order.id, technician_id)
    if offer is None:
        raise NotYourWorkOrder(
            f"work order {order_id} was not offered to you", work_order_id=order_id
        )
    if offer.state != OPEN or order.state != WorkOrderState.OFFERED:
        raise WorkOrderTaken(f"work order {order_id} is no longer on offer", work_order_id=order_id)
    offer.state, offer.reason, offer.answered_at = DECLINED, reason, unit.now
    await unit.session.flush()
    still_open = await unit.session.scalar(
        select(func.count())
        .select_from(WorkOrderOffer)
        .where(WorkOrderOffer.work_order_id == order.id, WorkOrderOffer.state == OPEN)
    )
    if not still_open:
        await move_order(unit, order, WorkOrderAction.DECLINE, actor, reason=reason)
        request = await lock_request(unit, order.request_id)
        await move_request(
            unit,
            request,
            RequestAction.RETURN_TO_OFFICE,
            actor,
            reason=reason,
            detail={"work_order_id": order.id},
        )
    return order

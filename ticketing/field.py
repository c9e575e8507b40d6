"""Technician commands arriving by SMS: who sent it, which order, and is it theirs.

The parsing of the text is sms_gateway's; this module takes the parsed command, so the two
packages meet only in the composition root.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import or_, select

from crm_core.models import AuditEntry, Role, User
from crm_core.phones import parse_or_raise
from ticketing.context import TicketingContext, Unit
from ticketing.errors import NotYourWorkOrder, UnknownSender, WorkOrderAmbiguous
from ticketing.journal import Actor
from ticketing.lifecycle import lock_order
from ticketing.models import StaffMobile, WorkOrder, WorkOrderOffer
from ticketing.notices import SmsNotice
from ticketing.offers import OPEN, decline_offer, take_offer
from ticketing.states import OPEN_WORK_ORDER_STATES, WorkOrderAction, WorkOrderState, label_zh
from ticketing.work_orders import FieldReport, WorkOrderService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldOutcome:
    work_order_id: int
    state: str


async def technician_by_mobile(unit: Unit, e164: str) -> User | None:
    return await unit.session.scalar(
        select(User)
        .join(StaffMobile, StaffMobile.user_id == User.id)
        .where(StaffMobile.e164 == e164, User.active.is_(True), User.role == Role.TECHNICIAN.value)
    )


async def _open_orders(unit: Unit, technician_id: int) -> list[int]:
    offered = select(WorkOrderOffer.work_order_id).where(
        WorkOrderOffer.technician_id == technician_id, WorkOrderOffer.state == OPEN
    )
    rows = await unit.session.scalars(
        select(WorkOrder.id)
        .where(
            or_(WorkOrder.technician_id == technician_id, WorkOrder.id.in_(offered)),
            WorkOrder.state.in_([s.value for s in OPEN_WORK_ORDER_STATES]),
        )
        .order_by(WorkOrder.id)
    )
    return list(rows.all())


def _audit(unit: Unit, action: str, sender: str, user_id: int | None, order: int | None) -> None:
    unit.session.add(
        AuditEntry(
            at=unit.now,
            user_id=user_id,
            action=action,
            object_type="work_order",
            object_id=str(order) if order is not None else None,
            detail={"from": sender},
        )
    )


class FieldCommands:
    def __init__(self, ctx: TicketingContext, orders: WorkOrderService) -> None:
        self.ctx = ctx
        self.orders = orders

    async def handle(
        self, sender: str, order_id: int | None, report: FieldReport, reply_key: str
    ) -> FieldOutcome:
        """Apply one command; raise UnknownSender / NotYourWorkOrder / WorkOrderAmbiguous /
        IllegalWorkOrderTransition with nothing changed. Refusals are audited separately."""
        async with self.ctx.unit() as unit:
            tech = await technician_by_mobile(unit, sender)
            if tech is None:
                raise UnknownSender("this number belongs to no technician", sender=sender)
            order_id = await self._choose(unit, tech, order_id)
            order = await lock_order(unit, order_id)
            actor = Actor.sms(tech.id, sender)
            offered = order.state == WorkOrderState.OFFERED
            if offered and report.action == WorkOrderAction.ACCEPT:
                await take_offer(unit, order, tech.id, actor)
            elif offered and report.action == WorkOrderAction.DECLINE:
                await decline_offer(unit, order.id, tech.id, report.text or "", actor)
            elif order.technician_id != tech.id:
                raise NotYourWorkOrder(
                    f"work order {order_id} is assigned to someone else", work_order_id=order_id
                )
            else:
                await self.orders.apply_report(unit, order, report, actor)
            await self.ctx.notify(
                unit.session,
                SmsNotice(
                    to=sender,
                    template="command_ok",
                    params={
                        "order": str(order.id),
                        "state": order.state,
                        "state_label": label_zh(WorkOrderState, order.state),
                    },
                    key=reply_key,
                    request_id=order.request_id,
                ),
            )
            return FieldOutcome(order.id, order.state)

    async def _choose(self, unit: Unit, tech: User, order_id: int | None) -> int:
        if order_id is not None:
            return order_id
        open_ids = await _open_orders(unit, tech.id)
        if len(open_ids) != 1:
            raise WorkOrderAmbiguous(
                "give the work order number" if open_ids else "you have no open work order",
                open_orders=open_ids,
            )
        return open_ids[0]

    async def refuse(
        self, sender: str, order_id: int | None, error_id: str, reply: SmsNotice | None = None
    ) -> int | None:
        """Record a refused command in the audit log, and queue the refusal SMS with it (own
        transaction: the failed one rolled back). Returns the technician's id, if any."""
        async with self.ctx.unit() as unit:
            tech = await technician_by_mobile(unit, sender)
            _audit(
                unit,
                f"sms_command_refused:{error_id}"[:50],
                sender,
                tech.id if tech else None,
                order_id,
            )
            if reply is not None and tech is not None:
                await self.ctx.notify(unit.session, reply)
            log.warning("SMS command refused (%s) from %s on order %s", error_id, sender, order_id)
            return tech.id if tech else None

    async def is_technician(self, sender: str) -> bool:
        async with self.ctx.unit() as unit:
            return await technician_by_mobile(unit, sender) is not None


async def set_mobile(ctx: TicketingContext, user_id: int, e164: str) -> None:
    """Register (or change) a staff member's mobile for SMS."""
    e164 = parse_or_raise(e164, home_area_code=ctx.db.settings.home_area_code).e164
    async with ctx.unit() as unit:
        row = await unit.session.get(StaffMobile, user_id)
        if row is None:
            unit.session.add(StaffMobile(user_id=user_id, e164=e164))
        else:
            row.e164 = e164

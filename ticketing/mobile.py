"""The technician's mobile page, domain side: what the page shows, and its actions.

Every action goes through the same state machine, transition records and audit as an SMS
command (WorkOrderService.apply_report, take_offer, decline_offer), so SMS and page can be
mixed on one order. Each action carries a client-made id, stored in `field_actions` (unique)
in the same transaction as its effect: a resent action is answered from the stored row and
applied once; a failed one stores nothing and may be sent again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from crm_core.errors import ValidationError
from crm_core.models import AuditEntry, Role, User
from ticketing.context import TicketingContext, Unit
from ticketing.errors import (
    ActionIdReused,
    IllegalWorkOrderTransition,
    NotYourWorkOrder,
    ReasonRequired,
    SignatureRequired,
    WorkOrderNotFound,
    WorkOrderTaken,
)
from ticketing.journal import Actor
from ticketing.lifecycle import lock_order
from ticketing.models import FieldAction, WorkOrder, WorkOrderFile
from ticketing.offers import decline_offer, open_offer, take_offer
from ticketing.states import WorkOrderAction, WorkOrderState
from ticketing.work_orders import MAX_NOTE, FieldReport, WorkOrderService

MAX_ACTION_ID = 64


class MobileKind(enum.StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    ETA = "eta"
    ARRIVE = "arrive"
    NOTE = "note"
    PARTS = "parts"
    PHOTO = "photo"
    COMPLETE = "complete"


# The page's actions that are a step of the work-order machine.
TRANSITIONS = {
    MobileKind.ACCEPT: WorkOrderAction.ACCEPT,
    MobileKind.DECLINE: WorkOrderAction.DECLINE,
    MobileKind.ETA: WorkOrderAction.SET_ETA,
    MobileKind.ARRIVE: WorkOrderAction.ARRIVE,
    MobileKind.COMPLETE: WorkOrderAction.COMPLETE,
}
# Notes, parts and photos belong to an order being worked on.
WORKING = frozenset(
    {
        WorkOrderState.ACCEPTED,
        WorkOrderState.EN_ROUTE,
        WorkOrderState.ON_SITE,
        WorkOrderState.NEEDS_PARTS,
        WorkOrderState.RETURN_TO_FACTORY,
    }
)


@dataclass(frozen=True)
class StoredFile:
    """A photo or signature already written to the store (ticketing.field_files)."""

    path: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    content_type: str


@dataclass(frozen=True)
class MobileAction:
    action_id: str
    kind: MobileKind
    text: str | None = None
    eta: time | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    file: StoredFile | None = None


@dataclass(frozen=True)
class ActionResult:
    work_order_id: int
    state: str
    duplicate: bool


def check_action_id(value: object) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= MAX_ACTION_ID or not value.isascii():
        raise ValidationError(
            "action_id: 8-64 ASCII characters made by the page", field="action_id"
        )
    return value


async def _claim(unit: Unit, order_id: int, tech_id: int, action: MobileAction) -> bool:
    """Store the action id; False when it was stored before (the page resent it)."""
    dialect = unit.session.bind.dialect.name if unit.session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = await unit.session.execute(
        insert(FieldAction)
        .values(
            action_id=action.action_id,
            work_order_id=order_id,
            technician_id=tech_id,
            kind=action.kind.value,
            text=action.text,
            detail=action.detail or None,
            at=unit.now,
        )
        .on_conflict_do_nothing(index_elements=["action_id"])
        .returning(FieldAction.id)
    )
    return result.scalar() is not None


async def _technician(unit: Unit, tech_id: int) -> User:
    user = await unit.session.get(User, tech_id)
    if user is None or not user.active or user.role != Role.TECHNICIAN.value:
        raise NotYourWorkOrder("this link belongs to no active technician")
    return user


class MobileFieldService:
    def __init__(self, ctx: TicketingContext, orders: WorkOrderService) -> None:
        self.ctx = ctx
        self.orders = orders

    async def act(self, order_id: int, tech_id: int, action: MobileAction) -> ActionResult:
        """Apply one page action once; refusals raise with nothing stored."""
        async with self.ctx.unit() as unit:
            await _technician(unit, tech_id)
            if not await _claim(unit, order_id, tech_id, action):
                return await self._replay(unit, order_id, tech_id, action)
            order = await self._apply(unit, order_id, tech_id, action)
            await unit.session.flush()
            stored = await unit.session.scalar(
                select(FieldAction).where(FieldAction.action_id == action.action_id)
            )
            assert stored is not None
            stored.outcome = order.state
            unit.session.add(
                AuditEntry(
                    at=unit.now,
                    user_id=tech_id,
                    action=f"field_mobile:{action.kind.value}",
                    object_type="work_order",
                    object_id=str(order.id),
                    detail={"action_id": action.action_id, "state": order.state},
                )
            )
            return ActionResult(order.id, order.state, duplicate=False)

    async def _replay(
        self, unit: Unit, order_id: int, tech_id: int, action: MobileAction
    ) -> ActionResult:
        stored = await unit.session.scalar(
            select(FieldAction).where(FieldAction.action_id == action.action_id)
        )
        assert stored is not None
        same = (stored.work_order_id, stored.technician_id, stored.kind) == (
            order_id,
            tech_id,
            action.kind.value,
        )
        if not same:
            raise ActionIdReused("this action id was used for another action")
        order = await unit.session.get(WorkOrder, order_id)
        state = order.state if order is not None else stored.outcome or ""
        return ActionResult(order_id, state, duplicate=True)

    async def _apply(
        self, unit: Unit, order_id: int, tech_id: int, action: MobileAction
    ) -> WorkOrder:
        actor = Actor.field_link(tech_id)
        order = await unit.session.get(WorkOrder, order_id)
        if order is None:
            raise WorkOrderNotFound(f"work order {order_id} does not exist", work_order_id=order_id)
        if order.state == WorkOrderState.OFFERED:
            return await self._on_offer(unit, order, tech_id, action, actor)
        order = await lock_order(unit, order_id)
        if order.technician_id != tech_id:
            if await open_offer(unit, order_id, tech_id) is not None:
                raise WorkOrderTaken("another technician took this work order first")
            raise NotYourWorkOrder("this work order is assigned to someone else")
        if action.kind in TRANSITIONS:
            await self._transition(unit, order, action, actor)
        else:
            self._record(unit, order, tech_id, action)
        return order

    async def _on_offer(
        self, unit: Unit, order: WorkOrder, tech_id: int, action: MobileAction, actor: Actor
    ) -> WorkOrder:
        if action.kind == MobileKind.ACCEPT:
            await take_offer(unit, order, tech_id, actor)
            return order
        if action.kind == MobileKind.DECLINE:
            return await decline_offer(unit, order.id, tech_id, _reason(action), actor)
        raise IllegalWorkOrderTransition(
            f"work order: accept it before {action.kind}",
            state=order.state,
            action=action.kind.value,
            allowed=[MobileKind.ACCEPT.value, MobileKind.DECLINE.value],
        )

    async def _transition(
        self, unit: Unit, order: WorkOrder, action: MobileAction, actor: Actor
    ) -> None:
        if action.kind == MobileKind.COMPLETE:
            if action.file is None:
                raise SignatureRequired(
                    "completion needs the customer's signature", field="signature"
                )
            self._add_file(unit, order, "signature", action)
        text = _reason(action) if action.kind == MobileKind.DECLINE else action.text
        report = FieldReport(TRANSITIONS[action.kind], action.eta, text, action.detail or None)
        await self.orders.apply_report(unit, order, report, actor)

    def _record(self, unit: Unit, order: WorkOrder, tech_id: int, action: MobileAction) -> None:
        if WorkOrderState(order.state) not in WORKING:
            raise IllegalWorkOrderTransition(
                f"work order: cannot add {action.kind} while {order.state}",
                state=order.state,
                action=action.kind.value,
                allowed=[],
            )
        if action.kind == MobileKind.PHOTO:
            if action.file is None:
                raise ValidationError("send the photo", field="photo")
            self._add_file(unit, order, "photo", action)
            return
        if not action.text:
            raise ValidationError("write something first", field="text")
        if action.kind == MobileKind.PARTS:
            order.parts_used = action.text[:MAX_NOTE]

    @staticmethod
    def _add_file(unit: Unit, order: WorkOrder, kind: str, action: MobileAction) -> None:
        stored = action.file
        assert stored is not None and order.technician_id is not None
        unit.session.add(
            WorkOrderFile(
                work_order_id=order.id,
                technician_id=order.technician_id,
                kind=kind,
                path=stored.path,
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                width=stored.width,
                height=stored.height,
                content_type=stored.content_type,
                action_id=action.action_id,
                created_at=unit.now,
            )
        )


def _reason(action: MobileAction) -> str:
    reason = (action.text or "").strip()
    if not reason:
        raise ReasonRequired("declining needs a reason", field="text")
    return reason

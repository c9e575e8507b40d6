"""What the technician's mobile page and the desktop show of a work order's field work: the
order and its customer for the technician, and the photos, signature, notes and parts for
both."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import Customer, PhoneNumber, User, Vehicle
from ticketing.errors import NotYourWorkOrder, WorkOrderNotFound
from ticketing.models import FieldAction, ServiceRequest, WorkOrder, WorkOrderFile, WorkOrderOffer
from ticketing.states import WORK_ORDER, WorkOrderState, label_zh

# Field actions shown as text on the order (notes, parts, the reason of a decline).
TEXT_KINDS = ("note", "parts", "decline", "complete")


@dataclass(frozen=True)
class FieldNote:
    kind: str
    text: str
    at: datetime
    technician_id: int


@dataclass
class FieldRecords:
    files: list[WorkOrderFile] = field(default_factory=list)
    notes: list[FieldNote] = field(default_factory=list)


@dataclass(frozen=True)
class MobileOrder:
    order: WorkOrder
    request: ServiceRequest
    customer: Customer | None
    phones: list[str]
    vehicle: Vehicle | None
    technician: User
    # open / taken / lost / declined for an offered order; None for an assigned one.
    offer_state: str | None
    records: FieldRecords
    allowed: list[str]

    @property
    def state_label(self) -> str:
        return label_zh(WorkOrderState, self.order.state)

    @property
    def mine(self) -> bool:
        return self.order.technician_id == self.technician.id

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.order.id,
            "state": self.order.state,
            "state_label": self.state_label,
            "mine": self.mine,
            "offer_state": self.offer_state,
            "allowed": self.allowed,
            "eta_at": self.order.eta_at.isoformat() if self.order.eta_at else None,
            "photos": sum(1 for f in self.records.files if f.kind == "photo"),
            "signed": any(f.kind == "signature" for f in self.records.files),
        }


async def field_records(db: Database, order_ids: Iterable[int]) -> dict[int, FieldRecords]:
    ids = sorted(set(order_ids))
    records: dict[int, FieldRecords] = {i: FieldRecords() for i in ids}
    if not ids:
        return records
    async with db.transaction() as s:
        files = await s.scalars(
            select(WorkOrderFile)
            .where(WorkOrderFile.work_order_id.in_(ids))
            .order_by(WorkOrderFile.id)
        )
        for row in files:
            records[row.work_order_id].files.append(row)
        actions = await s.scalars(
            select(FieldAction)
            .where(FieldAction.work_order_id.in_(ids), FieldAction.kind.in_(TEXT_KINDS))
            .order_by(FieldAction.id)
        )
        for action in actions:
            if action.text:
                records[action.work_order_id].notes.append(
                    FieldNote(action.kind, action.text, action.at, action.technician_id)
                )
    return records


def _allowed(order: WorkOrder, tech_id: int, offer_state: str | None) -> list[str]:
    state = WorkOrderState(order.state)
    if state == WorkOrderState.OFFERED:
        return ["accept", "decline"] if offer_state == "open" else []
    if order.technician_id != tech_id:
        return []
    actions = [a.value for a in WORK_ORDER.allowed(state) if a.value != "reassign"]
    working = state not in WORK_ORDER.terminal and state != WorkOrderState.ASSIGNED
    return actions + (["note", "parts", "photo"] if working else [])


async def mobile_order(db: Database, order_id: int, tech_id: int) -> MobileOrder:
    """The order as its technician (or one it is offered to) sees it; others get 403."""
    async with db.transaction() as s:
        order = await s.get(WorkOrder, order_id)
        technician = await s.get(User, tech_id)
        if order is None:
            raise WorkOrderNotFound(f"work order {order_id} does not exist", work_order_id=order_id)
        offer = await s.scalar(
            select(WorkOrderOffer).where(
                WorkOrderOffer.work_order_id == order_id, WorkOrderOffer.technician_id == tech_id
            )
        )
        if technician is None or not technician.active:
            raise NotYourWorkOrder("this link belongs to no active technician")
        if order.technician_id != tech_id and offer is None:
            raise NotYourWorkOrder("this work order is assigned to someone else")
        request = await s.get(ServiceRequest, order.request_id)
        assert request is not None
        customer = await s.get(Customer, request.customer_id)
        phones = (
            await s.scalars(
                select(PhoneNumber.raw)
                .where(PhoneNumber.customer_id == request.customer_id)
                .order_by(PhoneNumber.id)
                .limit(3)
            )
        ).all()
        vehicle = await s.get(Vehicle, request.vehicle_id) if request.vehicle_id else None
    offer_state = offer.state if offer is not None else None
    records = (await field_records(db, [order_id]))[order_id]
    return MobileOrder(
        order,
        request,
        customer,
        list(phones),
        vehicle,
        technician,
        offer_state,
        records,
        _allowed(order, tech_id, offer_state),
    )

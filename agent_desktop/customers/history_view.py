"""The customer 360's change history: the customer's own changes and those of its contacts and
vehicles (deleted ones too, so they can be restored), newest first, with who made each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from crm_core import history
from crm_core.db import Database
from crm_core.models import ChangeRecord, Contact, Customer, User, Vehicle

HISTORY_ROWS = 50
NOT_RESTORABLE = frozenset({"merge", "merge_in"})  # undone with unmerge instead


@dataclass(frozen=True)
class HistoryRow:
    id: int
    entity: str
    entity_id: int
    subject: str  # the contact's name or the vehicle's VIN; empty for the customer itself
    action: str
    at: datetime
    who: str | None
    changed: tuple[str, ...]
    note: str | None

    @property
    def restorable(self) -> bool:
        return self.action not in NOT_RESTORABLE

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "subject": self.subject,
            "action": self.action,
            "at": self.at.isoformat(),
            "who": self.who,
            "changed": list(self.changed),
            "note": self.note,
            "restorable": self.restorable,
        }


async def customer_history(
    db: Database, customer_id: int, limit: int = HISTORY_ROWS
) -> list[HistoryRow]:
    async with db.transaction() as session:
        contacts = dict(
            (
                await session.execute(
                    select(Contact.id, Contact.name).where(Contact.customer_id == customer_id)
                )
            ).all()
        )
        vehicles = dict(
            (
                await session.execute(
                    select(Vehicle.id, Vehicle.vin).where(Vehicle.customer_id == customer_id)
                )
            ).all()
        )
        whose = or_(
            and_(ChangeRecord.entity == "customer", ChangeRecord.entity_id == customer_id),
            and_(ChangeRecord.entity == "contact", ChangeRecord.entity_id.in_(list(contacts))),
            and_(ChangeRecord.entity == "vehicle", ChangeRecord.entity_id.in_(list(vehicles))),
        )
        rows = (
            await session.execute(
                select(ChangeRecord, User.display_name)
                .outerjoin(User, User.id == ChangeRecord.user_id)
                .where(whose)
                .order_by(ChangeRecord.id.desc())
                .limit(limit)
            )
        ).all()
    subjects = {"contact": contacts, "vehicle": vehicles}
    return [
        HistoryRow(
            r.id,
            r.entity,
            r.entity_id,
            str(subjects.get(r.entity, {}).get(r.entity_id, "")),
            r.action,
            r.at,
            who,
            history.changed_fields(r.before, r.after),
            r.note,
        )
        for r, who in rows
    ]


async def latest_merge_of(db: Database, source_id: int) -> int | None:
    """The change id of the merge that made `source` a tombstone, if it still is one."""
    async with db.transaction() as session:
        source = await session.get(Customer, source_id)
        if source is None or source.merged_into_id is None:
            return None
        return await session.scalar(
            select(ChangeRecord.id)
            .where(
                ChangeRecord.entity == "customer",
                ChangeRecord.entity_id == source_id,
                ChangeRecord.action == "merge",
            )
            .order_by(ChangeRecord.id.desc())
            .limit(1)
        )


async def merged_into_this(db: Database, target_id: int) -> list[tuple[int, str, str]]:
    """Customers merged into `target` (id, code, name), so the merge can be undone from it."""
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(Customer.id, Customer.code, Customer.name)
                .where(Customer.merged_into_id == target_id, Customer.deleted.is_(False))
                .order_by(Customer.id)
            )
        ).all()
    return [(i, code, name) for i, code, name in rows]

"""Change history with restore: every create/update/delete stores before and after snapshots.

A customer's or contact's snapshot includes its own phone numbers, so a restore brings the
numbers back too. History rows are never edited; a restore is itself a new row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from crm_core.db import Database
from crm_core.errors import HistoryError, NotFound, ValidationError
from crm_core.models import ChangeRecord, Contact, Customer, PhoneNumber, Vehicle
from crm_core.phones import normalize, suffix_key
from crm_core.records import from_snapshot, snapshot

ENTITIES: dict[str, type[DeclarativeBase]] = {
    "customer": Customer,
    "contact": Contact,
    "vehicle": Vehicle,
}


# Administration records: their changes are listed like a customer's, but never restored
# from here (re-enabling a disabled account must be a deliberate admin act).
LISTED_ONLY = frozenset({"user", "office", "queue", "disposition"})


def model_for(entity: str) -> type[DeclarativeBase]:
    try:
        return ENTITIES[entity]
    except KeyError:
        raise ValidationError(
            f"unknown entity {entity!r}; history is kept for: {', '.join(ENTITIES)}"
        ) from None


async def _phones_of(session: AsyncSession, entity: str, entity_id: int) -> list[dict[str, Any]]:
    column = PhoneNumber.customer_id if entity == "customer" else PhoneNumber.contact_id
    query = select(PhoneNumber).where(column == entity_id).order_by(PhoneNumber.id)
    if entity == "customer":
        query = query.where(PhoneNumber.contact_id.is_(None))
    rows = (await session.scalars(query)).all()
    return [{"label": p.label, "raw": p.raw} for p in rows]


async def capture(session: AsyncSession, entity: str, entity_id: int) -> dict[str, Any] | None:
    row = await session.get(model_for(entity), entity_id)
    if row is None:
        return None
    data = snapshot(row)
    if entity in ("customer", "contact"):
        data["phones"] = await _phones_of(session, entity, entity_id)
    return data


async def record(
    session: AsyncSession,
    entity: str,
    entity_id: int,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    user_id: int | None,
    note: str | None = None,
) -> ChangeRecord:
    change = ChangeRecord(
        entity=entity,
        entity_id=entity_id,
        action=action,
        before=before,
        after=after,
        user_id=user_id,
        note=note,
    )
    session.add(change)
    await session.flush()
    return change


async def replace_phones(
    session: AsyncSession,
    customer_id: int,
    contact_id: int | None,
    phones: list[dict[str, Any]],
    home_area_code: str,
) -> None:
    """Swap an owner's numbers for `phones` ([{label, raw}]); raw values are re-normalised."""
    owner = (
        PhoneNumber.contact_id == contact_id
        if contact_id is not None
        else (PhoneNumber.customer_id == customer_id) & PhoneNumber.contact_id.is_(None)
    )
    await session.execute(delete(PhoneNumber).where(owner))
    for item in phones:
        phone = normalize(item["raw"], home_area_code=home_area_code)
        if phone is None:
            continue
        session.add(
            PhoneNumber(
                customer_id=customer_id,
                contact_id=contact_id,
                label=item.get("label") or "phone",
                raw=item["raw"],
                e164=phone.e164,
                digits_rev=suffix_key(phone.digits),
                kind=phone.kind,
            )
        )


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    entity: str
    entity_id: int
    action: str
    at: datetime
    user_id: int | None
    note: str | None
    changed: tuple[str, ...]


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[str, ...]:
    keys = set(before or {}) | set(after or {})
    old, new = before or {}, after or {}
    return tuple(sorted(k for k in keys if old.get(k) != new.get(k) and k != "updated_at"))


async def list_history(db: Database, entity: str, entity_id: int) -> list[HistoryEntry]:
    if entity not in LISTED_ONLY:
        model_for(entity)
    async with db.transaction() as session:
        rows = (
            await session.scalars(
                select(ChangeRecord)
                .where(ChangeRecord.entity == entity, ChangeRecord.entity_id == entity_id)
                .order_by(ChangeRecord.id)
            )
        ).all()
    return [
        HistoryEntry(
            r.id,
            r.entity,
            r.entity_id,
            r.action,
            r.at,
            r.user_id,
            r.note,
            changed_fields(r.before, r.after),
        )
        for r in rows
    ]


async def _target_state(
    session: AsyncSession, entity: str, entity_id: int, change_id: int | None, at: datetime | None
) -> tuple[dict[str, Any] | None, int]:
    query = select(ChangeRecord).where(
        ChangeRecord.entity == entity, ChangeRecord.entity_id == entity_id
    )
    if change_id is not None:
        query = query.where(ChangeRecord.id <= change_id)
    if at is not None:
        query = query.where(ChangeRecord.at <= at)
    point = (await session.scalars(query.order_by(ChangeRecord.id.desc()).limit(1))).first()
    if point is None or (change_id is not None and point.id != change_id):
        raise HistoryError(
            f"no change #{change_id} for {entity} {entity_id}"
            if change_id is not None
            else f"{entity} {entity_id} did not exist yet at {at}; "
            f"see `hotline history list {entity} {entity_id}`",
        )
    return point.after, point.id


async def restore(
    db: Database,
    entity: str,
    entity_id: int,
    *,
    change_id: int | None = None,
    at: datetime | None = None,
    user_id: int | None = None,
) -> ChangeRecord:
    """Put a record back to how it was right after change `change_id` (or at time `at`)."""
    if (change_id is None) == (at is None):
        raise ValidationError("give exactly one of a change id or a point in time")
    if entity in LISTED_ONLY:
        raise HistoryError(
            f"a {entity}'s history is a record, not a restore point; change it with "
            f"`hotline {entity}s edit` (or on the admin pages)"
        )
    model = model_for(entity)
    async with db.transaction() as session:
        state, point_id = await _target_state(session, entity, entity_id, change_id, at)
        before = await capture(session, entity, entity_id)
        if before is None:
            raise NotFound(f"{entity} {entity_id} does not exist")
        row = await session.get(model, entity_id)
        target = dict(state) if state is not None else {**before, "deleted": True}
        for key, value in from_snapshot(model, target).items():
            setattr(row, key, value)
        if entity in ("customer", "contact") and "phones" in target:
            customer_id = entity_id if entity == "customer" else target["customer_id"]
            contact_id = None if entity == "customer" else entity_id
            await replace_phones(
                session, customer_id, contact_id, target["phones"], db.settings.home_area_code
            )
        await session.flush()
        after = await capture(session, entity, entity_id)
        return await record(
            session,
            entity,
            entity_id,
            "restore",
            before,
            after,
            user_id,
            note=f"restored to the state after change #{point_id}",
        )

"""One phone number at a time: add, change, remove, each one transaction with history.

A number belongs to a customer (contact_id empty) or to one of its contacts; the owner's
snapshot carries its numbers, so every change here is recorded as an update of the owner
(history restore brings a removed number back) and checked against the owner's version token
(crm_core/versions.py). Rows are changed in place so a number keeps its id while edited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import history, versions
from crm_core.customers import MAX_PHONES
from crm_core.db import Database
from crm_core.duplicates import DuplicateCandidate, find_duplicates
from crm_core.errors import NotFound, ValidationError
from crm_core.models import Contact, Customer, PhoneNumber
from crm_core.phones import parse_or_raise, suffix_key
from crm_core.settings import Settings

PHONE_LABELS = ("mobile", "office", "phone", "fax")
SAME_PHONE = "same phone number"


@dataclass(frozen=True)
class PhoneOwner:
    """Whose number it is: the entity whose history records the change, and the customer."""

    entity: str  # "customer" or "contact"
    entity_id: int
    customer_id: int


def clean_label(label: str | None) -> str:
    value = (label or "phone").strip() or "phone"
    if value not in PHONE_LABELS:
        raise ValidationError(
            f"phone label must be one of {', '.join(PHONE_LABELS)}", field="label"
        )
    return value


async def owner_of_phone(db: Database, phone_id: int) -> PhoneOwner:
    async with db.transaction() as session:
        row = await session.get(PhoneNumber, phone_id)
    if row is None:
        raise NotFound(f"phone {phone_id} does not exist", phone_id=phone_id)
    if row.contact_id is not None:
        return PhoneOwner("contact", row.contact_id, row.customer_id)
    return PhoneOwner("customer", row.customer_id, row.customer_id)


async def owner_of(db: Database, entity: str, entity_id: int) -> PhoneOwner:
    async with db.transaction() as session:
        if entity == "contact":
            contact = await session.get(Contact, entity_id)
            if contact is None or contact.deleted:
                raise NotFound(f"contact {entity_id} does not exist")
            return PhoneOwner("contact", entity_id, contact.customer_id)
        customer = await session.get(Customer, entity_id)
    if customer is None or customer.deleted:
        raise NotFound(f"customer {entity_id} does not exist")
    return PhoneOwner("customer", entity_id, entity_id)


async def phone_conflicts(
    db: Database, customer_id: int, raws: Sequence[str]
) -> list[DuplicateCandidate]:
    """Other live customers that already have one of these numbers (the duplicate rules of
    crm_core/duplicates.py, keeping only the same-number hits: a number is what is edited)."""
    if not raws:
        return []
    async with db.transaction() as session:
        customer = await session.get(Customer, customer_id)
    if customer is None:
        return []
    found = await find_duplicates(db, name=customer.name, phones=raws, exclude_id=customer_id)
    return [c for c in found if SAME_PHONE in c.reasons]


async def _begin(
    session: AsyncSession, owner: PhoneOwner, expected: str | None, settings: Settings
) -> dict[str, object] | None:
    if expected is not None:
        await versions.check(session, owner.entity, owner.entity_id, expected, settings)
    return await history.capture(session, owner.entity, owner.entity_id)


async def _finish(
    session: AsyncSession,
    owner: PhoneOwner,
    before: dict[str, object] | None,
    user_id: int | None,
    note: str,
) -> None:
    await session.flush()
    after = await history.capture(session, owner.entity, owner.entity_id)
    await history.record(
        session, owner.entity, owner.entity_id, "update", before, after, user_id, note=note
    )


def _fill(row: PhoneNumber, raw: str, home_area_code: str) -> None:
    phone = parse_or_raise(raw, home_area_code=home_area_code)
    row.raw = raw.strip()
    row.e164 = phone.e164
    row.digits_rev = suffix_key(phone.digits)
    row.kind = phone.kind


def _owned(owner: PhoneOwner) -> object:
    if owner.entity == "contact":
        return PhoneNumber.contact_id == owner.entity_id
    return (PhoneNumber.customer_id == owner.customer_id) & PhoneNumber.contact_id.is_(None)


async def add_phone(
    db: Database,
    owner: PhoneOwner,
    raw: str,
    label: str | None = None,
    *,
    user_id: int | None = None,
    expected_version: str | None = None,
) -> PhoneNumber:
    area, tz = db.settings.home_area_code, db.settings
    row = PhoneNumber(customer_id=owner.customer_id, contact_id=None, label=clean_label(label))
    if owner.entity == "contact":
        row.contact_id = owner.entity_id
    _fill(row, raw, area)
    async with db.transaction() as session:
        before = await _begin(session, owner, expected_version, tz)
        count = await session.scalar(select(func.count(PhoneNumber.id)).where(_owned(owner)))  # type: ignore[arg-type]
        if (count or 0) >= MAX_PHONES:
            raise ValidationError(f"at most {MAX_PHONES} phone numbers per record", field="phones")
        session.add(row)
        await _finish(session, owner, before, user_id, f"phone {row.e164} added")
    return row


async def update_phone(
    db: Database,
    phone_id: int,
    raw: str | None,
    label: str | None = None,
    *,
    user_id: int | None = None,
    expected_version: str | None = None,
) -> PhoneNumber:
    owner = await owner_of_phone(db, phone_id)
    area, tz = db.settings.home_area_code, db.settings
    async with db.transaction() as session:
        before = await _begin(session, owner, expected_version, tz)
        row = await session.get(PhoneNumber, phone_id)
        if row is None:
            raise NotFound(f"phone {phone_id} does not exist", phone_id=phone_id)
        if raw is not None:
            _fill(row, raw, area)
        if label is not None:
            row.label = clean_label(label)
        await _finish(session, owner, before, user_id, f"phone #{phone_id} changed")
    return row


async def delete_phone(
    db: Database,
    phone_id: int,
    *,
    user_id: int | None = None,
    expected_version: str | None = None,
) -> PhoneOwner:
    """Remove a number. The owner's history keeps it, so restoring a version brings it back."""
    owner = await owner_of_phone(db, phone_id)
    async with db.transaction() as session:
        before = await _begin(session, owner, expected_version, db.settings)
        row = await session.get(PhoneNumber, phone_id)
        if row is None:
            raise NotFound(f"phone {phone_id} does not exist", phone_id=phone_id)
        await session.delete(row)
        await _finish(session, owner, before, user_id, f"phone {row.e164} removed")
    return owner

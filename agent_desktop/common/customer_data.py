"""What the customer pages show: the customer 360 and scoped search, with numbers masked
for roles that do not see them in full."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from agent_desktop.common.access import customer_scope
from agent_desktop.common.sessions import SessionUser
from crm_core import history
from crm_core.db import Database
from crm_core.models import Activity, Contact, Customer, PhoneNumber, User, Vehicle
from crm_core.phones import mask, normalize
from crm_core.records import snapshot
from crm_core.search import SearchHit, search

SEARCH_LIMIT = 20
# Scope filtering happens after the search, so ask for more than one page of raw hits.
SEARCH_OVERFETCH = 100
ACTIVITIES = 50
HISTORY = 30


@dataclass(frozen=True)
class PhoneView:
    id: int
    label: str
    kind: str
    shown: str
    masked: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "kind": self.kind,
            "number": self.shown,
            "masked": self.masked,
        }


@dataclass
class ContactView:
    contact: Contact
    phones: list[PhoneView] = field(default_factory=list)


@dataclass
class Customer360:
    customer: Customer
    owner_name: str | None
    phones: list[PhoneView]
    contacts: list[ContactView]
    vehicles: list[Vehicle]
    activities: list[tuple[Activity, str | None]]
    changes: list[history.HistoryEntry]
    full_numbers: bool

    @property
    def fax(self) -> str:
        fax = self.customer.fax or ""
        return fax if self.full_numbers or not fax else mask(fax)

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer": {**snapshot(self.customer), "fax": self.fax or None},
            "owner_name": self.owner_name,
            "phones": [p.as_dict() for p in self.phones],
            "contacts": [
                {**snapshot(c.contact), "phones": [p.as_dict() for p in c.phones]}
                for c in self.contacts
            ],
            "vehicles": [snapshot(v) for v in self.vehicles],
            "activities": [{**snapshot(a), "user_name": name} for a, name in self.activities],
            "changes": [
                {"id": e.id, "action": e.action, "at": e.at.isoformat(), "changed": e.changed}
                for e in self.changes
            ],
        }


def phone_view(row: PhoneNumber, full: bool) -> PhoneView:
    phone = normalize(row.e164)
    display = phone.display if phone else row.raw
    return PhoneView(row.id, row.label, row.kind, display if full else mask(row.e164), not full)


async def load_360(db: Database, customer: Customer, full_numbers: bool) -> Customer360:
    cid = customer.id
    async with db.transaction() as session:
        phones = (
            await session.scalars(
                select(PhoneNumber).where(PhoneNumber.customer_id == cid).order_by(PhoneNumber.id)
            )
        ).all()
        contacts = (
            await session.scalars(
                select(Contact)
                .where(Contact.customer_id == cid, Contact.deleted.is_(False))
                .order_by(Contact.id)
            )
        ).all()
        vehicles = (
            await session.scalars(
                select(Vehicle)
                .where(Vehicle.customer_id == cid, Vehicle.deleted.is_(False))
                .order_by(Vehicle.id)
            )
        ).all()
        activities = (
            await session.execute(
                select(Activity, User.display_name)
                .outerjoin(User, User.id == Activity.user_id)
                .where(Activity.customer_id == cid)
                .order_by(Activity.occurred_at.desc())
                .limit(ACTIVITIES)
            )
        ).all()
        owner = await session.get(User, customer.owner_id) if customer.owner_id else None
    by_contact: dict[int, ContactView] = {c.id: ContactView(c) for c in contacts}
    own: list[PhoneView] = []
    for row in phones:
        view = phone_view(row, full_numbers)
        if row.contact_id is None:
            own.append(view)
        elif row.contact_id in by_contact:
            by_contact[row.contact_id].phones.append(view)
    changes = (await history.list_history(db, "customer", cid))[-HISTORY:][::-1]
    return Customer360(
        customer,
        owner.display_name if owner else None,
        own,
        list(by_contact.values()),
        list(vehicles),
        [(a, name) for a, name in activities],
        changes,
        full_numbers,
    )


async def scoped_search(
    db: Database, user: SessionUser, query: str, full_numbers: bool
) -> list[SearchHit]:
    hits = await search(db, query, limit=SEARCH_OVERFETCH)
    if not hits:
        return []
    async with db.connect() as conn:
        visible = set(
            (
                await conn.scalars(
                    select(Customer.id).where(
                        Customer.id.in_([h.customer_id for h in hits]), customer_scope(user)
                    )
                )
            ).all()
        )
    shown = [h for h in hits if h.customer_id in visible][:SEARCH_LIMIT]
    if full_numbers:
        return shown
    # A phone hit's detail is the full number: mask it like everywhere else.
    return [
        SearchHit(h.customer_id, h.code, h.name, h.matched_on, mask(h.detail))
        if h.matched_on == "phone"
        else h
        for h in shown
    ]


async def phone_of_customer(db: Database, customer_id: int, phone_id: int) -> PhoneNumber | None:
    async with db.transaction() as session:
        row = await session.get(PhoneNumber, phone_id)
    return row if row is not None and row.customer_id == customer_id else None

"""The customer 360 snapshot: the CRM side of what a screen pop and the desktop show.

Other packages add their parts (open service requests, last calls) on top; this module
knows only CRM tables. It reads with Core queries into plain dicts: it is built while the
caller is still in the IVR, and must be cheap.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, select

from crm_core.db import Database
from crm_core.models import Activity, Contact, Customer, PhoneNumber, User, Vehicle
from crm_core.records import to_json

CUSTOMER_FIELDS = (
    "id",
    "code",
    "name",
    "kind",
    "industry",
    "region",
    "province",
    "city",
    "address",
    "classification",
    "vip_level",
    "owner_id",
    "blocked",
)
LAST_ACTIVITIES = 5


def _row(row: Any, keys: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {key: to_json(getattr(row, key)) for key in keys}


async def customer_360(db: Database, customer_id: int) -> dict[str, Any] | None:
    c, ct, p, v, a = (
        Customer.__table__,
        Contact.__table__,
        PhoneNumber.__table__,
        Vehicle.__table__,
        Activity.__table__,
    )
    async with db.connect() as conn:
        customer = (
            await conn.execute(
                select(*[c.c[k] for k in CUSTOMER_FIELDS]).where(
                    c.c.id == customer_id, c.c.deleted == false()
                )
            )
        ).first()
        if customer is None:
            return None
        owner = None
        if customer.owner_id is not None:
            owner = (
                await conn.execute(
                    select(User.__table__.c.display_name).where(
                        User.__table__.c.id == customer.owner_id
                    )
                )
            ).scalar()
        phones = (
            await conn.execute(
                select(p.c.id, p.c.contact_id, p.c.label, p.c.e164, p.c.kind)
                .where(p.c.customer_id == customer_id)
                .order_by(p.c.id)
            )
        ).all()
        contacts = (
            await conn.execute(
                select(
                    ct.c.id,
                    ct.c.name,
                    ct.c.title,
                    ct.c.department,
                    ct.c.birthday,
                    ct.c.decision_role,
                )
                .where(ct.c.customer_id == customer_id, ct.c.deleted == false())
                .order_by(ct.c.id)
            )
        ).all()
        vehicles = (
            await conn.execute(
                select(v.c.id, v.c.vin, v.c.plate, v.c.model, v.c.purchase_date, v.c.warranty_end)
                .where(v.c.customer_id == customer_id, v.c.deleted == false())
                .order_by(v.c.id)
            )
        ).all()
        activities = (
            await conn.execute(
                select(a.c.id, a.c.kind, a.c.subject, a.c.occurred_at)
                .where(a.c.customer_id == customer_id)
                .order_by(a.c.occurred_at.desc())
                .limit(LAST_ACTIVITIES)
            )
        ).all()
    by_contact: dict[int | None, list[dict[str, Any]]] = {}
    for phone in phones:
        by_contact.setdefault(phone.contact_id, []).append(_row(phone, ["label", "e164", "kind"]))
    return {
        "customer": {
            **_row(customer, CUSTOMER_FIELDS),
            "owner_name": owner,
            "phones": by_contact.get(None, []),
        },
        "contacts": [
            {
                **_row(x, ["id", "name", "title", "department", "birthday", "decision_role"]),
                "phones": by_contact.get(x.id, []),
            }
            for x in contacts
        ],
        "vehicles": [
            _row(x, ["id", "vin", "plate", "model", "purchase_date", "warranty_end"])
            for x in vehicles
        ],
        "activities": [_row(x, ["id", "kind", "subject", "occurred_at"]) for x in activities],
    }

"""The customer 360 snapshot: the CRM side of what a screen pop and the desktop show.

Other packages add their parts (open service requests, last calls) on top; this module
knows only CRM tables. It reads with Core queries into plain dicts: it is built while the
caller is still in the IVR, and must be cheap.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, Integer, bindparam, false, select
from sqlalchemy.ext.asyncio import AsyncConnection

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


CONTACT_FIELDS = ("id", "name", "title", "department", "birthday", "decision_role")
VEHICLE_FIELDS = ("id", "vin", "plate", "model", "purchase_date", "warranty_end")
ACTIVITY_FIELDS = ("id", "kind", "subject", "occurred_at")
PHONE_FIELDS = ("label", "e164", "kind")
_C, _CT, _P, _V, _A, _U = (
    Customer.__table__,
    Contact.__table__,
    PhoneNumber.__table__,
    Vehicle.__table__,
    Activity.__table__,
    User.__table__,
)
_ID: BindParameter[int] = bindparam("customer_id", type_=Integer)
# Built once: a statement built per call costs more CPU (construction, cache key) than
# running it, and the 360 is read for every call on the thread that shares the GIL with
# the pops.
CUSTOMER_QUERY = (
    select(*[_C.c[k] for k in CUSTOMER_FIELDS], _U.c.display_name.label("owner_name"))
    .select_from(_C.outerjoin(_U, _U.c.id == _C.c.owner_id))
    .where(_C.c.id == _ID, _C.c.deleted == false())
)
PHONES_QUERY = (
    select(_P.c.contact_id, *[_P.c[k] for k in PHONE_FIELDS])
    .where(_P.c.customer_id == _ID)
    .order_by(_P.c.id)
)
CONTACTS_QUERY = (
    select(*[_CT.c[k] for k in CONTACT_FIELDS])
    .where(_CT.c.customer_id == _ID, _CT.c.deleted == false())
    .order_by(_CT.c.id)
)
VEHICLES_QUERY = (
    select(*[_V.c[k] for k in VEHICLE_FIELDS])
    .where(_V.c.customer_id == _ID, _V.c.deleted == false())
    .order_by(_V.c.id)
)
ACTIVITIES_QUERY = (
    select(*[_A.c[k] for k in ACTIVITY_FIELDS])
    .where(_A.c.customer_id == _ID)
    .order_by(_A.c.occurred_at.desc())
    .limit(LAST_ACTIVITIES)
)


def _row(row: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: to_json(getattr(row, key)) for key in keys}


async def customer_360(db: Database, customer_id: int) -> dict[str, Any] | None:
    async with db.connect() as conn:
        return await customer_360_on(conn, customer_id)


async def customer_360_on(conn: AsyncConnection, customer_id: int) -> dict[str, Any] | None:
    """The snapshot read on a connection the caller holds, so that a caller adding its own
    parts reads them on the same one (each checkout costs a round trip or two)."""
    params = {"customer_id": customer_id}
    customer = (await conn.execute(CUSTOMER_QUERY, params)).first()
    if customer is None:
        return None
    phones = (await conn.execute(PHONES_QUERY, params)).all()
    contacts = (await conn.execute(CONTACTS_QUERY, params)).all()
    vehicles = (await conn.execute(VEHICLES_QUERY, params)).all()
    activities = (await conn.execute(ACTIVITIES_QUERY, params)).all()
    by_contact: dict[int | None, list[dict[str, Any]]] = {}
    for phone in phones:
        by_contact.setdefault(phone.contact_id, []).append(_row(phone, PHONE_FIELDS))
    return {
        "customer": {
            **_row(customer, CUSTOMER_FIELDS),
            "owner_name": customer.owner_name,
            "phones": by_contact.get(None, []),
        },
        "contacts": [
            {**_row(x, CONTACT_FIELDS), "phones": by_contact.get(x.id, [])} for x in contacts
        ],
        "vehicles": [_row(x, VEHICLE_FIELDS) for x in vehicles],
        "activities": [_row(x, ACTIVITY_FIELDS) for x in activities],
    }

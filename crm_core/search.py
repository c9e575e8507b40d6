"""Global search: name (Chinese), pinyin and initials, phone or its tail, code, VIN tail, plate.

Every branch is an index prefix range or an equality, so a search over a million customers
stays within milliseconds. The query's shape decides which branches run.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_core.db import Database
from crm_core.errors import ValidationError
from crm_core.lookup import prefix_bounds
from crm_core.models import Contact, Customer, PhoneNumber, Vehicle
from crm_core.phones import digits_only, normalize, suffix_key

MAX_QUERY = 64
LIMIT = 20
HAN = re.compile(r"[\u3400-\u9fff]")
VIN_CHARS = re.compile(r"^[A-HJ-NPR-Z0-9]+$")
PLATE = re.compile(r"^[\u4e00-\u9fff][A-Z][A-Z0-9]{0,6}$")

CUSTOMERS = Customer.__table__
CONTACTS = Contact.__table__
PHONES = PhoneNumber.__table__
VEHICLES = Vehicle.__table__


@dataclass(frozen=True)
class SearchHit:
    customer_id: int
    code: str
    name: str
    matched_on: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _starts(column: Any, prefix: str) -> ColumnElement[bool]:
    low, high = prefix_bounds(prefix)
    return and_(column >= low, column < high)


def _live() -> ColumnElement[bool]:
    return and_(CUSTOMERS.c.deleted == false(), CUSTOMERS.c.merged_into_id.is_(None))


async def _customers_where(
    conn: AsyncConnection, condition: ColumnElement[bool], matched_on: str, limit: int
) -> list[SearchHit]:
    rows = await conn.execute(
        select(CUSTOMERS.c.id, CUSTOMERS.c.code, CUSTOMERS.c.name)
        .where(condition, _live())
        .limit(limit)
    )
    return [SearchHit(r.id, r.code, r.name, matched_on, r.name) for r in rows]


async def _via(
    conn: AsyncConnection,
    table: Any,
    column: Any,
    condition: ColumnElement[bool],
    matched_on: str,
    limit: int,
) -> list[SearchHit]:
    """Customers reached through a child table (contact, phone, vehicle) matching `condition`."""
    rows = await conn.execute(
        select(CUSTOMERS.c.id, CUSTOMERS.c.code, CUSTOMERS.c.name, column.label("detail"))
        .select_from(table.join(CUSTOMERS, CUSTOMERS.c.id == table.c.customer_id))
        .where(condition, _live())
        .limit(limit)
    )
    return [SearchHit(r.id, r.code, r.name, matched_on, str(r.detail)) for r in rows]


async def _by_name(conn: AsyncConnection, text: str, limit: int) -> list[SearchHit]:
    hits = await _customers_where(conn, _starts(CUSTOMERS.c.name, text), "name", limit)
    hits += await _via(
        conn,
        CONTACTS,
        CONTACTS.c.name,
        and_(_starts(CONTACTS.c.name, text), CONTACTS.c.deleted == false()),
        "contact",
        limit,
    )
    if len(hits) < limit:
        # Substring anywhere in the name cannot use the index; LIMIT bounds the scan on
        # common characters, and it runs only when prefix matches did not fill the page.
        inner = and_(
            CUSTOMERS.c.name.contains(text, autoescape=True), ~_starts(CUSTOMERS.c.name, text)
        )
        hits += await _customers_where(conn, inner, "name", limit - len(hits))
    return hits


async def _by_letters(conn: AsyncConnection, text: str, limit: int) -> list[SearchHit]:
    key = text.lower()
    hits = await _customers_where(conn, CUSTOMERS.c.name_initials == key, "initials", limit)
    hits += await _customers_where(conn, _starts(CUSTOMERS.c.name_pinyin, key), "pinyin", limit)
    alive = CONTACTS.c.deleted == false()
    hits += await _via(
        conn,
        CONTACTS,
        CONTACTS.c.name,
        and_(CONTACTS.c.name_initials == key, alive),
        "contact",
        limit,
    )
    hits += await _via(
        conn,
        CONTACTS,
        CONTACTS.c.name,
        and_(_starts(CONTACTS.c.name_pinyin, key), alive),
        "contact",
        limit,
    )
    if len(hits) < limit:
        hits += await _customers_where(
            conn, _starts(CUSTOMERS.c.name_initials, key), "initials", limit
        )
    return hits


async def _by_digits(conn: AsyncConnection, text: str, area: str, limit: int) -> list[SearchHit]:
    digits = digits_only(text)
    hits: list[SearchHit] = []
    phone = normalize(text, home_area_code=area) if len(digits) >= 7 else None
    if phone is not None:
        hits += await _via(conn, PHONES, PHONES.c.e164, PHONES.c.e164 == phone.e164, "phone", limit)
    if len(digits) >= 4:
        hits += await _via(
            conn,
            PHONES,
            PHONES.c.e164,
            _starts(PHONES.c.digits_rev, suffix_key(digits)),
            "phone",
            limit,
        )
    return hits


async def _by_vehicle_or_code(conn: AsyncConnection, text: str, limit: int) -> list[SearchHit]:
    key = text.upper()
    hits = await _customers_where(conn, _starts(CUSTOMERS.c.code, key), "code", limit)
    alive = VEHICLES.c.deleted == false()
    if len(key) == 17:
        hits += await _via(
            conn, VEHICLES, VEHICLES.c.vin, and_(VEHICLES.c.vin == key, alive), "vin", limit
        )
    elif len(key) == 6 and VIN_CHARS.match(key):
        hits += await _via(
            conn, VEHICLES, VEHICLES.c.vin, and_(VEHICLES.c.vin_tail == key, alive), "vin", limit
        )
    if len(key) >= 3:
        hits += await _via(
            conn,
            VEHICLES,
            VEHICLES.c.plate,
            and_(_starts(VEHICLES.c.plate, key), alive),
            "plate",
            limit,
        )
    return hits


def _clean_query(query: str) -> str:
    text = query.strip().replace(" ", "").replace("·", "")
    if not text:
        raise ValidationError("type something to search for: a name, pinyin, phone, VIN or plate")
    if len(text) > MAX_QUERY:
        raise ValidationError(f"search text is too long (at most {MAX_QUERY} characters)")
    return text


async def search(db: Database, query: str, limit: int = LIMIT) -> list[SearchHit]:
    """Customers matching `query`, best kinds of match first, each customer once."""
    text = _clean_query(query)
    async with db.connect() as conn:
        hits: list[SearchHit] = []
        if PLATE.match(text.upper()):
            # A plate (皖K12345) is not a name: the name branch's substring scan would read
            # every customer for nothing.
            hits += await _by_vehicle_or_code(conn, text, limit)
        elif HAN.search(text):
            hits += await _by_name(conn, text, limit)
        elif text.isascii() and text.isalpha():
            hits += await _by_letters(conn, text, limit)
            hits += await _by_vehicle_or_code(conn, text, limit)
        elif digits_only(text) == text or text.startswith("+"):
            hits += await _by_digits(conn, text, db.settings.home_area_code, limit)
            hits += await _by_vehicle_or_code(conn, text, limit)
        elif text.isascii():
            hits += await _by_vehicle_or_code(conn, text, limit)
    seen: set[int] = set()
    unique = []
    for hit in hits:
        if hit.customer_id not in seen:
            seen.add(hit.customer_id)
            unique.append(hit)
    return unique[:limit]


async def count_customers(db: Database) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(CUSTOMERS))).scalar_one())

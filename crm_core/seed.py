"""Deterministic demo data, inserted in bulk: `hotline seed --customers N --seed S`.

Rows are built as plain tuples-of-columns with ids assigned here, and inserted in batches
through Core; this is what makes a million customers load in minutes. Phone numbers are
generated from patterns that `phones.normalize` accepts, so canonical forms are computed
directly instead of parsing millions of numbers one by one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, Index, Table, func, insert, select, text

from crm_core import seed_data as vocab
from crm_core.db import Database
from crm_core.models import Contact, Customer, PhoneNumber, Vehicle
from crm_core.phones import normalize, suffix_key
from crm_core.pinyin import full_pinyin, initials

BATCH = 5000
Row = dict[str, Any]


@cache
def _pinyin(part: str, person: bool) -> tuple[str, str]:
    return full_pinyin(part, is_person_name=person), initials(part, is_person_name=person)


@cache
def landline_patterns(area_code: str) -> tuple[tuple[int, str], ...]:
    """(local length, first digit) pairs that give valid numbers in this area code."""
    rng = random.Random(area_code)
    found = []
    for length in (7, 8):
        for lead in "2345678":
            samples = (lead + "".join(rng.choices("0123456789", k=length - 1)) for _ in range(12))
            if all(normalize(area_code + s) is not None for s in samples):
                found.append((length, lead))
    return tuple(found)


@dataclass
class Batch:
    customers: list[Row] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)
    phones: list[Row] = field(default_factory=list)
    vehicles: list[Row] = field(default_factory=list)

    def size(self) -> int:
        return len(self.customers) + len(self.contacts) + len(self.phones) + len(self.vehicles)


class Generator:
    def __init__(self, seed: int, first_ids: dict[str, int], dealer_ids: list[int]) -> None:
        # The starting id is part of the seed: the same seed on the same database gives the
        # same data, and seeding again appends new rows instead of repeating unique VINs.
        self.rng = random.Random(f"{seed}:{first_ids['customers']}")
        self.next_id = dict(first_ids)
        self.dealer_ids = dealer_ids
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def _id(self, table: str) -> int:
        self.next_id[table] += 1
        return self.next_id[table]

    def person_name(self) -> tuple[str, str, str]:
        surname, given = self.rng.choice(vocab.SURNAMES), self.rng.choice(vocab.GIVEN)
        (sp, si), (gp, gi) = _pinyin(surname, True), _pinyin(given, True)
        return surname + given, sp + gp, si + gi

    def company_name(self, city: vocab.City) -> tuple[str, str, str, str]:
        brand = self.rng.choice(vocab.BRANDS)
        trade, industry = self.rng.choice(vocab.TRADES)
        suffix = self.rng.choice(vocab.COMPANY_SUFFIXES)
        parts = (city.name, brand, trade, suffix)
        pinyins = [_pinyin(p, False) for p in parts]
        return (
            "".join(parts),
            "".join(p for p, _ in pinyins),
            "".join(i for _, i in pinyins),
            industry,
        )

    def phone(self, customer_id: int, contact_id: int | None, city: vocab.City, label: str) -> Row:
        rng = self.rng
        if label == "mobile":
            digits = rng.choice(vocab.MOBILE_PREFIXES) + "".join(rng.choices("0123456789", k=8))
            raw, e164, kind = digits, "+86" + digits, "mobile"
        else:
            length, lead = rng.choice(landline_patterns(city.area_code))
            local = lead + "".join(rng.choices("0123456789", k=length - 1))
            raw = f"{city.area_code}-{local}"
            digits = city.area_code[1:] + local
            e164, kind = "+86" + digits, "landline"
        return {
            "id": self._id("phone_numbers"),
            "customer_id": customer_id,
            "contact_id": contact_id,
            "label": label,
            "raw": raw,
            "e164": e164,
            "digits_rev": suffix_key(digits),
            "kind": kind,
        }

    def vin(self) -> str:
        body = "LJ1" + "".join(self.rng.choices(vocab.VIN_ALPHABET, k=5))
        tail = (
            self.rng.choice("ABCDEFGHJKLMNPRSTVWXY")
            + "".join(self.rng.choices(vocab.VIN_ALPHABET[:-10], k=1))
            + "".join(self.rng.choices("0123456789", k=6))
        )
        return body + vocab.vin_check_digit(body + "0" + tail) + tail

    def plate(self, city: vocab.City) -> str:
        chars = self.rng.choices("0123456789" + vocab.PLATE_LETTERS[:10], k=5)
        return city.plate + "".join(chars)

    def customer(self, batch: Batch, dealer: bool) -> None:
        rng = self.rng
        cid = self._id("customers")
        city = rng.choice(vocab.CITIES)
        person = not dealer and rng.random() < 0.35
        if person:
            name, pinyin, inits = self.person_name()
            industry = "个体运输"
        else:
            name, pinyin, inits, industry = self.company_name(city)
        batch.customers.append(
            {
                "id": cid,
                "code": f"C{cid:08d}",
                "name": name,
                "name_pinyin": pinyin,
                "name_initials": inits,
                "kind": "dealer" if dealer else "direct",
                "industry": industry,
                "region": city.region,
                "province": city.province,
                "city": city.name,
                "postcode": city.postcode,
                "address": self.address(city),
                "classification": rng.choice(vocab.CLASSIFICATIONS),
                "vip_level": rng.choice((0, 0, 0, 0, 1, 2, 3)),
                "blocked": False,
                "deleted": False,
                "created_at": self.now,
                "updated_at": self.now,
            }
        )
        batch.phones.append(self.phone(cid, None, city, "mobile"))
        batch.phones.append(self.phone(cid, None, city, "office"))
        if rng.random() < 0.5:
            batch.phones.append(self.phone(cid, None, city, "mobile"))
        if not person:
            for _ in range(rng.choice((1, 1, 2))):
                self.contact(batch, cid, city)
        for _ in range(rng.choice((0, 1, 1, 2))):
            self.vehicle(batch, cid, city)

    def address(self, city: vocab.City) -> str:
        street = self.rng.choice(vocab.STREETS)
        return f"{city.province}省{city.name}市{street}{self.rng.randint(1, 999)}号"

    def contact(self, batch: Batch, customer_id: int, city: vocab.City) -> None:
        rng = self.rng
        contact_id = self._id("contacts")
        name, pinyin, inits = self.person_name()
        batch.contacts.append(
            {
                "id": contact_id,
                "customer_id": customer_id,
                "name": name,
                "name_pinyin": pinyin,
                "name_initials": inits,
                "department": rng.choice(vocab.DEPARTMENTS),
                "title": rng.choice(vocab.TITLES),
                "decision_role": rng.choice(vocab.DECISION_ROLES),
                "interests": rng.choice(vocab.INTERESTS),
                "birthday": date(rng.randint(1960, 1998), rng.randint(1, 12), rng.randint(1, 28)),
                "deleted": False,
                "created_at": self.now,
            }
        )
        batch.phones.append(self.phone(customer_id, contact_id, city, "mobile"))

    def vehicle(self, batch: Batch, customer_id: int, city: vocab.City) -> None:
        rng = self.rng
        model, chassis = rng.choice(vocab.MODELS)
        bought = date(2018, 1, 1) + timedelta(days=rng.randint(0, 3000))
        vin = self.vin()
        batch.vehicles.append(
            {
                "id": self._id("vehicles"),
                "customer_id": customer_id,
                "vin": vin,
                "vin_tail": vin[-6:],
                "plate": self.plate(city),
                "model": model,
                "chassis": chassis,
                "purchase_date": bought,
                "warranty_end": bought + timedelta(days=3 * 365),
                "dealer_id": rng.choice(self.dealer_ids) if self.dealer_ids else None,
                "deleted": False,
            }
        )


TABLES = (
    ("customers", Customer),
    ("contacts", Contact),
    ("phone_numbers", PhoneNumber),
    ("vehicles", Vehicle),
)


@dataclass(frozen=True)
class SeedResult:
    customers: int
    contacts: int
    phones: int
    vehicles: int
    seconds: float


async def _first_ids(db: Database) -> dict[str, int]:
    async with db.connect() as conn:
        return {
            name: int(
                (await conn.execute(select(func.coalesce(func.max(model.id), 0)))).scalar_one()
            )
            for name, model in TABLES
        }


async def _insert(db: Database, batch: Batch) -> None:
    async with db.engine.begin() as conn:
        for rows, model in (
            (batch.customers, Customer),
            (batch.contacts, Contact),
            (batch.phones, PhoneNumber),
            (batch.vehicles, Vehicle),
        ):
            if rows:
                await conn.execute(insert(model), rows)


async def _fix_sequences(db: Database) -> None:
    """Ids were assigned here, so PostgreSQL's sequences must be moved past them."""
    if db.settings.is_sqlite:
        return
    async with db.engine.begin() as conn:
        for name, _ in TABLES:
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608 - fixed names
                    f"(SELECT COALESCE(MAX(id), 1) FROM {name}))"
                )
            )


BULK_THRESHOLD = 50_000


def _secondary_indexes() -> list[Index]:
    tables = [cast(Table, model.__table__) for _, model in TABLES]
    return [ix for table in tables for ix in table.indexes if not ix.unique]


async def _drop_indexes(db: Database) -> list[Index]:
    """Loading into empty tables and indexing once afterwards is several times faster than
    growing b-trees of random keys (numbers, pinyin) row by row."""
    indexes = _secondary_indexes()

    def drop(sync: Connection) -> None:
        for index in indexes:
            index.drop(sync, checkfirst=True)

    async with db.engine.begin() as conn:
        await conn.run_sync(drop)
    return indexes


async def _create_indexes(db: Database, indexes: list[Index]) -> None:
    def create(sync: Connection) -> None:
        for index in indexes:
            index.create(sync, checkfirst=True)

    async with db.engine.begin() as conn:
        await conn.run_sync(create)


async def _analyze(db: Database) -> None:
    """Fresh statistics after a bulk load, so the planner picks the number index."""
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


async def seed_customers(
    db: Database, count: int, seed: int = 1, on_progress: Callable[[int], None] | None = None
) -> SeedResult:
    started = datetime.now(UTC)
    first = await _first_ids(db)
    bulk = count >= BULK_THRESHOLD and not any(first.values())
    dropped = await _drop_indexes(db) if bulk else []
    dealers = min(20, count // 50)
    gen = Generator(seed, first, [first["customers"] + i + 1 for i in range(dealers)])
    totals = dict.fromkeys(("customers", "contacts", "phones", "vehicles"), 0)
    made = 0
    while made < count:
        batch = Batch()
        for _ in range(min(BATCH, count - made)):
            gen.customer(batch, dealer=made < dealers)
            made += 1
        await _insert(db, batch)
        for key, rows in (
            ("customers", batch.customers),
            ("contacts", batch.contacts),
            ("phones", batch.phones),
            ("vehicles", batch.vehicles),
        ):
            totals[key] += len(rows)
        if on_progress:
            on_progress(len(batch.customers))
    if dropped:
        await _create_indexes(db, dropped)
    await _analyze(db)
    await _fix_sequences(db)
    seconds = (datetime.now(UTC) - started).total_seconds()
    return SeedResult(seconds=seconds, **totals)

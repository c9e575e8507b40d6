"""Which stored customer a row of a customers file is, or why it cannot be written.

A row is the same customer as a stored one by its customer code when the file has one;
otherwise by a phone number that belongs to exactly one customer of the same name; a row
with neither code nor phone by its exact name, when exactly one customer has it. A phone or
VIN that belongs to another customer (or an earlier row of the file) makes the row a
duplicate: reported, not written. The name likeness in the reason uses the duplicate
check's own threshold (crm_core/duplicates.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import false
from sqlalchemy.ext.asyncio import AsyncConnection

import crm_core.importing.writing as w
from crm_core.importing.customer_rows import CUSTOMERS, VEHICLES, CustomerRow
from crm_core.importing.kinds import ImportContext, RowResult
from crm_core.importing.report import Outcome


@dataclass
class Stored:
    """What the batch found in the database for its rows."""

    by_code: dict[str, Any]
    phone_owners: dict[str, set[int]]
    customers: dict[int, Any]
    by_name: dict[str, list[Any]]
    vehicles: dict[str, Any]
    phones_of: dict[int, list[Any]] = field(default_factory=dict)


def _live(row: Any) -> bool:
    return not row.deleted and row.merged_into_id is None


async def load(conn: AsyncConnection, rows: Sequence[CustomerRow]) -> Stored:
    codes = [r.values["code"] for r in rows if r.values.get("code")]
    by_code = {c.code: c for c in await w.select_in(conn, CUSTOMERS, "code", codes)}
    e164s = {p.e164 for r in rows for _, _, p in r.phones}
    owners: dict[str, set[int]] = {}
    for p in await w.select_in(conn, w.PHONES, "e164", e164s):
        owners.setdefault(p.e164, set()).add(p.customer_id)
    ids = {i for s in owners.values() for i in s}
    customers = {c.id: c for c in await w.select_in(conn, CUSTOMERS, "id", ids) if _live(c)}
    names = [r.values["name"] for r in rows if not r.values.get("code") and not r.phones]
    by_name: dict[str, list[Any]] = {}
    live = (CUSTOMERS.c.deleted == false(), CUSTOMERS.c.merged_into_id.is_(None))
    for c in await w.select_in(conn, CUSTOMERS, "name", names, *live):
        by_name.setdefault(c.name, []).append(c)
    vins = [v["vin"] for r in rows for v in r.vehicles]
    vehicles = {v.vin: v for v in await w.select_in(conn, VEHICLES, "vin", vins)}
    for c in by_code.values():
        customers.setdefault(c.id, c)
    return Stored(by_code, owners, customers, by_name, vehicles)


def seen_elsewhere(row: CustomerRow, ctx: ImportContext) -> RowResult | None:
    code = row.values.get("code")
    keys = [("code", code, code)] if code else []
    keys += [("phone", p.e164, raw) for _, raw, p in row.phones]
    keys += [("vin", v["vin"], v["vin"]) for v in row.vehicles]
    for key, value, shown in keys:
        earlier = ctx.earlier_row(f"customers.{key}", str(value))
        if earlier is not None:
            reason = f"the same {key} as row {earlier} of this file"
            return row.problem(key, str(shown), reason, Outcome.DUPLICATE)
    for key, value, _shown in keys:
        ctx.remember(f"customers.{key}", str(value), row.line)
    return None


def _owner_problem(row: CustomerRow, owner: Any, e164: str, raw: str) -> RowResult:
    # The duplicate check's own threshold; imported here, as it brings in pypinyin.
    from crm_core.duplicates import THRESHOLD

    alike = fuzz.ratio(row.values["name"], owner.name)
    how = f"a name {alike:.0f}% alike" if alike >= THRESHOLD else "another name"
    reason = (
        f"phone {raw} belongs to customer {owner.code} {owner.name} ({how}); "
        "merge or correct the row instead of importing it"
    )
    return row.problem("phone", raw, reason, Outcome.DUPLICATE)


def target_of(row: CustomerRow, stored: Stored) -> tuple[Any | None, RowResult | None]:
    """The stored customer this row is, None for a new one, or why it cannot be written."""
    code = row.values.get("code")
    target = None
    if code:
        target = stored.by_code.get(code)
        if target is not None and target.deleted:
            reason = f"customer code {code} belongs to a deleted customer; restore it first"
            return None, row.problem("code", code, reason, Outcome.INVALID)
        if target is not None and target.merged_into_id is not None:
            reason = f"customer {code} was merged into customer #{target.merged_into_id}"
            return None, row.problem("code", code, reason, Outcome.DUPLICATE)
    owners_seen: list[tuple[Any, str, str]] = []
    for _, raw, phone in row.phones:
        for owner_id in sorted(stored.phone_owners.get(phone.e164, ())):
            owner = stored.customers.get(owner_id)
            if owner is not None:
                owners_seen.append((owner, phone.e164, raw))
    for owner, e164, raw in owners_seen:
        same = (
            owner.id == target.id
            if target is not None
            else (not code and owner.name == row.values["name"])
        )
        if not same:
            return None, _owner_problem(row, owner, e164, raw)
    distinct = {owner.id: owner for owner, _, _ in owners_seen}
    if target is None and len(distinct) > 1:
        reason = (
            f"the phone numbers of this row belong to {len(distinct)} customers named "
            f"{row.values['name']}; add a customer code or merge them"
        )
        return None, row.problem("phone", owners_seen[0][2], reason, Outcome.DUPLICATE)
    if target is None and owners_seen:
        target = owners_seen[0][0]
    if target is None and not code and not row.phones:
        named = stored.by_name.get(row.values["name"], [])
        if len(named) > 1:
            reason = f"{len(named)} customers are named {row.values['name']}; add a customer code"
            return None, row.problem("name", row.values["name"], reason, Outcome.DUPLICATE)
        target = named[0] if named else None
    for vehicle in row.vehicles:
        stored_vehicle = stored.vehicles.get(vehicle["vin"])
        if stored_vehicle is not None and (
            target is None or stored_vehicle.customer_id != target.id or stored_vehicle.deleted
        ):
            owner = stored.customers.get(stored_vehicle.customer_id)
            whose = f"customer {owner.code} {owner.name}" if owner else "another customer"
            reason = f"VIN {vehicle['vin']} is already registered to {whose}"
            return None, row.problem("vin", vehicle["vin"], reason, Outcome.DUPLICATE)
    return target, None

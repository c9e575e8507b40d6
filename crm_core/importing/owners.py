"""The customer a row of a contacts or vehicles file belongs to: by customer code, else by
a customer phone number (exactly one customer may have it), else by the exact customer name
(exactly one customer may have it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, false
from sqlalchemy.ext.asyncio import AsyncConnection

import crm_core.importing.writing as w
from crm_core.importing.kinds import RowValues
from crm_core.importing.report import Outcome, Problem
from crm_core.importing.validation import Problems
from crm_core.models import Customer
from crm_core.phones import normalize

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
OWNER_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_code": ("客户编码", "客户代码", "客户编号", "customer code"),
    "customer_phone": ("客户电话", "客户手机", "客户联系电话", "customer phone"),
    "customer_name": ("客户名称", "客户名", "单位名称", "公司名称", "客户", "customer"),
}
OWNER_REQUIRED = ("customer_code", "customer_phone", "customer_name")


@dataclass(frozen=True)
class OwnerKey:
    code: str | None
    e164: str | None
    name: str | None
    header: str
    shown: str


def owner_key(row: RowValues, problems: Problems, area: str) -> OwnerKey | None:
    code, phone_text, name = (row.get(f) for f in OWNER_REQUIRED)
    e164 = None
    if phone_text:
        phone = normalize(phone_text, home_area_code=area)
        if phone is None:
            problems.add("customer_phone", f"{phone_text!r} is not a valid phone number")
            return None
        e164 = phone.e164
    if not (code or e164 or name):
        problems.add("customer_code", "no customer code, customer phone or customer name", "")
        return None
    field_name = "customer_code" if code else "customer_phone" if e164 else "customer_name"
    return OwnerKey(code or None, e164, name or None, row.header(field_name), row.get(field_name))


async def resolve(
    conn: AsyncConnection, keys: Sequence[OwnerKey]
) -> dict[OwnerKey, Any | tuple[Outcome, str]]:
    """Each key → the live customer row, or (outcome, reason) when there is none or several."""
    live = (CUSTOMERS.c.deleted == false(), CUSTOMERS.c.merged_into_id.is_(None))
    codes = [k.code for k in keys if k.code]
    by_code = {c.code: c for c in await w.select_in(conn, CUSTOMERS, "code", codes, *live)}
    e164s = [k.e164 for k in keys if k.e164 and not k.code]
    owner_ids: dict[str, set[int]] = {}
    for p in await w.select_in(conn, w.PHONES, "e164", e164s):
        owner_ids.setdefault(p.e164, set()).add(p.customer_id)
    ids = {i for s in owner_ids.values() for i in s}
    by_id = {c.id: c for c in await w.select_in(conn, CUSTOMERS, "id", ids, *live)}
    names = [k.name for k in keys if k.name and not k.code and not k.e164]
    by_name: dict[str, list[Any]] = {}
    for c in await w.select_in(conn, CUSTOMERS, "name", names, *live):
        by_name.setdefault(c.name, []).append(c)
    found: dict[OwnerKey, Any | tuple[Outcome, str]] = {}
    for key in keys:
        if key.code:
            candidates = [by_code[key.code]] if key.code in by_code else []
        elif key.e164:
            candidates = [by_id[i] for i in sorted(owner_ids.get(key.e164, ())) if i in by_id]
        else:
            candidates = by_name.get(key.name or "", [])
        if len(candidates) == 1:
            found[key] = candidates[0]
        elif not candidates:
            found[key] = (Outcome.INVALID, f"no customer found for {key.shown}; import it first")
        else:
            found[key] = (
                Outcome.DUPLICATE,
                f"{len(candidates)} customers match {key.shown}; use the customer code",
            )
    return found


def owner_problem(line: int, key: OwnerKey, outcome: Outcome, reason: str) -> Problem:
    return Problem(line, key.header, key.shown, reason, outcome)

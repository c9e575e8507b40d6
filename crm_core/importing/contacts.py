"""The `contacts` kind: one contact person a row, for a customer named by code, phone or
name. A contact is the same as a stored one of that customer with the same name. A contact
phone that belongs to another customer makes the row a duplicate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, false
from sqlalchemy.ext.asyncio import AsyncConnection

import crm_core.importing.writing as w
from crm_core.importing.kinds import ImportContext, ImportKind, RowResult, RowValues, register_kind
from crm_core.importing.owners import (
    OWNER_ALIASES,
    OWNER_REQUIRED,
    OwnerKey,
    owner_key,
    owner_problem,
    resolve,
)
from crm_core.importing.report import Outcome, Problem
from crm_core.importing.validation import Problems, model_fields, phones_of
from crm_core.models import Contact
from crm_core.phones import Phone

CONTACTS: Table = Contact.__table__  # type: ignore[assignment]
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("联系人", "联系人姓名", "姓名", "contact name", "contact"),
    "department": ("部门", "所在部门"),
    "title": ("职务", "职位", "岗位"),
    "birthday": ("生日", "出生日期"),
    "interests": ("爱好", "兴趣爱好"),
    "decision_role": ("决策角色", "角色"),
}
PHONE_LABELS = {"phone": "phone", "mobile": "mobile", "phone2": "phone", "mobile2": "mobile"}
PHONE_ALIASES: dict[str, tuple[str, ...]] = {
    "phone": ("电话", "联系电话", "联系人电话", "办公电话"),
    "mobile": ("手机", "手机号", "手机号码", "联系人手机"),
    "phone2": ("电话2", "联系电话2"),
    "mobile2": ("手机2", "手机号2"),
}


@dataclass(frozen=True)
class ContactRow:
    line: int
    owner: OwnerKey
    values: dict[str, Any]
    phones: list[tuple[str, str, Phone]]
    phone_header: str


def validate(row: RowValues, ctx: ImportContext) -> ContactRow:
    problems = Problems(row)
    owner = owner_key(row, problems, ctx.home_area_code)
    if not row.get("name"):
        problems.add("name", "the contact's name is empty", "")
    fields = {f: f for f in TEXT_FIELDS}
    values = model_fields(Contact, row, problems, fields, dates=("birthday",))
    phones = phones_of(row, problems, PHONE_LABELS, ctx.home_area_code)
    problems.check()
    assert owner is not None
    header = row.header(next((f for f in PHONE_LABELS if row.get(f)), "phone"))
    return ContactRow(row.line, owner, {**values, **_keys(values["name"])}, phones, header)


def _keys(name: str) -> dict[str, str]:
    # As ContactService.create: a person's name, read with surname readings. (Imported
    # here for the same reason as in customer_rows.search_keys.)
    from crm_core.pinyin import full_pinyin, initials

    return {
        "name_pinyin": full_pinyin(name, is_person_name=True),
        "name_initials": initials(name, is_person_name=True),
    }


async def _stored(
    conn: AsyncConnection, customer_ids: set[int]
) -> tuple[dict[tuple[int, str], Any], dict[int, list[Any]]]:
    """The customers' live contacts by (customer, name), and those contacts' numbers."""
    alive = (CONTACTS.c.deleted == false(),)
    contacts = {
        (c.customer_id, c.name): c
        for c in await w.select_in(conn, CONTACTS, "customer_id", customer_ids, *alive)
    }
    numbers: dict[int, list[Any]] = {}
    ids = [c.id for c in contacts.values()]
    for p in sorted(await w.select_in(conn, w.PHONES, "contact_id", ids), key=lambda p: p.id):
        numbers.setdefault(p.contact_id, []).append(p)
    return contacts, numbers


async def write_batch(
    conn: AsyncConnection, rows: Sequence[ContactRow], ctx: ImportContext
) -> list[RowResult]:
    owners = await resolve(conn, [r.owner for r in rows])
    ids = {o.id for o in owners.values() if not isinstance(o, tuple)}
    contacts, numbers = await _stored(conn, ids)
    e164s = [p.e164 for r in rows for _, _, p in r.phones]
    phone_rows = await w.select_in(conn, w.PHONES, "e164", e164s)
    results: list[RowResult] = []
    new: list[tuple[ContactRow, dict[str, Any]]] = []
    added: list[tuple[Any, ContactRow]] = []
    changes: dict[int, dict[str, Any]] = {}
    for row in rows:
        owner = owners[row.owner]
        if isinstance(owner, tuple):
            results.append((owner[0], owner_problem(row.line, row.owner, *owner)))
            continue
        clash = next(
            (
                (raw, p)
                for _, raw, phone in row.phones
                for p in phone_rows
                if p.e164 == phone.e164 and p.customer_id != owner.id
            ),
            None,
        )
        key = f"{owner.id}:{row.values['name']}"
        earlier = ctx.earlier_row("contacts.name", key)
        if clash is not None:
            reason = f"phone {clash[0]} belongs to another customer (#{clash[1].customer_id})"
            results.append(
                (
                    Outcome.DUPLICATE,
                    Problem(row.line, row.phone_header, clash[0], reason, Outcome.DUPLICATE),
                )
            )
            continue
        if earlier is not None:
            reason = f"the same contact of the same customer as row {earlier}"
            problem = Problem(row.line, "", row.values["name"], reason, Outcome.DUPLICATE)
            results.append((Outcome.DUPLICATE, problem))
            continue
        ctx.remember("contacts.name", key, row.line)
        existing = contacts.get((owner.id, row.values["name"]))
        if existing is None:
            values = {**row.values, "customer_id": owner.id}
            new.append((row, w.full_row(CONTACTS, values, ctx.now)))
            results.append((Outcome.NEW, None))
            continue
        have = {p.e164 for p in numbers.get(existing.id, [])}
        diff = w.differences(existing, row.values)
        more = [p for p in row.phones if p[2].e164 not in have]
        if diff or more:
            changes[existing.id] = diff
            added.append((existing, ContactRow(row.line, row.owner, row.values, more, "")))
            results.append((Outcome.UPDATED, None))
        else:
            results.append((Outcome.UNCHANGED, None))
    await _apply(conn, new, added, changes, numbers, ctx)
    return results


async def _apply(
    conn: AsyncConnection,
    new: list[tuple[ContactRow, dict[str, Any]]],
    added: list[tuple[Any, ContactRow]],
    changes: dict[int, dict[str, Any]],
    numbers: dict[int, list[Any]],
    ctx: ImportContext,
) -> None:
    ids = await w.insert_returning_ids(conn, CONTACTS, [values for _, values in new])
    phones: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for (row, values), contact_id in zip(new, ids, strict=True):
        customer_id = values["customer_id"]
        mine = [w.phone_row(customer_id, contact_id, *p) for p in row.phones]
        phones += mine
        listed = [{"label": p["label"], "raw": p["raw"]} for p in mine]
        after = {**w.snapshot_of(CONTACTS, {**values, "id": contact_id}), "phones": listed}
        history.append(w.history_row(ctx, "contact", contact_id, None, after, "created"))
    await w.update_by_id(conn, CONTACTS, {i: d for i, d in changes.items() if d})
    for existing, row in added:
        mine = [w.phone_row(existing.customer_id, existing.id, *p) for p in row.phones]
        phones += mine
        old = [{"label": p.label, "raw": p.raw} for p in numbers.get(existing.id, [])]
        stored = dict(existing._mapping)
        before = {**w.snapshot_of(CONTACTS, stored), "phones": old}
        after_values = {**stored, **changes[existing.id]}
        new_phones = [{"label": p["label"], "raw": p["raw"]} for p in mine]
        after = {**w.snapshot_of(CONTACTS, after_values), "phones": old + new_phones}
        history.append(w.history_row(ctx, "contact", existing.id, before, after, "updated"))
    await w.insert_phones(conn, phones)
    await w.insert_history(conn, history)


register_kind(
    ImportKind(
        name="contacts",
        label="联系人",
        aliases={**OWNER_ALIASES, **TEXT_FIELDS, **PHONE_ALIASES},
        required=(("name",), OWNER_REQUIRED),
        validate=validate,
        write_batch=write_batch,
    )
)

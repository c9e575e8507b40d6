"""The `customers` kind: its batch writer and its registration. Rows and their checks are
in customer_rows.py, matching to stored customers in customer_match.py."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

import crm_core.importing.writing as w
from crm_core.importing.customer_match import Stored, load, seen_elsewhere, target_of
from crm_core.importing.customer_rows import (
    ALIASES,
    CUSTOMERS,
    VEHICLES,
    CustomerRow,
    search_keys,
    validate,
)
from crm_core.importing.kinds import ImportContext, ImportKind, RowResult, register_kind
from crm_core.importing.report import Outcome


def new_customer_code() -> str:
    """As crm_core.customers.new_customer_code; not imported, because that module brings in
    pypinyin's 80 MB, which a large import leaves to its worker process."""
    return "C" + secrets.token_hex(4).upper()


@dataclass
class Plan:
    """Everything one batch will write, gathered before the first statement."""

    new: list[tuple[CustomerRow, dict[str, Any]]] = field(default_factory=list)
    changed: dict[int, dict[str, Any]] = field(default_factory=dict)
    added_phones: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    new_vehicles: list[tuple[int | None, CustomerRow, dict[str, Any]]] = field(default_factory=list)
    vehicle_changes: dict[int, dict[str, Any]] = field(default_factory=dict)
    touched: dict[int, Any] = field(default_factory=dict)  # updated customer id → stored row


async def _phones_of_targets(conn: AsyncConnection, stored: Stored, ids: set[int]) -> None:
    extra = (w.PHONES.c.contact_id.is_(None),)
    for p in sorted(await w.select_in(conn, w.PHONES, "customer_id", ids, *extra), key=_id):
        stored.phones_of.setdefault(p.customer_id, []).append(p)


def _id(row: Any) -> int:
    return int(row.id)


def _plan_update(row: CustomerRow, target: Any, stored: Stored, plan: Plan) -> bool:
    changes = w.differences(target, row.values)
    if "name" in changes:
        changes.update(search_keys(changes["name"]))
    have = {p.e164 for p in stored.phones_of.get(target.id, [])}
    phones = [w.phone_row(target.id, None, lbl, raw, p) for lbl, raw, p in row.phones]
    phones = [p for p in phones if p["e164"] not in have]
    vehicles_changed = False
    for vehicle in row.vehicles:
        existing = stored.vehicles.get(vehicle["vin"])
        if existing is None:
            plan.new_vehicles.append((target.id, row, vehicle))
            vehicles_changed = True
        elif diff := w.differences(existing, vehicle):
            plan.vehicle_changes[existing.id] = diff
            vehicles_changed = True
    if not changes and not phones:
        return vehicles_changed
    plan.changed[target.id] = changes
    plan.added_phones[target.id] = phones
    plan.touched[target.id] = target
    return True


async def write_batch(
    conn: AsyncConnection, rows: Sequence[CustomerRow], ctx: ImportContext
) -> list[RowResult]:
    stored = await load(conn, rows)
    results: list[RowResult | None] = []
    targets: list[tuple[int, CustomerRow, Any]] = []
    for row in rows:
        problem = seen_elsewhere(row, ctx)
        if problem is None:
            target, problem = target_of(row, stored)
            if problem is None:
                targets.append((len(results), row, target))
        results.append(problem)
    await _phones_of_targets(conn, stored, {t.id for _, _, t in targets if t is not None})
    plan = Plan()
    for index, row, target in targets:
        if target is None:
            values = {**row.values, **row.keys}
            values["code"] = values.get("code") or new_customer_code()
            plan.new.append((row, values))
            results[index] = (Outcome.NEW, None)
        elif _plan_update(row, target, stored, plan):
            results[index] = (Outcome.UPDATED, None)
        else:
            results[index] = (Outcome.UNCHANGED, None)
    await _apply(conn, plan, stored, ctx)
    return [r if r is not None else (Outcome.UNCHANGED, None) for r in results]


async def _apply(conn: AsyncConnection, plan: Plan, stored: Stored, ctx: ImportContext) -> None:
    rows = [w.full_row(CUSTOMERS, values, ctx.now) for _, values in plan.new]
    ids = await w.insert_returning_ids(conn, CUSTOMERS, rows)
    history: list[dict[str, Any]] = []
    phones: list[dict[str, Any]] = []
    for (row, _), new_id, values in zip(plan.new, ids, rows, strict=True):
        mine = [w.phone_row(new_id, None, lbl, raw, p) for lbl, raw, p in row.phones]
        phones += mine
        after = {**w.snapshot_of(CUSTOMERS, {**values, "id": new_id}), "phones": _listed(mine)}
        history.append(w.history_row(ctx, "customer", new_id, None, after, "created"))
        plan.new_vehicles += [(new_id, row, v) for v in row.vehicles]
    now = {"updated_at": ctx.now}
    await w.update_by_id(conn, CUSTOMERS, {i: {**c, **now} for i, c in plan.changed.items()})
    for customer_id, target in plan.touched.items():
        added = plan.added_phones[customer_id]
        phones += added
        old = [{"label": p.label, "raw": p.raw} for p in stored.phones_of.get(customer_id, [])]
        before = {**w.snapshot_of(CUSTOMERS, dict(target._mapping)), "phones": old}
        after_values = {**dict(target._mapping), **plan.changed[customer_id], **now}
        after = {**w.snapshot_of(CUSTOMERS, after_values), "phones": old + _listed(added)}
        history.append(w.history_row(ctx, "customer", customer_id, before, after, "updated"))
    await w.insert_phones(conn, phones)
    history += await _write_vehicles(conn, plan, stored, ctx)
    await w.insert_history(conn, history)


def _listed(phones: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"label": p["label"], "raw": p["raw"]} for p in phones]


async def _write_vehicles(
    conn: AsyncConnection, plan: Plan, stored: Stored, ctx: ImportContext
) -> list[dict[str, Any]]:
    rows = [
        w.full_row(VEHICLES, {**vehicle, "customer_id": customer_id}, ctx.now)
        for customer_id, _, vehicle in plan.new_vehicles
    ]
    ids = await w.insert_returning_ids(conn, VEHICLES, rows)
    history = [
        w.history_row(ctx, "vehicle", i, None, w.snapshot_of(VEHICLES, {**r, "id": i}), "created")
        for i, r in zip(ids, rows, strict=True)
    ]
    await w.update_by_id(conn, VEHICLES, plan.vehicle_changes)
    by_id = {v.id: v for v in stored.vehicles.values()}
    for vehicle_id, diff in plan.vehicle_changes.items():
        old = dict(by_id[vehicle_id]._mapping)
        before = w.snapshot_of(VEHICLES, old)
        after = w.snapshot_of(VEHICLES, {**old, **diff})
        history.append(w.history_row(ctx, "vehicle", vehicle_id, before, after, "updated"))
    return history


register_kind(
    ImportKind(
        name="customers",
        label="客户",
        aliases=ALIASES,
        required=(("name",),),
        validate=validate,
        write_batch=write_batch,
    )
)

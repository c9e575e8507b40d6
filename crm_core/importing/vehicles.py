"""The `vehicles` kind: one vehicle a row, for a customer named by code, phone or name.
A VIN already registered to the same customer is updated (or unchanged); registered to
another customer, the row is a duplicate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
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
from crm_core.importing.validation import Problems
from crm_core.importing.vehicle_fields import slot_aliases, vehicle_values
from crm_core.models import Vehicle

VEHICLES: Table = Vehicle.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class VehicleRow:
    line: int
    owner: OwnerKey
    values: dict[str, Any]
    vin_header: str


def validate(row: RowValues, ctx: ImportContext) -> VehicleRow:
    problems = Problems(row)
    owner = owner_key(row, problems, ctx.home_area_code)
    if not row.get("vin"):
        problems.add("vin", "the VIN (车架号) is empty", "")
    values = vehicle_values(row, problems)
    problems.check()
    assert owner is not None and values is not None  # check() raised otherwise
    return VehicleRow(row.line, owner, values, row.header("vin"))


def _result(row: VehicleRow, outcome: Outcome, reason: str) -> RowResult:
    return outcome, Problem(row.line, row.vin_header, row.values["vin"], reason, outcome)


async def write_batch(
    conn: AsyncConnection, rows: Sequence[VehicleRow], ctx: ImportContext
) -> list[RowResult]:
    owners = await resolve(conn, [r.owner for r in rows])
    vins = [r.values["vin"] for r in rows]
    stored = {v.vin: v for v in await w.select_in(conn, VEHICLES, "vin", vins)}
    results: list[RowResult] = []
    new: list[dict[str, Any]] = []
    changes: dict[int, dict[str, Any]] = {}
    for row in rows:
        owner = owners[row.owner]
        vin = row.values["vin"]
        earlier = ctx.earlier_row("vehicles.vin", vin)
        if isinstance(owner, tuple):
            results.append((owner[0], owner_problem(row.line, row.owner, *owner)))
        elif earlier is not None:
            results.append(_result(row, Outcome.DUPLICATE, f"the same VIN as row {earlier}"))
        elif (existing := stored.get(vin)) is None:
            new.append(w.full_row(VEHICLES, {**row.values, "customer_id": owner.id}, ctx.now))
            results.append((Outcome.NEW, None))
        elif existing.customer_id != owner.id or existing.deleted:
            reason = f"VIN {vin} is registered to another customer (#{existing.customer_id})"
            results.append(_result(row, Outcome.DUPLICATE, reason))
        elif diff := w.differences(existing, row.values):
            changes[existing.id] = diff
            results.append((Outcome.UPDATED, None))
        else:
            results.append((Outcome.UNCHANGED, None))
        ctx.remember("vehicles.vin", vin, row.line)
    ids = await w.insert_returning_ids(conn, VEHICLES, new)
    history = [
        w.history_row(ctx, "vehicle", i, None, w.snapshot_of(VEHICLES, {**r, "id": i}), "created")
        for i, r in zip(ids, new, strict=True)
    ]
    await w.update_by_id(conn, VEHICLES, changes)
    for vehicle_id, diff in changes.items():
        old = next(dict(v._mapping) for v in stored.values() if v.id == vehicle_id)
        before, after = w.snapshot_of(VEHICLES, old), w.snapshot_of(VEHICLES, {**old, **diff})
        history.append(w.history_row(ctx, "vehicle", vehicle_id, before, after, "updated"))
    await w.insert_history(conn, history)
    return results


register_kind(
    ImportKind(
        name="vehicles",
        label="车辆",
        aliases={**OWNER_ALIASES, **slot_aliases("")},
        required=(("vin",), OWNER_REQUIRED),
        validate=validate,
        write_batch=write_batch,
    )
)

"""Vehicles (VIN, plate, model, chassis, dealer, warranty) owned by customers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import history, versions
from crm_core.db import Database
from crm_core.errors import DuplicateCode, NotFound, ValidationError
from crm_core.models import Customer, CustomerKind, Vehicle
from crm_core.records import editable_fields, require, validate_fields

VEHICLE_FIELDS = editable_fields(Vehicle, extra_excluded=["vin_tail"])
# ISO 3779: 17 characters, letters I, O and Q never appear.
VIN_PATTERN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


def clean_vin(raw: str) -> str:
    vin = raw.strip().upper().replace(" ", "")
    if not VIN_PATTERN.match(vin):
        raise ValidationError(
            f"VIN {raw!r} is not valid: 17 letters and digits, without I, O or Q",
            field="vin",
        )
    return vin


def clean_plate(raw: str | None) -> str | None:
    return None if raw is None else raw.strip().upper().replace(" ", "").replace("·", "") or None


class VehicleService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _get(self, session: AsyncSession, vehicle_id: int) -> Vehicle:
        row = await session.get(Vehicle, vehicle_id)
        if row is None or row.deleted:
            raise NotFound(f"vehicle {vehicle_id} does not exist", vehicle_id=vehicle_id)
        return row

    async def _check_links(self, session: AsyncSession, row: Vehicle) -> None:
        owner = await session.get(Customer, row.customer_id)
        if owner is None or owner.deleted:
            raise NotFound(f"customer {row.customer_id} does not exist", field="customer_id")
        if row.dealer_id is not None:
            dealer = await session.get(Customer, row.dealer_id)
            if dealer is None or dealer.kind != CustomerKind.DEALER.value:
                raise ValidationError(
                    f"selling dealer {row.dealer_id} is not a dealer", field="dealer_id"
                )

    def _clean(self, values: Mapping[str, Any], creating: bool) -> dict[str, Any]:
        clean = validate_fields(Vehicle, values, allowed=VEHICLE_FIELDS, required=["vin"])
        if creating:
            require(Vehicle, clean, ["vin", "customer_id"])
        if "vin" in clean:
            clean["vin"] = clean_vin(clean["vin"])
            clean["vin_tail"] = clean["vin"][-6:]
        if "plate" in clean:
            clean["plate"] = clean_plate(clean["plate"])
        return clean

    async def create(self, values: Mapping[str, Any], *, user_id: int | None = None) -> Vehicle:
        clean = self._clean(values, creating=True)
        try:
            async with self.db.transaction() as session:
                row = Vehicle(**clean)
                await self._check_links(session, row)
                session.add(row)
                await session.flush()
                after = await history.capture(session, "vehicle", row.id)
                await history.record(session, "vehicle", row.id, "create", None, after, user_id)
        except IntegrityError:
            raise DuplicateCode(
                f"VIN {clean['vin']} is already registered", vin=clean["vin"]
            ) from None
        return row

    async def update(
        self,
        vehicle_id: int,
        changes: Mapping[str, Any],
        *,
        user_id: int | None = None,
        expected_version: str | None = None,
    ) -> Vehicle:
        clean = self._clean(changes, creating=False)
        try:
            async with self.db.transaction() as session:
                row = await self._get(session, vehicle_id)
                if expected_version is not None:  # issue #17: optimistic concurrency
                    await versions.check(
                        session, "vehicle", vehicle_id, expected_version, self.db.settings
                    )
                before = await history.capture(session, "vehicle", vehicle_id)
                for key, value in clean.items():
                    setattr(row, key, value)
                await self._check_links(session, row)
                await session.flush()
                after = await history.capture(session, "vehicle", vehicle_id)
                await history.record(
                    session, "vehicle", vehicle_id, "update", before, after, user_id
                )
        except IntegrityError:
            raise DuplicateCode(f"VIN {clean.get('vin')} is already registered") from None
        return row

    async def delete(
        self, vehicle_id: int, *, user_id: int | None = None, expected_version: str | None = None
    ) -> None:
        async with self.db.transaction() as session:
            row = await self._get(session, vehicle_id)
            if expected_version is not None:  # issue #17: optimistic concurrency
                await versions.check(
                    session, "vehicle", vehicle_id, expected_version, self.db.settings
                )
            before = await history.capture(session, "vehicle", vehicle_id)
            row.deleted = True
            await session.flush()
            after = await history.capture(session, "vehicle", vehicle_id)
            await history.record(session, "vehicle", vehicle_id, "delete", before, after, user_id)

"""Ticketing test world: a customer with a vehicle, the hotline's staff, a clock we move."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.users import create_user
from crm_core.vehicles import VehicleService
from ticketing.context import TicketingContext
from ticketing.field import set_mobile
from ticketing.notices import RecordingNotifier


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class World:
    ctx: TicketingContext
    notes: RecordingNotifier
    clock: Clock
    customer_id: int
    vehicle_id: int
    agent: int
    agent2: int
    reviewer: int
    supervisor: int
    tech: int
    tech2: int
    tech_mobile: str = "+8613800000001"
    tech2_mobile: str = "+8613800000002"
    supervisor_mobile: str = "+8613800000009"


async def make_world(db: Database, n: int = 0, password: str | None = None) -> World:
    """`n` makes usernames, VIN and mobiles unique when several worlds share a database."""
    customer = await CustomerService(db).create(
        {"name": "阜阳顺达物流", "region": "华东", "city": "阜阳", "address": "颍州区工业路8号"},
        [f"1390558{n:04d}"],
        allow_duplicate=True,
    )
    vehicle = await VehicleService(db).create(
        {"customer_id": customer.id, "vin": f"LKL{n:014d}", "plate": "皖K12345"}
    )

    async def user(name: str, role: str, office: str | None, region: str | None = "华东") -> int:
        row = await create_user(
            db,
            {
                "username": f"{name}_{n}" if n else name,
                "display_name": name,
                "role": role,
                "office": office,
                "region": region,
            },
            password=password,
        )
        return row.id

    clock = Clock()
    notes = RecordingNotifier()
    ctx = TicketingContext(db, notify=notes, clock=clock)
    world = World(
        ctx=ctx,
        notes=notes,
        clock=clock,
        customer_id=customer.id,
        vehicle_id=vehicle.id,
        agent=await user("agent1", "agent", "400热线"),
        agent2=await user("agent2", "agent", "400热线"),
        reviewer=await user("reviewer", "supervisor", "技术科", None),
        supervisor=await user("office_sup", "supervisor", "合肥服务站"),
        tech=await user("tech1", "technician", "合肥服务站"),
        tech2=await user("tech2", "technician", "合肥服务站"),
    )
    world.tech_mobile = f"+86138{n:04d}0001"
    world.tech2_mobile = f"+86138{n:04d}0002"
    world.supervisor_mobile = f"+86138{n:04d}0009"
    await set_mobile(ctx, world.tech, world.tech_mobile)
    await set_mobile(ctx, world.tech2, world.tech2_mobile)
    await set_mobile(ctx, world.supervisor, world.supervisor_mobile)
    return world


@pytest.fixture(name="world")
async def world_fixture(db: Database) -> World:
    """Imported by the test modules that use it (no conftest here: basenames stay unique)."""
    return await make_world(db)

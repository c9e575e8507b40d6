"""Merging duplicate customers from the desktop (issue #17 §2): supervisors and admins only,
audited; calls (cti), service requests (ticketing), recordings and vehicles follow the
survivor through the bus, and unmerge puts exactly those back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import World, audit_rows, login_ok

from crm_core.contacts import ContactService
from crm_core.customers import CustomerService
from crm_core.models import Contact, Customer, Vehicle
from crm_core.vehicles import VehicleService
from cti.models import Call
from recordings.models import Recording
from ticketing.models import ServiceRequest

HTML = {"Accept": "text/html"}


async def _duplicate_with_history(world: World) -> dict[str, int]:
    """A second 华东 customer with a contact, a vehicle, a call, a request and a recording."""
    db = world.db
    source = await CustomerService(db).create(
        {"name": "合肥江淮运输公司", "region": "华东"}, ["13905587777"], allow_duplicate=True
    )
    contact = await ContactService(db).create({"name": "李明", "customer_id": source.id})
    vehicle = await VehicleService(db).create(
        {"vin": "LFV2A21K6A3049999", "customer_id": source.id}
    )
    now = datetime.now(UTC)
    async with db.transaction() as session:
        call = Call(server="pbx1", linkedid="1700000000.1", direction="inbound")
        call.customer_id = source.id
        request = ServiceRequest(
            customer_id=source.id,
            channel="phone",
            category="repair",
            priority="normal",
            state="new",
            description="刹车异响",
            response_due_at=now + timedelta(hours=1),
            resolution_due_at=now + timedelta(days=1),
        )
        recording = Recording(server="pbx1", source_path="/var/spool/a.wav", customer_id=source.id)
        session.add_all([call, request, recording])
        await session.flush()
        ids = {"call": call.id, "request": request.id, "recording": recording.id}
    return {"source": source.id, "contact": contact.id, "vehicle": vehicle.id, **ids}


async def _owners(world: World, ids: dict[str, int]) -> dict[str, int | None]:
    async with world.db.transaction() as session:
        return {
            "contact": (await session.get(Contact, ids["contact"])).customer_id,  # type: ignore[union-attr]
            "vehicle": (await session.get(Vehicle, ids["vehicle"])).customer_id,  # type: ignore[union-attr]
            "call": (await session.get(Call, ids["call"])).customer_id,  # type: ignore[union-attr]
            "request": (await session.get(ServiceRequest, ids["request"])).customer_id,  # type: ignore[union-attr]
            "recording": (await session.get(Recording, ids["recording"])).customer_id,  # type: ignore[union-attr]
        }


async def test_merge_moves_calls_requests_recordings_and_vehicles_and_unmerge_puts_them_back(
    client: TestClient[Any, Any], world: World
) -> None:
    ids = await _duplicate_with_history(world)
    source, target = ids["source"], world.east_customer
    path = f"/api/customers/{source}/merge"

    agent = await login_ok(client, "agent_east")
    refused = await client.post(path, json={"into": target}, headers={"X-CSRF-Token": agent})
    assert refused.status == 403  # agents may edit, not merge

    csrf = await login_ok(client, "sup_east")
    north = await client.post(
        path, json={"into": world.north_customer}, headers={"X-CSRF-Token": csrf}
    )
    assert north.status == 404  # the survivor must be inside the supervisor's scope too
    bad = await client.post(path, json={"into": "x"}, headers={"X-CSRF-Token": csrf})
    assert bad.status == 400 and (await bad.json())["field"] == "into"

    merged = await client.post(path, json={"into": target}, headers={"X-CSRF-Token": csrf})
    assert merged.status == 200, await merged.text()
    body = await merged.json()
    assert body["moved"]["calls"] == [ids["call"]]
    assert body["moved"]["service_requests"] == [ids["request"]]
    assert body["moved"]["recordings"] == [ids["recording"]]
    assert body["moved"]["vehicles"] == [ids["vehicle"]]
    assert set((await _owners(world, ids)).values()) == {target}
    [entry] = await audit_rows(world.db, "customer_merged")
    assert entry.object_id == str(source) and entry.detail["target_id"] == target  # type: ignore[index]

    page = await (await client.get(f"/customers/{target}", headers=HTML)).text()
    assert "合肥江淮运输公司" in page and "撤销合并" in page  # listed, with its undo button
    assert "刹车异响" in page  # the request now shows on the survivor's 360
    async with world.db.transaction() as session:
        newer = Call(server="pbx1", linkedid="1700000001.1", direction="inbound")
        newer.customer_id = target
        session.add(newer)
        await session.flush()
        newer_id = newer.id

    undone = await client.post(
        f"/api/customers/{source}/unmerge", json={}, headers={"X-CSRF-Token": csrf}
    )
    assert undone.status == 200, await undone.text()
    assert (await undone.json())["merge_change_id"] == body["change_id"]
    assert set((await _owners(world, ids)).values()) == {source}
    async with world.db.transaction() as session:
        assert (await session.get(Call, newer_id)).customer_id == target  # type: ignore[union-attr]
        assert (await session.get(Customer, source)).merged_into_id is None  # type: ignore[union-attr]
    assert len(await audit_rows(world.db, "customer_unmerged")) == 1
    again = await client.post(
        f"/api/customers/{source}/unmerge", json={}, headers={"X-CSRF-Token": csrf}
    )
    assert again.status == 409


async def test_cli_merge_moves_the_call_log_too(world: World) -> None:
    from agent_desktop.customers.merge_wiring import merge_bus
    from crm_core import duplicates

    ids = await _duplicate_with_history(world)
    bus = merge_bus(world.db)
    change = await duplicates.merge(world.db, ids["source"], world.east_customer, bus=bus)
    assert set((await _owners(world, ids)).values()) == {world.east_customer}
    await duplicates.unmerge(world.db, change.id, bus=bus)
    assert set((await _owners(world, ids)).values()) == {ids["source"]}

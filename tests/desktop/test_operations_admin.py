"""An admin sets a queue's opening hours, overflow and callback, and adds closures: the same
validation for every door, clear errors for bad input, and each change in the history."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import JSON, ORIGIN, World, audit_rows, login_ok


async def _admin(client: TestClient[Any, Any]) -> dict[str, str]:
    token = await login_ok(client, "admin1")
    return {**JSON, "X-CSRF-Token": token, "Origin": ORIGIN}


async def test_hours_overflow_and_callback_are_saved_and_bad_values_are_named(
    client: TestClient[Any, Any], world: World
) -> None:
    headers = await _admin(client)
    good = await client.patch(
        "/api/admin/queues/hotline",
        headers=headers,
        json={
            "hours": "Mon-Fri 08:30-17:30;  sat 09:00-12:00",
            "overflow_target": "queue:vip",
            "overflow_seconds": 120,
            "callback_enabled": True,
            "service_level_seconds": 30,
        },
    )
    assert good.status == 200, await good.text()
    body = (await good.json())["queue"]
    assert body["hours"] == "mon-fri 08:30-17:30; sat 09:00-12:00"
    assert (body["overflow_target"], body["callback_enabled"]) == ("queue:vip", True)
    for values, field in (
        ({"hours": "mon-fri 9-17"}, "hours"),
        ({"overflow_target": "queue:hotline"}, "overflow_target"),  # itself
        ({"overflow_target": "queue:nosuch"}, "overflow_target"),
        ({"overflow_target": "somewhere"}, "overflow_target"),
        ({"holiday_calendar": "us"}, "holiday_calendar"),
        ({"service_level_seconds": 0}, "service_level_seconds"),
    ):
        bad = await client.patch("/api/admin/queues/hotline", headers=headers, json=values)
        assert bad.status == 422, (values, await bad.text())
        assert (await bad.json())["field"] == field
    kept = await (await client.get("/api/admin/queues", headers=JSON)).json()
    hotline = next(q for q in kept["queues"] if q["name"] == "hotline")
    assert hotline["overflow_target"] == "queue:vip"  # nothing half-written


async def test_a_closure_is_added_listed_and_removed_with_history(
    client: TestClient[Any, Any], world: World
) -> None:
    headers = await _admin(client)
    added = await client.post(
        "/api/admin/closures",
        headers=headers,
        json={
            "queue": "hotline",
            "starts_at": "2099-09-15T08:00",
            "ends_at": "2099-09-16T08:00",
            "reason": "台风停工",
        },
    )
    assert added.status == 201, await added.text()
    closure = await added.json()
    assert closure["starts_at"] == "2099-09-15T08:00:00+08:00"  # Beijing time when unzoned
    listed = await (await client.get("/api/admin/closures", headers=JSON)).json()
    assert [c["reason"] for c in listed["closures"]] == ["台风停工"]
    for body, field in (
        (
            {"starts_at": "2099-09-16T08:00", "ends_at": "2099-09-15T08:00", "reason": "x"},
            "ends_at",
        ),
        ({"starts_at": "tomorrow", "ends_at": "2099-09-15T08:00", "reason": "x"}, "starts_at"),
        ({"starts_at": "2099-09-15", "ends_at": "2099-09-16", "reason": ""}, "reason"),
        (
            {"queue": "nosuch", "starts_at": "2099-09-15", "ends_at": "2099-09-16", "reason": "x"},
            "queue",
        ),
    ):
        bad = await client.post("/api/admin/closures", headers=headers, json=body)
        assert bad.status == 422 and (await bad.json())["field"] == field, await bad.text()
    gone = await client.delete(f"/api/admin/closures/{closure['id']}", headers=headers)
    assert gone.status == 200
    again = await client.delete(f"/api/admin/closures/{closure['id']}", headers=headers)
    assert again.status == 404
    assert len(await audit_rows(world.db, "admin_closure_create")) == 1
    assert len(await audit_rows(world.db, "admin_closure_delete")) == 1

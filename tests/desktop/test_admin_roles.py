"""The two roles administration added: a dispatcher runs an office's dispatch board, an
auditor reads the reports and the wallboard and changes nothing."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import JSON, ORIGIN, PASSWORD, World, login_ok

from crm_core.users import create_user


async def _user(world: World, username: str, role: str) -> None:
    await create_user(
        world.db,
        {"username": username, "display_name": username, "role": role, "office": "合肥服务站"},
        password=PASSWORD,
    )


async def test_a_dispatcher_opens_the_office_dispatch_board(
    client: TestClient[Any, Any], world: World
) -> None:
    await _user(world, "dispatch_hf", "dispatcher")
    await login_ok(client, "dispatch_hf")
    page = await client.get("/tickets/dispatch")
    assert page.status == 200
    assert "合肥服务站" in await page.text()
    assert (await client.get("/reports")).status == 403


async def test_an_auditor_reads_reports_and_wallboard_and_changes_nothing(
    client: TestClient[Any, Any], world: World
) -> None:
    await _user(world, "audit_1", "auditor")
    token = await login_ok(client, "audit_1")
    assert (await client.get("/reports")).status == 200
    assert (await client.get("/wallboard")).status == 200
    assert (await client.get("/tickets/dispatch")).status == 403
    headers = {**JSON, "X-CSRF-Token": token, "Origin": ORIGIN}
    created = await client.post(
        "/api/tickets", headers=headers, json={"customer_id": world.east_customer}
    )
    assert created.status == 403

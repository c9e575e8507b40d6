"""Data scopes, object-level refusals (IDOR), role checks and the audited number reveal."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from desk_world import JSON, World, audit_rows, login_ok

from agent_desktop.common.access import can_see_customer
from agent_desktop.common.sessions import SessionUser
from crm_core.models import Customer


async def test_agent_asking_for_another_regions_customer_gets_404_and_an_audit_row(
    client: TestClient[Any, Any], world: World
) -> None:
    await login_ok(client, "agent_east")
    own = await client.get(f"/api/customers/{world.east_customer}", headers=JSON)
    assert own.status == 200
    probe = await client.get(f"/api/customers/{world.north_customer}", headers=JSON)
    assert probe.status == 404
    assert (await probe.json())["error_id"] == "not_found"
    # The same refusal as a page, in Chinese.
    page = await client.get(f"/customers/{world.north_customer}", headers={"Accept": "text/html"})
    assert page.status == 404 and "未找到" in await page.text()
    rows = await audit_rows(world.db, "access_denied")
    assert len(rows) == 2
    assert {(r.object_type, r.object_id, r.user_id) for r in rows} == {
        ("customer", str(world.north_customer), world.users["agent_east"])
    }
    assert rows[0].ip == "127.0.0.1" and rows[0].detail is not None
    # A customer that does not exist at all answers the same 404 (ids reveal nothing).
    missing = await client.get("/api/customers/999999", headers=JSON)
    assert missing.status == 404


async def test_search_is_scoped(client: TestClient[Any, Any], world: World) -> None:
    await login_ok(client, "agent_east")
    east = await client.get("/api/customers/search", params={"q": "合肥"}, headers=JSON)
    assert [h["customer_id"] for h in (await east.json())["hits"]] == [world.east_customer]
    north = await client.get("/api/customers/search", params={"q": "北京"}, headers=JSON)
    assert (await north.json())["hits"] == []
    client.session.cookie_jar.clear()
    await login_ok(client, "admin1")
    north = await client.get("/api/customers/search", params={"q": "北京"}, headers=JSON)
    assert [h["customer_id"] for h in (await north.json())["hits"]] == [world.north_customer]


async def test_search_by_phone_masks_the_matched_number(
    client: TestClient[Any, Any], world: World
) -> None:
    await login_ok(client, "agent_east")
    response = await client.get("/api/customers/search", params={"q": "1234"}, headers=JSON)
    [hit] = (await response.json())["hits"]
    assert hit["matched_on"] == "phone" and hit["detail"] == "139****1234"


async def test_role_check_refuses_and_audits(client: TestClient[Any, Any], world: World) -> None:
    await login_ok(client, "agent_east")
    response = await client.get("/login-history", headers=JSON)
    assert response.status == 403 and (await response.json())["error_id"] == "forbidden"
    [row] = await audit_rows(world.db, "access_denied")
    assert row.object_type == "route" and row.object_id == "/login-history"
    client.session.cookie_jar.clear()
    await login_ok(client, "admin1")
    page = await client.get("/login-history", headers={"Accept": "text/html"})
    assert page.status == 200 and "登录历史" in await page.text()


async def test_numbers_are_masked_and_reveal_is_audited(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    view = await (await client.get(f"/api/customers/{world.east_customer}", headers=JSON)).json()
    [phone] = view["phones"]
    assert phone["number"] == "139****1234" and phone["masked"] is True
    url = f"/api/customers/{world.east_customer}/phones/{world.east_phone}/reveal"
    assert (await client.post(url)).status == 403  # no CSRF token
    revealed = await client.post(url, headers={"X-CSRF-Token": csrf})
    assert revealed.status == 200
    assert (await revealed.json())["number"] == "139 0558 1234"
    [row] = await audit_rows(world.db, "phone_revealed")
    assert row.object_id == str(world.east_phone) and row.user_id == world.users["agent_east"]
    assert row.detail == {"customer_id": world.east_customer}
    # Another customer's phone id through this customer's URL: refused and audited.
    sneaky = f"/api/customers/{world.east_customer}/phones/{world.north_phone}/reveal"
    refused = await client.post(sneaky, headers={"X-CSRF-Token": csrf})
    assert refused.status == 404
    # And the other region's customer directly.
    other = f"/api/customers/{world.north_customer}/phones/{world.north_phone}/reveal"
    assert (await client.post(other, headers={"X-CSRF-Token": csrf})).status == 404
    assert len(await audit_rows(world.db, "phone_revealed")) == 1
    assert len(await audit_rows(world.db, "access_denied")) == 2


async def test_supervisor_sees_the_region_and_unmasked_roles_see_numbers(
    aiohttp_client: Any, world: World
) -> None:
    from agent_desktop.server import build_app
    from crm_core.db import Database

    settings = world.db.settings.replace(phone_unmasked_roles="supervisor")
    client = await aiohttp_client(build_app(Database.open(settings)))
    await login_ok(client, "sup_east")
    view = await (await client.get(f"/api/customers/{world.east_customer}", headers=JSON)).json()
    assert view["phones"][0]["number"] == "139 0558 1234"
    assert view["phones"][0]["masked"] is False
    probe = await client.get(f"/api/customers/{world.north_customer}", headers=JSON)
    assert probe.status == 404


def _user(role: str, region: str | None, uid: int = 1) -> SessionUser:
    return SessionUser(uid, "u", "U", role, region, None, None)


@pytest.mark.parametrize(
    ("role", "region", "customer_region", "owner", "visible"),
    [
        ("agent", "华东", "华东", None, True),
        ("agent", "华东", "华北", None, False),
        ("agent", "华东", "华北", 1, True),  # owned customers follow their agent
        ("agent", "华东", None, None, True),  # unassigned: reachable by every agent
        ("supervisor", "华东", None, None, False),
        ("supervisor", "华东", "华北", None, False),
        ("technician", "华东", "华东", None, True),
        ("technician", None, "华东", None, False),
        ("admin", None, "华北", None, True),
    ],
)
def test_scope_rules(
    role: str, region: str | None, customer_region: str | None, owner: int | None, visible: bool
) -> None:
    customer = Customer(id=5, region=customer_region, owner_id=owner, deleted=False)
    assert can_see_customer(_user(role, region), customer) is visible


async def test_sql_scope_agrees_with_the_object_check(world: World) -> None:
    from sqlalchemy import select

    from agent_desktop.common.access import customer_scope

    async with world.db.transaction() as session:
        customers = (await session.scalars(select(Customer))).all()
        for role, region in (("agent", "华东"), ("supervisor", "华北"), ("admin", None)):
            user = _user(role, region, uid=999)
            listed = set(
                (await session.scalars(select(Customer.id).where(customer_scope(user)))).all()
            )
            assert listed == {c.id for c in customers if can_see_customer(user, c)}

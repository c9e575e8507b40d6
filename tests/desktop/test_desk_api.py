"""The desktop's JSON endpoints (calls/desktop_api.py) and the wallboard (wallboard/live.py):
authentication, CSRF, object scope with audit, bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from desk_world import ORIGIN, World, audit_rows, login_ok

from crm_core.models import Customer
from cti.models import Call, ScreenPop


async def _post(client: TestClient[Any, Any], path: str, csrf: str | None, body: Any) -> Any:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    return await client.post(path, json=body, headers=headers)


async def test_every_desktop_endpoint_needs_a_session(client: TestClient[Any, Any]) -> None:
    for method, path in (
        ("POST", "/api/customers/duplicates"),
        ("POST", "/api/customers"),
        ("GET", "/api/calls/by-linkedid/1.1"),
        ("POST", "/api/calls/1/customer"),
        ("GET", "/api/desktop/reminders"),
        ("GET", "/api/wallboard"),
    ):
        response = await client.request(method, path, json={})
        assert response.status == 401, path


async def test_writes_need_the_csrf_token(client: TestClient[Any, Any]) -> None:
    await login_ok(client, "agent_east")
    response = await _post(client, "/api/customers", None, {"name": "x", "phone": "13900001111"})
    assert response.status == 403 and (await response.json())["error_id"] == "csrf_failed"


async def test_duplicate_warning_names_only_customers_in_scope(
    client: TestClient[Any, Any],
) -> None:
    csrf = await login_ok(client, "agent_east")
    same = await _post(
        client,
        "/api/customers/duplicates",
        csrf,
        {"name": "合肥江淮运输有限公司", "phone": "13905581234"},
    )
    found = await same.json()
    assert [d["name"] for d in found["duplicates"]] == ["合肥江淮运输有限公司"]
    assert "same phone number" in found["duplicates"][0]["reasons"]
    other = await _post(
        client, "/api/customers/duplicates", csrf, {"name": "北京燕山物流有限公司", "phone": ""}
    )
    body = await other.json()
    assert body == {"duplicates": [], "hidden": 1}  # exists, but in 华北: counted, not named
    short = await _post(client, "/api/customers/duplicates", csrf, {"name": "合"})
    assert (await short.json()) == {"duplicates": [], "hidden": 0}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"name": "", "phone": "13900001111"},
        {"name": "x" * 101, "phone": "13900001111"},
        {"name": "新客户", "phone": "not a number"},
        {"name": "新客户"},
        {"name": 5, "phone": "13900001111"},
    ],
)
async def test_quick_create_refuses_bad_input(client: TestClient[Any, Any], body: Any) -> None:
    csrf = await login_ok(client, "agent_east")
    response = await _post(client, "/api/customers", csrf, body)
    assert response.status == 422, await response.text()


async def test_quick_create_owns_the_customer_refuses_duplicates_and_audits(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    dup = await _post(
        client, "/api/customers", csrf, {"name": "合肥江淮运输有限公司", "phone": "13905581234"}
    )
    assert dup.status == 409 and (await dup.json())["error_id"] == "possible_duplicate"
    made = await _post(
        client,
        "/api/customers",
        csrf,
        {"name": "宿州新起点冷链运输有限公司", "phone": "13611112222", "city": "宿州"},
    )
    assert made.status == 201, await made.text()
    created = await made.json()
    async with world.db.transaction() as session:
        row = await session.get(Customer, created["id"])
    assert row is not None
    assert (row.owner_id, row.region, row.city) == (world.users["agent_east"], "华东", "宿州")
    (entry,) = await audit_rows(world.db, "customer_quick_created")
    assert entry.object_id == str(created["id"])
    view = await client.get(f"/api/customers/{created['id']}")
    assert view.status == 200
    anyway = await _post(
        client,
        "/api/customers",
        csrf,
        {"name": "合肥江淮运输有限公司", "phone": "13905581234", "allow_duplicate": True},
    )
    assert anyway.status == 201


async def _call(world: World, **values: Any) -> int:
    async with world.db.transaction() as session:
        row = Call(server="pbx", direction="inbound", number="13905581234", **values)
        session.add(row)
        await session.flush()
        return row.id


async def test_call_by_linkedid_is_scoped_to_the_agent_or_their_pop(
    client: TestClient[Any, Any], world: World
) -> None:
    mine = await _call(world, linkedid="100.1", agent_id=world.users["agent_east"])
    await _call(world, linkedid="100.2", agent_id=world.users["agent_north"])
    await _call(world, linkedid="100.3")  # still ringing: no agent yet
    async with world.db.transaction() as session:
        session.add(
            ScreenPop(
                id="p-1",
                server="pbx",
                linkedid="100.3",
                ring_id="r",
                agent_id=world.users["agent_east"],
                state="ringing",
                payload={},
            )
        )
    await login_ok(client, "agent_east")
    found = await client.get("/api/calls/by-linkedid/100.1")
    assert found.status == 200 and (await found.json())["id"] == mine
    assert (await client.get("/api/calls/by-linkedid/100.2")).status == 404
    assert (await client.get("/api/calls/by-linkedid/100.3")).status == 200
    assert (await client.get("/api/calls/by-linkedid/nope")).status == 404


async def test_linking_a_call_checks_the_customer_scope_and_audits(
    client: TestClient[Any, Any], world: World
) -> None:
    call_id = await _call(world, linkedid="200.1", agent_id=world.users["agent_east"])
    others = await _call(world, linkedid="200.2", agent_id=world.users["agent_north"])
    csrf = await login_ok(client, "agent_east")
    path = f"/api/calls/{call_id}/customer"
    ok = await _post(client, path, csrf, {"customer_id": world.east_customer})
    assert ok.status == 200
    refused = await _post(client, path, csrf, {"customer_id": world.north_customer})
    assert refused.status == 404
    denied = await audit_rows(world.db, "access_denied")
    assert [(d.object_type, d.object_id) for d in denied] == [
        ("customer", str(world.north_customer))
    ]
    assert (await _post(client, path, csrf, {"customer_id": "7"})).status == 422
    unlinked = await _post(client, path, csrf, {"customer_id": None})
    assert unlinked.status == 200
    async with world.db.transaction() as session:
        row = await session.get(Call, call_id)
    assert row is not None and row.customer_id is None
    not_mine = await _post(
        client, f"/api/calls/{others}/customer", csrf, {"customer_id": world.east_customer}
    )
    assert not_mine.status == 404
    assert len(await audit_rows(world.db, "call_customer_linked")) == 2


async def test_reminders_list_callbacks_and_birthdays_in_scope(
    client: TestClient[Any, Any], world: World
) -> None:
    from crm_core.models import Contact

    month = datetime.now(UTC).month  # fine unless run at a month's edge in Beijing time
    async with world.db.transaction() as session:
        for customer_id, name in ((world.east_customer, "王经理"), (world.north_customer, "赵总")):
            session.add(
                Contact(
                    customer_id=customer_id,
                    name=name,
                    birthday=datetime(1980, month, 15).date(),
                )
            )
    await _call(
        world,
        linkedid="300.1",
        outcome="missed",
        status="ended",
        number_e164="+8613905581234",
        entered_at=datetime.now(UTC),
    )
    await login_ok(client, "agent_east")
    response = await client.get("/api/desktop/reminders")
    body = await response.json()
    assert response.status == 200
    names = [b["contact"] for b in body["birthdays"]]
    if datetime.now(UTC).day not in (1, 31):  # the Beijing month may differ by a day
        assert names == ["王经理"]
    assert [c["number"] for c in body["callbacks"]] == ["13905581234"]
    assert body["follow_ups"] == []


async def test_wallboard_is_for_supervisors_and_admins(
    client: TestClient[Any, Any], world: World
) -> None:
    await login_ok(client, "agent_east")
    page = await client.get("/wallboard", headers={"Accept": "text/html"})
    assert page.status == 403
    assert (await client.get("/api/wallboard")).status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/wallboard", headers={"Origin": ORIGIN})
    assert refused.value.status == 403
    client.session.cookie_jar.clear()
    await login_ok(client, "sup_east")
    page = await client.get("/wallboard", headers={"Accept": "text/html"})
    assert page.status == 200 and "监控大屏" in await page.text()
    snapshot = await (await client.get("/api/wallboard")).json()
    assert snapshot["type"] == "wallboard" and "queues" in snapshot


async def test_wallboard_socket_refuses_foreign_origin_and_no_session(
    client: TestClient[Any, Any],
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as anonymous:
        await client.ws_connect("/ws/wallboard", headers={"Origin": ORIGIN})
    assert anonymous.value.status == 401
    await login_ok(client, "admin1")
    with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
        await client.ws_connect("/ws/wallboard", headers={"Origin": "http://evil.example"})
    assert foreign.value.status == 403


async def test_wallboard_socket_pushes_snapshots(client: TestClient[Any, Any]) -> None:
    await login_ok(client, "admin1")
    ws = await client.ws_connect("/ws/wallboard", headers={"Origin": ORIGIN})
    try:
        first = await ws.receive_json(timeout=10)
        second = await ws.receive_json(timeout=10)
    finally:
        await ws.close()
    assert first["type"] == second["type"] == "wallboard"
    assert second["at"] > first["at"]


async def test_desktop_page_carries_translated_script_strings(
    client: TestClient[Any, Any],
) -> None:
    await login_ok(client, "agent_east")
    page = await (await client.get("/desktop", headers={"Accept": "text/html"})).text()
    assert 'id="desk-strings"' in page and "振铃中" in page and "话后小结" in page
    assert 'id="pause-toggle"' in page and 'id="unprocessed-list"' in page

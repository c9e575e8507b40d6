"""Editing customers, contacts, vehicles and phone numbers from the desktop (issue #17 §2):
versions and conflicts, duplicate numbers within scope, history and restore, access rules."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import World, login_ok
from sqlalchemy import select

from crm_core.models import ChangeRecord, Contact, Customer, PhoneNumber, Vehicle

HTML = {"Accept": "text/html"}
VIN = "LFV2A21K6A3041234"


async def _read(client: TestClient[Any, Any], customer_id: int) -> tuple[dict[str, Any], str]:
    response = await client.get(f"/api/customers/{customer_id}")
    assert response.status == 200, await response.text()
    data = await response.json()
    assert response.headers["ETag"] == f'"{data["version"]}"'
    return data, data["version"]


async def _send(
    client: TestClient[Any, Any],
    method: str,
    path: str,
    csrf: str | None,
    body: Any = None,
    **headers: str,
) -> Any:
    if csrf:
        headers["X-CSRF-Token"] = csrf
    return await client.request(method, path, json=body, headers=headers)


async def _customer(world: World, customer_id: int) -> Customer:
    async with world.db.transaction() as session:
        row = await session.get(Customer, customer_id)
    assert row is not None
    return row


async def test_agent_edits_a_customer_and_sees_it_on_the_360_and_in_history(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    _data, version = await _read(client, world.east_customer)
    response = await _send(
        client,
        "PATCH",
        f"/api/customers/{world.east_customer}",
        csrf,
        {"address": "合肥市包河区花园大道 18 号", "industry": "物流"},
        **{"If-Match": f'"{version}"'},
    )
    assert response.status == 200, await response.text()
    saved = await response.json()
    assert saved["customer"]["address"] == "合肥市包河区花园大道 18 号"
    assert saved["version"] != version and response.headers["ETag"] == f'"{saved["version"]}"'

    page = await (await client.get(f"/customers/{world.east_customer}", headers=HTML)).text()
    assert "合肥市包河区花园大道 18 号" in page and "物流" in page
    assert "测试 agent_east" in page  # who changed it, in the history table
    assert "address, industry" in page
    assert "恢复此版本" in page and 'id="edit-customer"' in page

    listed = await (await client.get(f"/api/customers/{world.east_customer}/history")).json()
    latest = listed["history"][0]
    assert latest["action"] == "update" and latest["who"] == "测试 agent_east"
    assert latest["changed"] == ["address", "industry"]


async def test_a_version_from_the_history_can_be_restored(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    _data, version = await _read(client, world.east_customer)
    await _send(
        client,
        "PATCH",
        f"/api/customers/{world.east_customer}",
        csrf,
        {"city": "芜湖", "version": version},
    )
    history = (await (await client.get(f"/api/customers/{world.east_customer}/history")).json())[
        "history"
    ]
    created = next(h for h in history if h["action"] == "create")
    response = await _send(client, "POST", f"/api/history/{created['id']}/restore", csrf, {})
    assert response.status == 200, await response.text()
    assert (await _customer(world, world.east_customer)).city == "合肥"
    page = await (await client.get(f"/customers/{world.east_customer}", headers=HTML)).text()
    assert "恢复" in page and "芜湖" not in page
    after = (await (await client.get(f"/api/customers/{world.east_customer}/history")).json())[
        "history"
    ][0]
    assert after["action"] == "restore" and after["changed"] == ["city"]


async def test_a_stale_version_is_refused_and_names_who_changed_it(
    client: TestClient[Any, Any], world: World
) -> None:
    path = f"/api/customers/{world.east_customer}"
    csrf = await login_ok(client, "agent_east")
    _data, old = await _read(client, world.east_customer)
    other = await login_ok(client, "sup_east")  # a second person edits meanwhile
    first = await _send(client, "PATCH", path, other, {"address": "第一位的地址", "version": old})
    assert first.status == 200
    csrf = await login_ok(client, "agent_east")
    second = await _send(client, "PATCH", path, csrf, {"address": "第二位的地址", "version": old})
    assert second.status == 409
    body = await second.json()
    assert body["error_id"] == "edit_conflict"
    assert body["message"].startswith("此客户已被 测试 sup_east 于 ")
    assert body["message"].endswith("修改，请刷新后重试")
    assert body["message_en"].startswith("This customer was changed by 测试 sup_east at ")
    assert body["changed_by"] == "测试 sup_east"
    assert (await _customer(world, world.east_customer)).address == "第一位的地址"
    client.session.cookie_jar.update_cookies({"hotline_lang": "en"})
    english = await _send(client, "PATCH", path, csrf, {"address": "x", "version": old})
    assert english.status == 409
    assert (await english.json())["message"] == body["message_en"]


async def test_an_edit_without_a_version_is_428(client: TestClient[Any, Any], world: World) -> None:
    csrf = await login_ok(client, "agent_east")
    response = await _send(
        client, "PATCH", f"/api/customers/{world.east_customer}", csrf, {"city": "芜湖"}
    )
    assert response.status == 428
    body = await response.json()
    assert body["error_id"] == "version_required" and "If-Match" in body["message"]
    assert (await _customer(world, world.east_customer)).city == "合肥"


async def test_phone_numbers_are_normalised_on_save(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    _data, version = await _read(client, world.east_customer)
    response = await _send(
        client,
        "PATCH",
        f"/api/phones/{world.east_phone}",
        csrf,
        {"raw": " +86 139-0558-9999 ", "label": "mobile", "version": version},
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["phone"]["number"] == "139 0558 9999"  # typed by this user: shown in full
    async with world.db.transaction() as session:
        row = await session.get(PhoneNumber, world.east_phone)
    assert row is not None and row.e164 == "+8613905589999" and row.label == "mobile"
    bad = await _send(
        client, "POST", f"/api/customers/{world.east_customer}/phones", csrf, {"raw": "12"}
    )
    assert bad.status == 400 and (await bad.json())["field"] == "raw"
    added = await _send(
        client,
        "POST",
        f"/api/customers/{world.east_customer}/phones",
        csrf,
        {"raw": "0558-2123456", "label": "office"},
    )
    assert added.status == 201 and (await added.json())["phone"]["number"] == "0558-2123456"
    # The 360 now lists both; agents see them masked.
    data, _version = await _read(client, world.east_customer)
    assert [p["label"] for p in data["phones"]] == ["mobile", "office"]


async def test_a_number_of_another_customer_is_409_without_leaking_names(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    path = f"/api/customers/{world.east_customer}/phones"
    hidden = await _send(client, "POST", path, csrf, {"raw": "13801012345"})  # 华北's number
    assert hidden.status == 409
    body = await hidden.json()
    assert body["error_id"] == "phone_belongs_to_other_customer"
    assert body["customers"] == [] and body["hidden_customers"] == 1
    assert "北京燕山" not in await hidden.text() and "无权查看" in body["message"]
    confirmed = await _send(
        client, "POST", path, csrf, {"raw": "13801012345", "confirm_duplicate": True}
    )
    assert confirmed.status == 201

    admin = await login_ok(client, "admin1")
    made = await _send(
        client,
        "POST",
        "/api/customers",
        admin,
        {"name": "芜湖长江客运公司", "phone": "13955320000", "region": "华东"},
    )
    assert made.status in (200, 201), await made.text()
    csrf = await login_ok(client, "agent_east")
    _data, version = await _read(client, world.east_customer)
    visible = await _send(
        client,
        "PATCH",
        f"/api/phones/{world.east_phone}",
        csrf,
        {"raw": "139 5532 0000", "version": version},
    )
    assert visible.status == 409
    body = await visible.json()
    assert [c["name"] for c in body["customers"]] == ["芜湖长江客运公司"]
    assert "芜湖长江客运公司" in body["message"] and "139 5532 0000" in body["message"]
    async with world.db.transaction() as session:
        row = await session.get(PhoneNumber, world.east_phone)
    assert row is not None and row.e164 == "+8613905581234"  # unchanged


async def test_contacts_and_vehicles_are_added_edited_and_deleted(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    made = await _send(
        client,
        "POST",
        f"/api/customers/{world.east_customer}/contacts",
        csrf,
        {"name": "王强", "title": "车队长", "phones": ["13705580001"]},
    )
    assert made.status == 201, await made.text()
    contact = await made.json()
    contact_id, version = contact["contact"]["id"], contact["version"]
    got = await client.get(f"/api/contacts/{contact_id}")
    assert got.headers["ETag"] == f'"{version}"'
    assert (await got.json())["contact"]["phones"][0]["masked"] is True
    changed = await _send(
        client, "PATCH", f"/api/contacts/{contact_id}", csrf, {"title": "经理", "version": version}
    )
    assert changed.status == 200 and (await changed.json())["contact"]["title"] == "经理"
    stale = await _send(
        client, "PATCH", f"/api/contacts/{contact_id}", csrf, {"title": "x", "version": version}
    )
    assert stale.status == 409
    assert (await stale.json())["message"].startswith("此联系人已被 测试 agent_east 于 ")
    phone = await _send(
        client, "POST", f"/api/contacts/{contact_id}/phones", csrf, {"raw": "13705580002"}
    )
    assert phone.status == 201
    assert (await phone.json())["owner"] == {"entity": "contact", "id": contact_id}

    car = await _send(
        client,
        "POST",
        f"/api/customers/{world.east_customer}/vehicles",
        csrf,
        {"vin": VIN.lower(), "plate": "皖A·12345", "model": "J6P"},
    )
    assert car.status == 201, await car.text()
    vehicle = await car.json()
    assert vehicle["vehicle"]["vin"] == VIN and vehicle["vehicle"]["plate"] == "皖A12345"
    vehicle_id = vehicle["vehicle"]["id"]
    bad = await _send(
        client,
        "PATCH",
        f"/api/vehicles/{vehicle_id}",
        csrf,
        {"purchase_date": "yesterday", "version": vehicle["version"]},
    )
    assert bad.status == 400 and (await bad.json())["field"] == "purchase_date"
    moved = await _send(
        client,
        "PATCH",
        f"/api/vehicles/{vehicle_id}",
        csrf,
        {"customer_id": world.north_customer, "version": vehicle["version"]},
    )
    assert moved.status == 400 and (await moved.json())["field"] == "customer_id"

    page = await (await client.get(f"/customers/{world.east_customer}", headers=HTML)).text()
    assert "王强" in page and "经理" in page and VIN in page
    assert (await _send(client, "DELETE", f"/api/vehicles/{vehicle_id}", csrf)).status == 200
    assert (await _send(client, "DELETE", f"/api/contacts/{contact_id}", csrf)).status == 200
    async with world.db.transaction() as session:
        assert (await session.get(Vehicle, vehicle_id)).deleted  # type: ignore[union-attr]
        assert (await session.get(Contact, contact_id)).deleted  # type: ignore[union-attr]
    page = await (await client.get(f"/customers/{world.east_customer}", headers=HTML)).text()
    assert "王强" in page  # still named in the change history, restorable from there
    assert 'id="contacts"' not in page and 'id="vehicles"' not in page


async def test_bad_input_is_400_naming_the_field_and_writes_nothing(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    _data, version = await _read(client, world.east_customer)
    path = f"/api/customers/{world.east_customer}"
    for body, field in (
        ({"vip_level": 12}, "vip_level"),
        ({"email": "x" * 300}, "email"),
        ({"name": ""}, "name"),
        ({"city": "芜湖", "phones": ["12"]}, "phones"),
    ):
        response = await _send(client, "PATCH", path, csrf, {**body, "version": version})
        assert response.status == 400, body
        assert (await response.json())["field"] == field
    unknown = await _send(client, "PATCH", path, csrf, {"shoe_size": 1, "version": version})
    assert unknown.status == 400 and (await unknown.json())["fields"] == ["shoe_size"]
    broken = await client.patch(path, data="{", headers={"X-CSRF-Token": csrf})
    assert broken.status == 400
    assert (await _customer(world, world.east_customer)).city == "合肥"
    async with world.db.transaction() as session:
        changes = (
            await session.scalars(
                select(ChangeRecord).where(ChangeRecord.entity_id == world.east_customer)
            )
        ).all()
    assert [c.action for c in changes if c.entity == "customer"] == ["create"]


async def test_out_of_scope_is_404_technicians_403_and_csrf_is_required(
    client: TestClient[Any, Any], world: World
) -> None:
    await login_ok(client, "agent_east")
    _data, version = await _read(client, world.east_customer)
    no_csrf = await _send(
        client, "PATCH", f"/api/customers/{world.east_customer}", None, {"version": version}
    )
    assert no_csrf.status == 403 and (await no_csrf.json())["error_id"] == "csrf_failed"
    for method, path in (
        ("POST", f"/api/customers/{world.east_customer}/phones"),
        ("DELETE", f"/api/phones/{world.east_phone}"),
        ("POST", "/api/history/1/restore"),
        ("POST", f"/api/customers/{world.east_customer}/merge"),
    ):
        response = await _send(client, method, path, None, {"raw": "13700000000"})
        assert response.status == 403, path

    north = await login_ok(client, "agent_north")
    for method, path in (
        ("PATCH", f"/api/customers/{world.east_customer}"),
        ("PATCH", f"/api/phones/{world.east_phone}"),
        ("POST", f"/api/customers/{world.east_customer}/contacts"),
        ("POST", f"/api/customers/{world.east_customer}/vehicles"),
    ):
        response = await _send(client, method, path, north, {"name": "x", "version": version})
        assert response.status == 404, path

    tech = await login_ok(client, "tech_east")
    response = await _send(
        client, "PATCH", f"/api/customers/{world.east_customer}", tech, {"version": version}
    )
    assert response.status == 403 and (await response.json())["error_id"] == "forbidden"
    page = await (await client.get(f"/customers/{world.east_customer}", headers=HTML)).text()
    assert 'id="edit-customer"' not in page and "恢复此版本" not in page
    async with world.db.transaction() as session:
        row = await session.get(PhoneNumber, world.east_phone)
    assert row is not None and row.e164 == "+8613905581234"


async def test_only_a_supervisor_moves_a_customer_to_another_region_or_owner(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    _data, version = await _read(client, world.east_customer)
    path = f"/api/customers/{world.east_customer}"
    match = {"If-Match": f'"{version}"'}
    for body in ({"region": "华北"}, {"owner_id": world.users["agent_east"]}, {"blocked": True}):
        refused = await _send(client, "PATCH", path, csrf, body, **match)
        assert refused.status == 403, body
    # The form sends the unchanged region along with a real edit: that is allowed.
    same = await _send(client, "PATCH", path, csrf, {"region": "华东", "city": "芜湖"}, **match)
    assert same.status == 200, await same.text()
    assert (await _customer(world, world.east_customer)).region == "华东"
    client.session.cookie_jar.clear()
    csrf = await login_ok(client, "sup_east")
    _data, version = await _read(client, world.east_customer)
    moved = await _send(
        client, "PATCH", path, csrf, {"region": "华北"}, **{"If-Match": f'"{version}"'}
    )
    assert moved.status == 200
    assert (await _customer(world, world.east_customer)).region == "华北"

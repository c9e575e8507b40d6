"""Users, phones and queues through the admin API: what an admin sets up a team with."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from desk_world import JSON, ORIGIN, PASSWORD, World, audit_rows, login, login_ok

from asterisk_conf.agents import load_agent_endpoints
from asterisk_conf.paths import pbx_paths
from asterisk_conf.render import load_queue_rows, render_files
from crm_core.history import list_history


async def _admin(client: TestClient[Any, Any]) -> dict[str, str]:
    token = await login_ok(client, "admin1")
    return {**JSON, "X-CSRF-Token": token, "Origin": ORIGIN}


async def _create_agent(client: TestClient[Any, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post(
        "/api/admin/users",
        headers=headers,
        json={
            "username": "liming",
            "display_name": "坐席 李明",
            "role": "agent",
            "region": "华东",
            "extension": "1010",
            "queues": [{"queue": "hotline", "penalty": 0}, {"queue": "vip", "penalty": 3}],
        },
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_admin_creates_an_agent_with_phone_and_queues(
    client: TestClient[Any, Any], world: World
) -> None:
    headers = await _admin(client)
    body = await _create_agent(client, headers)
    user = body["user"]
    assert user["extension"] == "1010" and user["phone_interface"] == "PJSIP/1010"
    assert user["queues"] == [{"queue": "hotline", "penalty": 0}, {"queue": "vip", "penalty": 3}]
    assert user["must_change_password"] is True
    assert len(body["password"]) >= 12 and len(body["sip_secret"]) >= 20
    assert body["pbx"]["status"] in ("not_running", "not_installed")
    # Shown once: reading the user again never returns a secret or its digest.
    again = await (await client.get(f"/api/admin/users/{user['id']}", headers=headers)).json()
    text = str(again)
    assert body["sip_secret"] not in text and body["password"] not in text
    assert "sip_digest" not in again["user"] and "password_hash" not in again["user"]
    actions = [h["action"] for h in again["history"]]
    assert actions == ["create", "extension", "queues"]
    assert {r.action for r in await audit_rows(world.db, "admin_user_create")} == {
        "admin_user_create"
    }


async def test_the_pbx_renders_the_new_phone_with_its_digest_and_queues(
    client: TestClient[Any, Any], world: World, tmp_path: Path
) -> None:
    headers = await _admin(client)
    body = await _create_agent(client, headers)
    settings = world.db.settings.replace(
        pbx_mode="production", pbx_root=str(tmp_path), ami_secret="a" * 24, sip_secret="b" * 24
    )
    agents = await load_agent_endpoints(settings)
    files = render_files(settings, pbx_paths(settings), agents, await load_queue_rows(settings))
    ha1 = f"1010:hotline:{body['sip_secret']}".encode()
    digest = hashlib.md5(ha1, usedforsecurity=False).hexdigest()
    assert f"password_digest = md5:{digest}" in files["pjsip.conf"]
    assert body["sip_secret"] not in files["pjsip.conf"]
    queues = files["queues.conf"]
    hotline = queues.split("[hotline]")[1].split("\n[")[0]
    vip = queues.split("[vip]")[1].split("\n[")[0]
    assert "member => PJSIP/1010,0,liming,PJSIP/1010" in hotline
    assert "member => PJSIP/1010,3,liming,PJSIP/1010" in vip


async def test_a_new_user_must_choose_a_password_before_anything_else(
    client: TestClient[Any, Any],
) -> None:
    headers = await _admin(client)
    body = await _create_agent(client, headers)
    client.session.cookie_jar.clear()
    response = await login(client, "liming", body["password"])
    assert response.status == 200
    token = (await response.json())["csrf_token"]
    user_headers = {**JSON, "X-CSRF-Token": token, "Origin": ORIGIN}
    blocked = await client.get("/api/customers/search?q=合肥", headers=user_headers)
    assert blocked.status == 403
    assert (await blocked.json())["error_id"] == "password_change_required"
    page = await client.get("/desktop", allow_redirects=False, headers={"Accept": "text/html"})
    assert page.status == 303 and page.headers["Location"] == "/account/password"
    weak = await client.post(
        "/api/account/password",
        headers=user_headers,
        json={"current_password": body["password"], "password": "liming2026"},
    )
    assert weak.status == 422 and "user name" in (await weak.json())["message"]
    ok = await client.post(
        "/api/account/password",
        headers=user_headers,
        json={"current_password": body["password"], "password": "Hefei-400-line"},
    )
    assert ok.status == 200
    assert (await client.get("/api/customers/search?q=合肥", headers=user_headers)).status == 200


async def test_bad_input_is_refused_with_the_field_named(
    client: TestClient[Any, Any], world: World
) -> None:
    headers = await _admin(client)
    await _create_agent(client, headers)
    cases = [
        ({"username": "liming", "display_name": "x"}, 409, "username"),
        ({"username": "Bad Name", "display_name": "x"}, 422, "username"),
        ({"username": "wang", "display_name": "x", "role": "boss"}, 422, "role"),
        ({"username": "wang", "display_name": "x", "office": "火星站"}, 422, "office"),
        (
            {"username": "wang", "display_name": "x", "ip_allowlist": "10.0.0.300"},
            422,
            "ip_allowlist",
        ),
        ({"username": "wang", "display_name": "x", "password": "short"}, 422, "password"),
        ({"username": "wang", "display_name": "x", "extension": "1010"}, 409, "extension"),
        ({"username": "wang2", "display_name": "x", "extension": "8000"}, 422, "extension"),
        ({"username": "wang3", "display_name": "x", "surname": "王"}, 422, "surname"),
    ]
    for payload, status, field in cases:
        response = await client.post("/api/admin/users", headers=headers, json=payload)
        body = await response.json()
        assert response.status == status, (payload, body)
        assert body.get("field") == field, (payload, body)
    for raw in ("not json", "[1, 2]"):
        response = await client.post(
            "/api/admin/users", headers={**headers, "Content-Type": "application/json"}, data=raw
        )
        assert response.status == 422
    queues = await client.put(
        "/api/admin/users/liming/queues", headers=headers, json={"queues": ["nosuch:1"]}
    )
    assert queues.status == 422 and "nosuch" in (await queues.json())["message"]
    no_csrf = await client.post(
        "/api/admin/users", headers={**JSON, "Origin": ORIGIN}, json={"username": "zz"}
    )
    assert no_csrf.status == 403


async def test_disable_logs_the_user_out_and_keeps_the_history(
    client: TestClient[Any, Any], world: World
) -> None:
    headers = await _admin(client)
    # The agent is logged in on another browser; disabling ends that session at once.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        url = client.make_url
        form = {"username": "agent_east", "password": PASSWORD}
        assert (await other.post(url("/api/login"), json=form)).status == 200
        assert (await other.get(url("/api/me"), headers=JSON)).status == 200
        response = await client.post("/api/admin/users/agent_east/disable", headers=headers)
        assert response.status == 200 and (await response.json())["user"]["active"] is False
        assert (await other.get(url("/api/me"), headers=JSON)).status == 401
        assert (await other.post(url("/api/login"), json=form)).status == 401
    history = await list_history(world.db, "user", world.users["agent_east"])
    assert [h.action for h in history] == ["disable"]
    enabled = await client.post("/api/admin/users/agent_east/enable", headers=headers)
    assert (await enabled.json())["user"]["active"] is True


async def test_the_last_admin_cannot_be_removed(client: TestClient[Any, Any]) -> None:
    headers = await _admin(client)
    own = await client.post("/api/admin/users/admin1/disable", headers=headers)
    assert own.status == 409
    demote = await client.patch(
        "/api/admin/users/admin1", headers=headers, json={"role": "supervisor"}
    )
    assert demote.status == 409 and "last active admin" in (await demote.json())["message"]


async def test_a_password_reset_forces_a_change_and_ends_sessions(
    client: TestClient[Any, Any],
) -> None:
    headers = await _admin(client)
    response = await client.post("/api/admin/users/agent_north/password", headers=headers, json={})
    body = await response.json()
    assert response.status == 200 and body["user"]["must_change_password"] is True
    client.session.cookie_jar.clear()
    assert (await login(client, "agent_north")).status == 401  # the old password is gone
    assert (await login(client, "agent_north", body["password"])).status == 200


async def test_a_users_own_ip_allowlist_applies_at_login(client: TestClient[Any, Any]) -> None:
    headers = await _admin(client)
    response = await client.patch(
        "/api/admin/users/agent_east", headers=headers, json={"ip_allowlist": "10.8.0.0/16"}
    )
    assert response.status == 200
    assert (await response.json())["user"]["ip_allowlist"] == "10.8.0.0/16"
    client.session.cookie_jar.clear()
    assert (await login(client, "agent_east", ip="192.168.1.5")).status == 403
    assert (await login(client, "agent_east", ip="10.8.4.4")).status == 200

"""API tokens (docs/api.md): bearer requests act as a principal the role and data-scope
checks already know, are audited, rate limited, and a token is shown once only."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from desk_world import JSON, ORIGIN, World, audit_rows, login_ok
from sqlalchemy import select, update

import agent_desktop.admin.tokens as tokens
from agent_desktop.admin.actor import Actor
from agent_desktop.cli import main
from agent_desktop.models import ApiToken
from crm_core.models import utcnow

ADMIN = Actor(None, "test", None, "cli")


async def _token(world: World, **values: Any) -> tuple[int, str]:
    row, token = await tokens.create_token(world.db, ADMIN, {"name": "t", **values})
    return int(row["id"]), token


def _bearer(token: str) -> dict[str, str]:
    return {**JSON, "Authorization": f"Bearer {token}"}


async def test_an_agent_service_token_is_refused_a_customer_outside_its_region(
    client: TestClient[Any, Any], world: World
) -> None:
    token_id, token = await _token(world, kind="service", role="agent", region="华东")
    own = await client.get(f"/api/customers/{world.east_customer}", headers=_bearer(token))
    assert own.status == 200, await own.text()
    other = await client.get(f"/api/customers/{world.north_customer}", headers=_bearer(token))
    # Object-level refusals answer as if the customer did not exist (docs/security.md).
    assert other.status == 404
    assert (await other.json())["error_id"] == "not_found"
    denied = await audit_rows(world.db, "access_denied")
    assert [(r.user_id, (r.detail or {}).get("token_id")) for r in denied] == [(None, token_id)]


async def test_a_personal_token_acts_as_its_user(
    client: TestClient[Any, Any], world: World
) -> None:
    token_id, token = await _token(world, user="agent_east")
    me = await client.get("/api/me", headers=_bearer(token))
    assert (await me.json())["user"]["username"] == "agent_east"
    other = await client.get(f"/api/customers/{world.north_customer}", headers=_bearer(token))
    assert other.status == 404
    denied = await audit_rows(world.db, "access_denied")
    assert denied[-1].user_id == world.users["agent_east"]
    assert (denied[-1].detail or {})["token_id"] == token_id
    admin_only = await client.get("/api/admin/tokens", headers=_bearer(token))
    assert admin_only.status == 403


async def test_a_bearer_write_needs_no_csrf_and_gets_no_cookie(
    client: TestClient[Any, Any], world: World
) -> None:
    _, token = await _token(world, user="agent_east")
    path = f"/api/customers/{world.east_customer}"
    etag = (await client.get(path, headers=_bearer(token))).headers["ETag"]
    response = await client.patch(
        path, json={"city": "芜湖"}, headers={**_bearer(token), "If-Match": etag}
    )
    assert response.status == 200, await response.text()
    assert "Set-Cookie" not in response.headers
    _, service = await _token(world, kind="service", role="agent", region="华东")
    refused = await client.patch(
        f"/api/customers/{world.east_customer}", json={"city": "合肥"}, headers=_bearer(service)
    )
    assert refused.status == 403
    assert (await refused.json())["error_id"] == "token_read_only"


async def test_revoked_and_expired_tokens_get_401(
    client: TestClient[Any, Any], world: World
) -> None:
    revoked_id, revoked = await _token(world, user="agent_east")
    await tokens.revoke_token(world.db, ADMIN, revoked_id)
    expired_id, expired = await _token(world, user="agent_east", expires_in_days=1)
    async with world.db.transaction() as session:
        past = utcnow() - timedelta(minutes=1)
        await session.execute(
            update(ApiToken).where(ApiToken.id == expired_id).values(expires_at=past)
        )
    for token, reason in ((revoked, "revoked_token"), (expired, "expired_token")):
        response = await client.get("/api/me", headers=_bearer(token))
        assert response.status == 401
        body = await response.json()
        assert (body["error_id"], body["reason"]) == ("not_authenticated", reason)
    refused = await audit_rows(world.db, "token_refused")
    assert [(r.detail or {})["reason"] for r in refused] == ["revoked_token", "expired_token"]


async def test_a_malformed_authorization_header_gets_a_clear_401(
    client: TestClient[Any, Any], world: World
) -> None:
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "token abcdefghijkl"):
        response = await client.get("/api/me", headers={**JSON, "Authorization": header})
        assert response.status == 401, header
        body = await response.json()
        assert body["error_id"] == "not_authenticated"
        assert body["reason"] == "malformed_authorization"
        assert "Authorization: Bearer <token>" in body["message"]
    unknown = await client.get("/api/me", headers=_bearer("hlt_" + "x" * 43))
    assert (await unknown.json())["reason"] == "unknown_token"


async def test_rate_limit_answers_429_with_retry_after(
    client: TestClient[Any, Any], world: World
) -> None:
    _, token = await _token(world, user="agent_east", rate_per_minute=2)
    statuses = [(await client.get("/api/me", headers=_bearer(token))).status for _ in range(2)]
    assert statuses == [200, 200]
    limited = await client.get("/api/me", headers=_bearer(token))
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert (await limited.json())["error_id"] == "rate_limited"
    statuses = [(r.detail or {})["status"] for r in await audit_rows(world.db, "api_request")]
    assert statuses == [200, 200, 429]


async def test_every_token_request_is_audited_and_last_use_recorded(
    client: TestClient[Any, Any], world: World
) -> None:
    token_id, token = await _token(world, user="agent_east")
    await client.get(f"/api/customers/{world.east_customer}", headers=_bearer(token))
    await client.get(f"/api/customers/{world.north_customer}", headers=_bearer(token))
    rows = await audit_rows(world.db, "api_request")
    assert [((r.detail or {})["status"], r.user_id, r.object_id) for r in rows] == [
        (200, world.users["agent_east"], str(token_id)),
        (404, world.users["agent_east"], str(token_id)),
    ]
    listed = {t["id"]: t for t in await tokens.list_tokens(world.db)}
    assert listed[token_id]["last_used_at"] is not None


async def test_the_token_is_shown_once_and_stored_hashed(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "admin1")
    headers = {**JSON, "X-CSRF-Token": csrf, "Origin": ORIGIN}
    created = await client.post(
        "/api/admin/tokens",
        json={"name": "ERP", "kind": "service", "role": "supervisor", "region": "华北"},
        headers=headers,
    )
    assert created.status == 201, await created.text()
    body = await created.json()
    token = body["token"]
    assert token.startswith("hlt_") and len(token) > 40
    listed = await client.get("/api/admin/tokens", headers=headers)
    assert token not in await listed.text()
    assert token[:12] in await listed.text()  # the prefix, to tell tokens apart
    async with world.db.transaction() as session:
        row = (await session.scalars(select(ApiToken))).one()
        assert token not in {row.token_hash, row.prefix}
    assert "token_hash" not in str([r.after for r in await _changes(world)])
    revoke = await client.post(
        f"/api/admin/tokens/{body['api_token']['id']}/revoke", headers=headers, json={}
    )
    assert (await revoke.json())["api_token"]["status"] == "revoked"
    assert len(await audit_rows(world.db, "admin_api_token_create")) == 1
    assert len(await audit_rows(world.db, "admin_api_token_revoke")) == 1
    page = await client.get("/admin/tokens", headers={"Accept": "text/html"})
    assert page.status == 200 and "API 令牌" in await page.text()


async def _changes(world: World) -> list[Any]:
    from crm_core.models import ChangeRecord

    async with world.db.transaction() as session:
        return list((await session.scalars(select(ChangeRecord))).all())


async def test_bad_token_requests_are_refused_with_clear_errors(world: World) -> None:
    from crm_core.errors import ValidationError

    for values in (
        {"kind": "service"},
        {"kind": "personal"},
        {"kind": "personal", "user": "agent_east", "role": "admin"},
        {"kind": "robot", "user": "agent_east"},
        {"user": "agent_east", "rate_per_minute": 0},
    ):
        with pytest.raises(ValidationError):
            await _token(world, **values)


async def test_hotline_tokens_add_list_revoke(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", world.db.settings.database_url)
    monkeypatch.setenv("HOTLINE_PBX_INSTANCE", "pytest-nopbx")

    async def run(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, list(args))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await run("tokens", "add", "ERP sync", "--user", "sup_east")
    assert code == 0 and "token (shown once" in out
    token = out.split("write it down now): ")[1].strip()
    code, out, _ = await run("tokens", "list", "--json")
    row = json.loads(out.splitlines()[0])
    assert token not in out and row["username"] == "sup_east" and row["status"] == "active"
    code, out, _ = await run("tokens", "revoke", str(row["id"]))
    assert code == 0 and "status=revoked" in out
    code, _, err = await run("tokens", "add", "bad", "--kind", "service")
    assert code != 0 and "role" in err

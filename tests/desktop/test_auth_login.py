"""Login, logout, session expiry, the three-strikes lock and the per-IP throttle."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import JSON, PASSWORD, World, login, login_ok
from sqlalchemy import select, update

from agent_desktop.common.sessions import COOKIE
from agent_desktop.models import LoginLock, LoginRecord, WebSession
from crm_core.models import utcnow


async def history(world: World, username: str) -> list[LoginRecord]:
    async with world.db.transaction() as session:
        rows = await session.scalars(
            select(LoginRecord).where(LoginRecord.username == username).order_by(LoginRecord.id)
        )
        return list(rows.all())


async def test_login_sets_a_hardened_cookie_and_stores_only_a_hash(
    client: TestClient[Any, Any], world: World
) -> None:
    response = await login(client, "agent_east")
    assert response.status == 200
    body = await response.json()
    assert body["user"]["username"] == "agent_east" and body["user"]["region"] == "华东"
    assert len(body["csrf_token"]) >= 40
    cookie_header = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie_header and "SameSite=Lax" in cookie_header
    assert "Secure" not in cookie_header  # plain http here
    token = response.cookies[COOKIE].value
    async with world.db.transaction() as session:
        stored = (await session.scalars(select(WebSession.token_hash))).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    me = await client.get("/api/me", headers=JSON)
    assert (await me.json())["user"]["username"] == "agent_east"
    [row] = await history(world, "agent_east")
    assert row.result == "ok" and row.ip == "127.0.0.1" and row.logout_at is None


async def test_cookie_is_secure_behind_tls(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/api/login",
        json={"username": "agent_east", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert response.status == 200
    assert "Secure" in response.headers["Set-Cookie"]


async def test_bad_password_and_unknown_user_look_the_same(
    client: TestClient[Any, Any], world: World
) -> None:
    wrong = await login(client, "agent_east", "not-the-password")
    unknown = await login(client, "nobody", "not-the-password")
    assert wrong.status == unknown.status == 401
    error_ids = {(await wrong.json())["error_id"], (await unknown.json())["error_id"]}
    assert error_ids == {"bad_credentials"}
    assert [r.result for r in await history(world, "agent_east")] == ["bad_password"]
    assert [r.result for r in await history(world, "nobody")] == ["unknown_user"]
    assert (await client.get("/api/me", headers=JSON)).status == 401


async def test_login_validates_its_input(client: TestClient[Any, Any]) -> None:
    missing = await client.post("/api/login", json={"username": "agent_east"})
    assert missing.status == 422 and (await missing.json())["field"] == "password"
    as_form = await client.post("/api/login", data={"username": "a", "password": "b"})
    assert as_form.status == 422  # JSON only: a cross-site form cannot log anyone in
    broken = await client.post("/api/login", data="{", headers={"Content-Type": "application/json"})
    assert broken.status == 422


async def test_three_wrong_passwords_lock_the_account(
    client: TestClient[Any, Any], world: World
) -> None:
    from desk_world import audit_rows

    statuses = [(await login(client, "agent_east", "wrong-password")).status for _ in range(3)]
    assert statuses == [401, 401, 423]
    refused = await login(client, "agent_east")  # the right password no longer helps
    assert refused.status == 423
    body = await refused.json()
    assert body["error_id"] == "account_locked" and 1 <= body["minutes"] <= 15
    assert [r.result for r in await history(world, "agent_east")] == [
        "bad_password",
        "bad_password",
        "bad_password",
        "locked",
    ]
    [locked] = await audit_rows(world.db, "account_locked")
    assert locked.object_id == str(world.users["agent_east"])
    # Other users are not affected.
    assert (await login(client, "agent_north")).status == 200


async def test_the_lock_ends_after_lockout_minutes(
    client: TestClient[Any, Any], world: World
) -> None:
    for _ in range(3):
        await login(client, "agent_east", "wrong-password")
    assert (await login(client, "agent_east")).status == 423
    async with world.db.transaction() as session:
        await session.execute(
            update(LoginLock).values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert (await login(client, "agent_east")).status == 200
    # A success resets the count: two more failures do not lock.
    for _ in range(2):
        assert (await login(client, "agent_east", "wrong-password")).status == 401
    assert (await login(client, "agent_east")).status == 200


async def test_an_attacker_cannot_lock_a_user_out_of_their_own_desk(
    client: TestClient[Any, Any], world: World
) -> None:
    desk, attacker = "10.1.2.3", "203.0.113.66"
    await login_ok(client, "agent_east", ip=desk)  # the desk becomes a known address
    client.session.cookie_jar.clear()
    for _ in range(3):
        await login(client, "agent_east", "guess-123456", ip=attacker)
    assert (await login(client, "agent_east", ip=attacker)).status == 423
    # From a new address the account is locked too...
    assert (await login(client, "agent_east", ip="198.51.100.7")).status == 423
    # ...but the agent at their usual desk still gets in.
    assert (await login(client, "agent_east", ip=desk)).status == 200


async def test_per_ip_throttle_stops_spraying_without_locking_anyone_for_good(
    client: TestClient[Any, Any], world: World
) -> None:
    limit = world.db.settings.ip_throttle_failures
    attacker = "203.0.113.99"
    for n in range(limit):
        response = await login(client, f"guess{n}", "password-guess", ip=attacker)
        assert response.status == 401
    throttled = await login(client, "agent_north", "password-guess", ip=attacker)
    assert throttled.status == 429
    assert (await throttled.json())["error_id"] == "too_many_attempts"
    # Throttled attempts never reach the password check, so they cannot lock agent_north.
    for _ in range(5):
        assert (await login(client, "agent_north", "password-guess", ip=attacker)).status == 429
    async with world.db.transaction() as session:
        locks = (await session.scalars(select(LoginLock))).all()
    assert locks == []
    assert (await login(client, "agent_north", ip="10.9.9.9")).status == 200
    # The throttle is a sliding window: once the failures age out, the address may try again.
    async with world.db.transaction() as session:
        await session.execute(
            update(LoginRecord)
            .where(LoginRecord.ip == attacker)
            .values(at=utcnow() - timedelta(minutes=world.db.settings.ip_throttle_minutes + 1))
        )
    assert (await login(client, "agent_north", ip=attacker)).status == 200


async def test_logout_ends_the_session_and_records_the_time(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    old_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    response = await client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    assert response.status == 200
    assert (await client.get("/api/me", headers=JSON)).status == 401
    # The old token is dead on the server, not just forgotten by the browser.
    replay = await client.get("/api/me", headers=JSON, cookies={COOKIE: old_cookie})
    assert replay.status == 401
    [row] = await history(world, "agent_east")
    assert row.logout_at is not None and row.logout_reason == "logout"


async def test_idle_session_expires(client: TestClient[Any, Any], world: World) -> None:
    await login_ok(client, "agent_east")
    idle = world.db.settings.session_idle_minutes
    async with world.db.transaction() as session:
        await session.execute(
            update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=idle + 1))
        )
    assert (await client.get("/api/me", headers=JSON)).status == 401
    [row] = await history(world, "agent_east")
    assert row.logout_reason == "expired"
    async with world.db.transaction() as session:
        assert (await session.scalars(select(WebSession))).all() == []


async def test_a_new_login_replaces_the_old_session(
    client: TestClient[Any, Any], world: World
) -> None:
    await login_ok(client, "agent_east")
    await login_ok(client, "agent_east")
    async with world.db.transaction() as session:
        assert len((await session.scalars(select(WebSession))).all()) == 1
    first, second = await history(world, "agent_east")
    assert first.logout_reason == "replaced" and second.logout_at is None


async def test_disabled_user_cannot_log_in_and_loses_the_session(
    client: TestClient[Any, Any], world: World
) -> None:
    from crm_core.models import User

    await login_ok(client, "agent_east")
    async with world.db.transaction() as session:
        await session.execute(
            update(User).where(User.id == world.users["agent_east"]).values(active=False)
        )
    assert (await client.get("/api/me", headers=JSON)).status == 401
    assert (await login(client, "agent_east")).status == 401

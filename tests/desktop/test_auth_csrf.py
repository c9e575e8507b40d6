"""CSRF: every form and JSON write of a session needs its token; foreign origins are refused."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import JSON, ORIGIN, login_ok

from agent_desktop.auth.csrf import LOGIN_COOKIE


async def test_json_write_without_or_with_a_wrong_token_is_refused(
    client: TestClient[Any, Any],
) -> None:
    csrf = await login_ok(client, "agent_east")
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": csrf[:-1] + "x"}):
        response = await client.post("/api/logout", headers={**JSON, **headers})
        assert response.status == 403
        assert (await response.json())["error_id"] == "csrf_failed"
    assert (await client.get("/api/me", headers=JSON)).status == 200  # still logged in
    ok = await client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    assert ok.status == 200


async def test_form_post_needs_the_csrf_field(client: TestClient[Any, Any]) -> None:
    csrf = await login_ok(client, "agent_east")
    refused = await client.post("/logout", data={}, allow_redirects=False)
    assert refused.status == 403
    accepted = await client.post("/logout", data={"_csrf": csrf}, allow_redirects=False)
    assert accepted.status == 303 and accepted.headers["Location"] == "/login"


async def test_foreign_origin_is_refused_even_with_the_token(
    client: TestClient[Any, Any],
) -> None:
    csrf = await login_ok(client, "agent_east")
    response = await client.post(
        "/api/logout", headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    )
    assert response.status == 403
    assert (await response.json())["error_id"] == "origin_refused"
    same = await client.post("/api/logout", headers={"X-CSRF-Token": csrf, "Origin": ORIGIN})
    assert same.status == 200


async def test_login_form_uses_a_double_submit_token(client: TestClient[Any, Any]) -> None:
    page = await client.get("/login")
    assert page.status == 200
    token = page.cookies[LOGIN_COOKIE].value
    assert f'value="{token}"' in await page.text()
    form = {"username": "agent_east", "password": "correct-horse-9"}
    forged = await client.post("/login", data={**form, "_csrf": "x" * 43}, allow_redirects=False)
    assert forged.status == 403 and 'data-error-id="csrf_failed"' in await forged.text()
    ok = await client.post(
        "/login",
        data={**form, "_csrf": token, "next": "/customers/search"},
        allow_redirects=False,
    )
    assert ok.status == 303 and ok.headers["Location"] == "/customers/search"


async def test_login_form_never_redirects_off_site(client: TestClient[Any, Any]) -> None:
    page = await client.get("/login")
    token = page.cookies[LOGIN_COOKIE].value
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        ok = await client.post(
            "/login",
            data={
                "username": "agent_east",
                "password": "correct-horse-9",
                "_csrf": token,
                "next": target,
            },
            allow_redirects=False,
        )
        assert ok.status == 303 and ok.headers["Location"] == "/desktop"

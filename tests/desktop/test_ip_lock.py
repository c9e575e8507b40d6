"""The seed's IP lock: global and per-role allowlists, at login and on every request; and
which client address is believed behind a proxy."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request
from desk_world import JSON, World, audit_rows, login, login_ok

from agent_desktop.common.ipaccess import allowed_origins, client_ip, ip_allowed
from agent_desktop.models import LoginRecord
from agent_desktop.server import build_app
from crm_core.db import Database
from crm_core.settings import Settings, SettingsError, load_settings


async def _client(world: World, aiohttp_client: Any, **changes: str) -> TestClient[Any, Any]:
    settings = world.db.settings.replace(**changes)
    client: TestClient[Any, Any] = await aiohttp_client(build_app(Database.open(settings)))
    return client


async def test_role_allowlist_refuses_admin_logins_from_elsewhere(
    world: World, aiohttp_client: Any
) -> None:
    from sqlalchemy import select

    client = await _client(world, aiohttp_client, ip_allowlist_admin="10.20.0.0/16")
    refused = await login(client, "admin1", ip="192.0.2.10")
    assert refused.status == 403 and (await refused.json())["error_id"] == "ip_not_allowed"
    assert (await login(client, "admin1", ip="10.20.3.4")).status == 200
    client.session.cookie_jar.clear()
    assert (await login(client, "agent_east", ip="192.0.2.10")).status == 200  # other roles
    async with world.db.transaction() as session:
        results = (await session.scalars(select(LoginRecord.result).order_by(LoginRecord.id))).all()
    assert list(results) == ["ip_refused", "ok", "ok"]


async def test_global_allowlist_is_checked_before_anything_else(
    world: World, aiohttp_client: Any
) -> None:
    client = await _client(world, aiohttp_client, ip_allowlist="10.0.0.0/8")
    refused = await login(client, "nobody", "whatever-pass", ip="198.51.100.1")
    assert refused.status == 403


async def test_allowlist_is_enforced_on_every_request(world: World, aiohttp_client: Any) -> None:
    client = await _client(world, aiohttp_client, ip_allowlist_agent="10.0.0.0/8")
    await login_ok(client, "agent_east", ip="10.1.1.1")
    ok = await client.get("/api/me", headers={**JSON, "X-Forwarded-For": "10.1.1.1"})
    assert ok.status == 200
    moved = await client.get("/api/me", headers={**JSON, "X-Forwarded-For": "192.0.2.99"})
    assert moved.status == 403 and (await moved.json())["error_id"] == "ip_not_allowed"
    [row] = await audit_rows(world.db, "ip_refused")
    assert row.ip == "192.0.2.99" and row.user_id == world.users["agent_east"]


def _request(peer: str, forwarded: str | None) -> Any:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("GET", "/", headers=headers)
    request._transport_peername = (peer, 1234)  # what request.remote reads
    return request


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "expected"),
    [
        ("", "192.0.2.1", "10.0.0.1", "192.0.2.1"),  # untrusted peer: the header is ignored
        ("192.0.2.1", "192.0.2.1", "10.0.0.1", "10.0.0.1"),
        ("192.0.2.1", "192.0.2.1", "6.6.6.6, 10.0.0.1", "10.0.0.1"),  # spoofed left part
        ("192.0.2.0/24", "192.0.2.1", "10.0.0.1, 192.0.2.7", "10.0.0.1"),  # two proxies
        ("192.0.2.1", "192.0.2.1", "not-an-ip", "192.0.2.1"),
    ],
)
def test_client_ip_believes_only_trusted_proxies(
    proxies: str, peer: str, forwarded: str, expected: str
) -> None:
    settings = Settings(trusted_proxies=proxies)
    assert client_ip(_request(peer, forwarded), settings) == expected


def test_allowlists_combine() -> None:
    settings = Settings(ip_allowlist="10.0.0.0/8", ip_allowlist_admin="10.9.0.0/16")
    assert ip_allowed(settings, "10.1.2.3", "agent")
    assert not ip_allowed(settings, "10.1.2.3", "admin")
    assert ip_allowed(settings, "10.9.2.3", "admin")
    assert not ip_allowed(settings, "192.0.2.1", "agent")
    assert ip_allowed(Settings(), "203.0.113.5", "admin")  # empty lists admit everyone
    assert not ip_allowed(settings, "garbage", None)


def test_allowed_origins_default_and_configured() -> None:
    assert "http://127.0.0.1:8080" in allowed_origins(Settings())
    assert "http://localhost:8080" in allowed_origins(Settings())
    custom = Settings(allowed_origins="https://hotline.example.com, https://b.example:8443")
    assert allowed_origins(custom) == {"https://hotline.example.com", "https://b.example:8443"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("HOTLINE_LOCKOUT_MINUTES", "0"),
        ("HOTLINE_LOCKOUT_FAILURES", "-1"),
        ("HOTLINE_IP_ALLOWLIST", "10.0.0.0/33"),
        ("HOTLINE_TRUSTED_PROXIES", "proxy.local"),
        ("HOTLINE_ALLOWED_ORIGINS", "hotline.example.com"),
        ("HOTLINE_ALLOWED_ORIGINS", "https://hotline.example.com/desk"),
        ("HOTLINE_PHONE_UNMASKED_ROLES", "boss"),
        ("HOTLINE_DEFAULT_LOCALE", "fr"),
    ],
)
def test_bad_security_settings_are_refused_with_the_key_named(key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=key.removeprefix("HOTLINE_").lower()):
        load_settings(environ={key: value})


def test_security_settings_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "HOTLINE_LOCKOUT_MINUTES": "30",
            "HOTLINE_IP_ALLOWLIST_ADMIN": "10.0.0.0/8, 192.168.1.20",
            "HOTLINE_PHONE_UNMASKED_ROLES": "supervisor,admin",
        }
    )
    assert settings.lockout_minutes == 30 and settings.lockout_failures == 3
    assert ip_allowed(settings, "192.168.1.20", "admin")

"""In-process app fixtures for the login/access tests: the real app (every feature) on the
per-test database, with demo-like users and one customer in each of two regions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from agent_desktop.server import build_app
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.models import AuditEntry
from crm_core.settings import Settings
from crm_core.users import create_user

PASSWORD = "correct-horse-9"
ORIGIN = "http://127.0.0.1:8080"  # the default allowed origin (http_host/http_port)
JSON = {"Accept": "application/json"}

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@dataclass
class World:
    db: Database
    users: dict[str, int]
    east_customer: int
    north_customer: int
    east_phone: int
    north_phone: int


@pytest.fixture
def desk_settings(settings: Settings) -> Settings:
    # The test client talks from 127.0.0.1; trusting it as a proxy lets a test pick its
    # client address with X-Forwarded-For.
    return settings.replace(trusted_proxies="127.0.0.1")


async def make_world(db: Database) -> World:
    users = {}
    for username, role, region in (
        ("agent_east", "agent", "华东"),
        ("agent_north", "agent", "华北"),
        ("sup_east", "supervisor", "华东"),
        ("tech_east", "technician", "华东"),
        ("admin1", "admin", None),
    ):
        row = await create_user(
            db,
            {
                "username": username,
                "display_name": f"测试 {username}",
                "role": role,
                "region": region,
                "office": "400热线",
            },
            password=PASSWORD,
        )
        users[username] = row.id
    service = CustomerService(db)
    east = await service.create(
        {"name": "合肥江淮运输有限公司", "region": "华东", "city": "合肥"}, ["13905581234"]
    )
    north = await service.create(
        {"name": "北京燕山物流有限公司", "region": "华北", "city": "北京"}, ["13801012345"]
    )
    async with db.transaction() as session:
        from crm_core.models import PhoneNumber

        rows = await session.execute(select(PhoneNumber.customer_id, PhoneNumber.id))
        phones = {customer_id: phone_id for customer_id, phone_id in rows}
    return World(db, users, east.id, north.id, phones[east.id], phones[north.id])


@pytest.fixture
async def world(db: Database, desk_settings: Settings) -> AsyncIterator[World]:
    # `db` gives the fresh (on PostgreSQL: truncated) database; the app gets its own engine
    # with the desk settings, and closes it on cleanup.
    app_db = Database.open(desk_settings)
    yield await make_world(app_db)
    await app_db.close()


@pytest.fixture
async def client(world: World, aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    app = build_app(Database.open(world.db.settings))
    return await aiohttp_client(app)


async def login(
    client: TestClient[Any, Any], username: str, password: str = PASSWORD, ip: str | None = None
) -> Any:
    headers = {"X-Forwarded-For": ip} if ip else {}
    return await client.post(
        "/api/login", json={"username": username, "password": password}, headers=headers
    )


async def login_ok(client: TestClient[Any, Any], username: str, ip: str | None = None) -> str:
    response = await login(client, username, ip=ip)
    assert response.status == 200, await response.text()
    token: str = (await response.json())["csrf_token"]
    return token


async def audit_rows(db: Database, action: str) -> list[AuditEntry]:
    async with db.transaction() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return list(rows.all())

"""The real app (every feature) on the per-test database, with users in two regions, one
customer in each, and one ingested recording of a call with each customer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from rec_audio import write_wav

from agent_desktop.server import build_app
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.settings import Settings
from crm_core.users import create_user
from recordings.ingest import RecordingIngest
from recordings.meta import CallMeta
from recordings.storage import Storage

PASSWORD = "correct-horse-9"
AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@dataclass
class RecWorld:
    db: Database
    users: dict[str, int]
    customers: dict[str, int]
    recordings: dict[str, int]


async def ingest_call(
    db: Database, settings: Settings, tmp: Path, name: str, customer: int | None,
    agent: int | None, seconds: float = 4.0, queue: str = "hotline",
    ended: datetime | None = None, call_id: int | None = None,
) -> int:  # fmt: skip
    """Ingest a recording as the call log's CallRecordingFinished of a call with no request
    yet would; a request link reaches it only the production way (request_links)."""
    path = write_wav(tmp / "spool" / f"20261125-0100{len(name):02d}-in-{name}.wav", seconds)
    meta = CallMeta(
        source=path, server="main", linkedid=name, call_id=call_id, customer_id=customer,
        agent_id=agent, queue=queue, service_request_id=None, direction="inbound",
        ended_at=ended or datetime(2026, 11, 25, 1, 0, tzinfo=UTC), talk_seconds=seconds,
        from_call_log=True,
    )  # fmt: skip
    ingest = RecordingIngest(db, Storage(Path(settings.recordings_dir)), settle_seconds=0.1)
    row = await ingest.ingest(meta)
    assert row is not None and row.state == "complete", row and row.error
    return row.id


@pytest.fixture
async def rec_world(db: Database, settings: Settings, tmp_path: Path) -> AsyncIterator[RecWorld]:
    users = {}
    for username, role, region in (
        ("agent_east", "agent", "华东"),
        ("agent_east2", "agent", "华东"),
        ("agent_north", "agent", "华北"),
        ("sup_east", "supervisor", "华东"),
        ("sup_north", "supervisor", "华北"),
        ("tech_east", "technician", "华东"),
        ("admin1", "admin", None),
    ):
        row = await create_user(
            db,
            {"username": username, "display_name": f"测试 {username}", "role": role,
             "region": region, "office": "400热线"},
            password=PASSWORD,
        )  # fmt: skip
        users[username] = row.id
    service = CustomerService(db)
    east = await service.create({"name": "合肥江淮运输有限公司", "region": "华东"}, ["13905581234"])
    north = await service.create(
        {"name": "北京燕山物流有限公司", "region": "华北"}, ["13801012345"]
    )
    customers = {"east": east.id, "north": north.id}
    recordings = {
        "east": await ingest_call(db, settings, tmp_path, "1001.1", east.id, users["agent_east"]),
        "north": await ingest_call(
            db, settings, tmp_path, "1002.2", north.id, users["agent_north"]
        ),
    }
    yield RecWorld(db, users, customers, recordings)


@pytest.fixture
async def rec_client(rec_world: RecWorld, aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    return await aiohttp_client(build_app(Database.open(rec_world.db.settings)))


async def login_as(client: TestClient[Any, Any], username: str) -> str:
    response = await client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert response.status == 200, await response.text()
    token: str = (await response.json())["csrf_token"]
    return token

"""The real app (every feature) on a real loopback port, with the ticketing test world: a
request dispatched to a technician, and the mobile-page link taken from the SMS outbox."""

from __future__ import annotations

import io
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image
from sqlalchemy import func, select

from agent_desktop.server import build_app
from agent_desktop.services import Ticketing, ticketing_for
from crm_core.db import Database
from crm_core.models import AuditEntry
from crm_core.settings import Settings
from sms_gateway.models import SmsMessage
from ticketing.journal import Actor

sys.path.append(str(Path(__file__).resolve().parents[1] / "ticketing"))

from ticket_world import World, make_world

PASSWORD = "field-mobile-pw-9"
LINK = re.compile(r"(https?://\S+/m/([A-Za-z0-9_-]{32}))")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def jpeg(width: int = 2400, height: int = 1800, color: str = "orange") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG")
    return buffer.getvalue()


def signature_png() -> str:
    import base64

    image = Image.new("RGBA", (340, 180), (0, 0, 0, 0))
    for x in range(20, 300):
        image.putpixel((x, 90 + (x % 20)), (0, 0, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass
class Field:
    base: str
    app: web.Application
    http: aiohttp.ClientSession
    db: Database
    world: World

    @property
    def services(self) -> Ticketing:
        return ticketing_for(self.app)

    async def act(self, token: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(f"{self.base}/m/{token}/actions", json=body) as response:
            return response.status, await response.json()

    async def photo(self, token: str, data: bytes, action_id: str) -> tuple[int, Any]:
        headers = {"Content-Type": "image/jpeg", "X-Action-Id": action_id}
        url = f"{self.base}/m/{token}/photos"
        async with self.http.post(url, data=io.BytesIO(data), headers=headers) as response:
            return response.status, await response.json()

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str]:
        async with self.http.get(self.base + path, **kwargs) as response:
            return response.status, await response.text()

    async def login(self, username: str) -> str:
        self.http.cookie_jar.clear()
        async with self.http.post(
            self.base + "/api/login", json={"username": username, "password": PASSWORD}
        ) as response:
            assert response.status == 200, await response.text()
            token: str = (await response.json())["csrf_token"]
            return token

    async def approved_request(self) -> int:
        """A request approved to the technicians' office (合肥服务站), ready to dispatch."""
        services, world = self.services, self.world
        boss = Actor.user(world.supervisor)
        request = await services.requests.create(
            {
                "customer_id": world.customer_id,
                "vehicle_id": world.vehicle_id,
                "description": "刹车异响，仪表报警",
            },
            Actor.user(world.agent),
        )
        await services.requests.act(request.id, "submit", Actor.user(world.agent))
        await services.requests.act(request.id, "start_review", Actor.user(world.reviewer))
        await services.requests.act(request.id, "approve", boss, office="合肥服务站")
        return request.id

    async def dispatched(self) -> tuple[int, int, str]:
        """(request id, work order id, the technician's link token from the dispatch SMS)."""
        request_id = await self.approved_request()
        order = await self.services.orders.dispatch(
            request_id, self.world.tech, Actor.user(self.world.supervisor)
        )
        return request_id, order.id, (await self.links_to(self.world.tech_mobile))[-1]

    async def links_to(self, mobile: str) -> list[str]:
        async with self.db.transaction() as s:
            bodies = (
                await s.scalars(
                    select(SmsMessage.body).where(SmsMessage.to == mobile).order_by(SmsMessage.id)
                )
            ).all()
        return [m.group(2) for body in bodies if (m := LINK.search(body))]

    async def audits(self, action: str) -> list[AuditEntry]:
        async with self.db.transaction() as s:
            rows = await s.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
            return list(rows.all())

    async def count(self, model: Any) -> int:
        async with self.db.transaction() as s:
            return int(await s.scalar(select(func.count()).select_from(model)) or 0)


@asynccontextmanager
async def field_app(settings: Settings, **changes: Any) -> AsyncIterator[Field]:
    """The whole app serving on a free loopback port; links point at it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app_settings = settings.replace(
        http_port=port,
        public_base_url=base,
        field_link_secret="test-secret-0123456789",
        # Nothing listens there: the CTI side must not touch a PBX another run owns.
        ami_port=free_port(),
        fastagi_port=free_port(),
        **changes,
    )
    database = Database.open(app_settings)
    world = await make_world(database, password=PASSWORD)
    app = build_app(database)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        # unsafe: keep the session cookie of a bare IP address (127.0.0.1).
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            yield Field(base, app, http, database, world)
    finally:
        await server.close()

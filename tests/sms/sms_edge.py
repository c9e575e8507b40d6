"""The SMS web edge on a real loopback port, sending through the fake Twilio."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

from agent_desktop import services
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.server import error_middleware
from agent_desktop.sms import webhook as sms_webhook
from crm_core.db import Database
from crm_core.events import EventBus

# The ticketing tests' world builder (customer, staff, mobiles) serves these tests too.
sys.path.append(str(Path(__file__).resolve().parents[1] / "ticketing"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Edge:
    base_url: str
    app: web.Application
    http: aiohttp.ClientSession
    db: Database
    bus: EventBus

    @property
    def services(self) -> services.Ticketing:
        return self.app[services.TICKETING_KEY]


@asynccontextmanager
async def make_edge(
    db: Database, fake: FakeTwilio, public_base_url: str | None = None
) -> AsyncIterator[Edge]:
    """The SMS feature on its own app, sending through the fake Twilio, reachable by it.
    `public_base_url` None means the app's own loopback URL."""
    port = free_port()
    own = f"http://127.0.0.1:{port}"
    settings = db.settings.replace(
        sms_backend="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from=FROM_NUMBER,
        twilio_api_base_url=fake.base_url,
        public_base_url=own if public_base_url is None else public_base_url,
    )
    database = Database(settings, db.engine, db.sessions)
    app = web.Application(middlewares=[error_middleware])
    bus = EventBus()
    app[CONTEXT_KEY] = AppContext(settings, database, bus)
    sms_webhook.setup(app, app[CONTEXT_KEY])
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Edge(own, app, http, database, bus)
        await fake.drain()
    finally:
        await server.close()


@pytest.fixture(name="fake")
async def fake_fixture() -> AsyncIterator[FakeTwilio]:
    twilio = await FakeTwilio().start()
    yield twilio
    await twilio.stop()


@pytest.fixture(name="edge")
async def edge_fixture(db: Database, fake: FakeTwilio) -> AsyncIterator[Edge]:
    async with make_edge(db, fake) as running:
        yield running

"""Aliyun and Tencent Cloud callbacks at the edge: receipts settle the status, technicians'
replies drive the work order, and forged (wrong token), stale or replayed callbacks get 403
with an audit row and change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cn_providers import running
from fake_cn import SIGN_NAME, TEMPLATES_SETTING, FakeAliyun
from fake_tencent import APP_ID, FakeTencent
from sms_edge import free_port
from sqlalchemy import func, select
from test_sms_webhook import dispatched, eventually, order_state
from ticket_world import make_world

from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.server import error_middleware
from agent_desktop.services import TICKETING_KEY, Ticketing
from agent_desktop.sms import cn_webhooks
from agent_desktop.sms import webhook as sms_webhook
from crm_core.db import Database
from crm_core.events import EventBus
from crm_core.models import AuditEntry
from sms_gateway.models import SmsInbound, SmsMessage, SmsStatusEvent
from sms_gateway.outbox import enqueue

TOKEN = "cb-token-0123456789abcdef"


@dataclass
class CnEdge:
    base_url: str
    http: aiohttp.ClientSession
    db: Database
    app: web.Application
    fake: Any

    @property
    def services(self) -> Ticketing:
        return self.app[TICKETING_KEY]

    async def post(self, kind: str, payload: Any, token: str = TOKEN) -> tuple[int, Any]:
        provider = self.app[CONTEXT_KEY].settings.sms_backend
        url = f"{self.base_url}/sms/{provider}/{token}/{kind}"
        async with self.http.post(url, json=payload) as response:
            return response.status, await response.json()


@asynccontextmanager
async def cn_edge(db: Database, provider: str) -> AsyncIterator[CnEdge]:
    async with running(provider) as p:
        fake = p.fake
        settings = db.settings.replace(
            sms_backend=provider,
            sms_templates=TEMPLATES_SETTING,
            sms_callback_token=TOKEN,
            aliyun_access_key_id=getattr(fake, "key_id", "x"),
            aliyun_access_key_secret=getattr(fake, "secret", "x"),
            aliyun_sign_name=SIGN_NAME,
            aliyun_api_base_url=fake.base_url,
            tencent_secret_id=getattr(fake, "secret_id", "x"),
            tencent_secret_key=getattr(fake, "secret_key", "x"),
            tencent_sms_sdk_app_id=APP_ID,
            tencent_sign_name=SIGN_NAME,
            tencent_api_base_url=fake.base_url,
        )
        database = Database(settings, db.engine, db.sessions)
        app = web.Application(middlewares=[error_middleware])
        app[CONTEXT_KEY] = AppContext(settings, database, EventBus())
        sms_webhook.setup(app, app[CONTEXT_KEY])
        cn_webhooks.setup(app, app[CONTEXT_KEY])
        port = free_port()
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                yield CnEdge(f"http://127.0.0.1:{port}", http, database, app, fake)
        finally:
            await server.close()


async def audit_actions(db: Database) -> list[str]:
    async with db.transaction() as s:
        rows = await s.scalars(
            select(AuditEntry.action).where(AuditEntry.object_type == "sms_callback")
        )
        return list(rows.all())


async def sent_row(db: Database, sid: str) -> None:
    async with db.transaction() as s:
        await enqueue(s, "+8613800000001", "x", f"k-{sid}", template="command_help")
        row = await s.scalar(select(SmsMessage).where(SmsMessage.key == f"k-{sid}"))
        assert row is not None
        row.state, row.provider_sid, row.provider_status = "sent", sid, "accepted"


async def status_of(db: Database, sid: str) -> str | None:
    async with db.transaction() as s:
        return await s.scalar(
            select(SmsMessage.provider_status).where(SmsMessage.provider_sid == sid)
        )


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_receipt_settles_and_a_replay_is_refused(db: Database, provider: str) -> None:
    async with cn_edge(db, provider) as edge:
        await sent_row(edge.db, "SID-1")
        report = FakeAliyun.report("SID-1") if provider == "aliyun" else FakeTencent.report("SID-1")
        status, body = await edge.post("report", report)
        assert status == 200
        assert body == (
            {"code": 0, "msg": "成功"} if provider == "aliyun" else {"result": 0, "errmsg": "OK"}
        )
        assert await status_of(edge.db, "SID-1") == "delivered"
        status, body = await edge.post("report", report)
        assert status == 403 and body["error_id"] == "sms_callback_replayed"
        assert await audit_actions(edge.db) == ["sms_callback_replayed"]


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_forged_and_stale_callbacks_get_403_and_change_nothing(
    db: Database, provider: str
) -> None:
    async with cn_edge(db, provider) as edge:
        await sent_row(edge.db, "SID-2")
        fake = FakeAliyun if provider == "aliyun" else FakeTencent
        status, body = await edge.post("report", fake.report("SID-2"), token="guessed")
        assert status == 403 and body["error_id"] == "sms_signature_invalid"
        status, body = await edge.post("report", fake.report("SID-2", age=3600))
        assert status == 403 and body["error_id"] == "sms_callback_replayed"
        stale_reply = (
            FakeAliyun.uplink("+8613800000001", "JD", 1, age=3600)
            if provider == "aliyun"
            else FakeTencent.reply("+8613800000001", "JD", age=3600)
        )
        status, _ = await edge.post("inbound", stale_reply)
        assert status == 403
        status, body = await edge.post("report", {"no": "fields"})
        assert status == 422 and body["error_id"] == "sms_callback_malformed"
        assert await status_of(edge.db, "SID-2") == "accepted"
        async with edge.db.transaction() as s:
            assert await s.scalar(select(func.count()).select_from(SmsStatusEvent)) == 0
            assert await s.scalar(select(func.count()).select_from(SmsInbound)) == 0
        assert await audit_actions(edge.db) == [
            "sms_callback_forged",
            "sms_callback_replayed",
            "sms_callback_replayed",
        ]


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_the_field_loop_by_provider_sms(db: Database, provider: str) -> None:
    async with cn_edge(db, provider) as edge:
        world = await make_world(edge.db)
        _request_id, order_id = await dispatched(edge, world)  # type: ignore[arg-type]

        async def dispatch_sent() -> bool:
            return len(edge.fake.to(world.tech_mobile)) == 1

        await eventually(dispatch_sent, "the dispatch SMS reached the provider")
        assert edge.fake.to(world.tech_mobile)[0]["template"] == "T_DISPATCH"
        reply = (
            FakeAliyun.uplink(world.tech_mobile, "接单", 77)
            if provider == "aliyun"
            else FakeTencent.reply(world.tech_mobile, "接单")
        )
        status, _ = await edge.post("inbound", reply)
        assert status == 200
        assert await order_state(edge.db, order_id) == "accepted"
        status, body = await edge.post("inbound", reply)
        assert status == 403 and body["error_id"] == "sms_callback_replayed"

        async def confirmed() -> bool:
            return len(edge.fake.to(world.tech_mobile)) == 2

        await eventually(confirmed, "the confirmation reached the provider")
        assert edge.fake.to(world.tech_mobile)[1]["template"] == "T_OK"


async def test_aliyun_receipt_finds_a_message_recorded_by_its_out_id(db: Database) -> None:
    """After a reconciliation that saw only our OutId, the receipt's out_id finds the row."""
    async with cn_edge(db, "aliyun") as edge:
        await sent_row(edge.db, "hotline-42")
        status, _ = await edge.post("report", FakeAliyun.report("9001^0", out_id="hotline-42"))
        assert status == 200
        assert await status_of(edge.db, "hotline-42") == "delivered"

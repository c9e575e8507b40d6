"""The SMS edge end to end: dispatch SMS through the fake Twilio, signed technician replies
move the work order, callbacks settle on delivered, forged requests change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fake_twilio import FakeTwilio, send_inbound
from sms_edge import Edge, edge_fixture, fake_fixture, make_edge  # noqa: F401  (registers the fixtures)
from sqlalchemy import func, select
from ticket_world import World, make_world

from crm_core.db import Database
from crm_core.models import AuditEntry
from sms_gateway.models import SmsInbound, SmsMessage, SmsStatusEvent
from sms_gateway.signatures import public_url
from ticketing.journal import Actor
from ticketing.models import FollowUp, ServiceRequest, Transition, WorkOrder


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for background work (worker, callbacks); a generous bound, not a timing claim."""
    for _ in range(400):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def dispatched(edge: Edge, world: World) -> tuple[int, int]:
    services, boss = edge.services, Actor.user(world.supervisor)
    request = await services.requests.create(
        {
            "customer_id": world.customer_id,
            "vehicle_id": world.vehicle_id,
            "description": "刹车异响",
            "call_linkedid": "1795568000.3",
        },
        Actor.user(world.agent),
    )
    await services.requests.act(request.id, "submit", Actor.user(world.agent))
    await services.requests.act(request.id, "start_review", Actor.user(world.reviewer))
    await services.requests.act(request.id, "approve", boss, office="合肥服务站")
    order = await services.orders.dispatch(request.id, world.tech, boss)
    return request.id, order.id


async def order_state(db: Database, order_id: int) -> str:
    async with db.transaction() as s:
        order = await s.get(WorkOrder, order_id)
        assert order is not None
        return order.state


async def all_delivered(edge: Edge, fake: FakeTwilio) -> bool:
    await fake.drain()
    async with edge.db.transaction() as s:
        statuses = (await s.scalars(select(SmsMessage.provider_status))).all()
    return bool(statuses) and all(status == "delivered" for status in statuses)


async def test_the_field_loop_by_sms(edge: Edge, fake: FakeTwilio) -> None:
    world = await make_world(edge.db)
    request_id, order_id = await dispatched(edge, world)

    async def dispatch_sms_sent() -> bool:
        return len(fake.to(world.tech_mobile)) == 1

    await eventually(dispatch_sms_sent, "the dispatch SMS reached the provider")
    assert f"派工单{order_id}" in fake.to(world.tech_mobile)[0]["body"]

    inbound = edge.base_url + "/sms/inbound"
    reply = await send_inbound(edge.http, inbound, world.tech_mobile, "接单")
    assert reply.status == 200
    assert await order_state(edge.db, order_id) == "accepted"
    reply = await send_inbound(edge.http, inbound, world.tech_mobile, "完成 换了刹车片")
    assert reply.status == 200
    async with edge.db.transaction() as s:
        order = await s.get(WorkOrder, order_id)
        follow_up = await s.scalar(select(FollowUp).where(FollowUp.request_id == request_id))
    assert order is not None and order.state == "done" and order.resolution == "换了刹车片"
    assert follow_up is not None
    await edge.services.follow_ups.record_result(follow_up.id, 5, Actor.user(follow_up.assignee_id))
    async with edge.db.transaction() as s:
        request = await s.get(ServiceRequest, request_id)
        actors = (
            await s.scalars(select(Transition.actor).where(Transition.entity == "work_order"))
        ).all()
    assert request is not None and request.state == "closed"
    assert f"sms:{world.tech_mobile}" in actors

    async def replies_sent() -> bool:
        return len(fake.to(world.tech_mobile)) == 3

    await eventually(replies_sent, "both confirmations sent")
    assert "已接单" in fake.to(world.tech_mobile)[1]["body"]
    await eventually(lambda: all_delivered(edge, fake), "every SMS delivered")


async def test_duplicate_and_reordered_callbacks_end_delivered(
    db: Database, fake: FakeTwilio
) -> None:
    fake.duplicate_callbacks = fake.reorder_callbacks = True
    async with make_edge(db, fake) as edge:
        world = await make_world(edge.db)
        for _ in range(3):
            await dispatched(edge, world)
        await eventually(lambda: all_delivered(edge, fake), "every SMS delivered")
        async with edge.db.transaction() as s:
            events = await s.scalar(select(func.count()).select_from(SmsStatusEvent))
        # Six callbacks per message arrived; each (sid, status) is stored once.
        assert len(fake.callbacks_sent) == 18 and events == 9
        # A late "sent" after "delivered" changes nothing.
        message = fake.messages[0]
        status = await fake.callback(edge.base_url + "/sms/status", message, "sent")
        assert status == 204
        assert await all_delivered(edge, fake)


async def test_forged_or_tampered_webhooks_get_403_and_change_nothing(
    edge: Edge, fake: FakeTwilio
) -> None:
    world = await make_world(edge.db)
    _request_id, order_id = await dispatched(edge, world)
    url = edge.base_url + "/sms/inbound"
    forged = await send_inbound(edge.http, url, world.tech_mobile, "接单", auth_token="guess")
    assert forged.status == 403
    other_url = await send_inbound(
        edge.http, url, world.tech_mobile, "接单", signed_url="http://evil.example/sms/inbound"
    )
    assert other_url.status == 403
    unsigned = await edge.http.post(url, data={"From": world.tech_mobile, "Body": "接单"})
    assert unsigned.status == 403
    body = await unsigned.json()
    assert body["error_id"] == "sms_signature_invalid"
    status = await edge.http.post(
        edge.base_url + "/sms/status", data={"MessageSid": "SMx", "MessageStatus": "delivered"}
    )
    assert status.status == 403
    assert await order_state(edge.db, order_id) == "assigned"
    async with edge.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(SmsInbound)) == 0
        # The fake Twilio's own, correctly signed callbacks for the dispatch SMS may land
        # meanwhile; the forged one (SMx) must not.
        forged = select(func.count()).select_from(SmsStatusEvent)
        assert await s.scalar(forged.where(SmsStatusEvent.provider_sid == "SMx")) == 0


async def test_signature_behind_a_proxy(db: Database, fake: FakeTwilio) -> None:
    async with make_edge(db, fake, public_base_url="") as edge:
        world = await make_world(edge.db)
        _request_id, order_id = await dispatched(edge, world)
        reply = await send_inbound(
            edge.http,
            edge.base_url + "/sms/inbound",
            world.tech_mobile,
            f"JD {order_id}",
            signed_url="https://hotline.example.com/sms/inbound",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hotline.example.com"},
        )
        assert reply.status == 200
        assert await order_state(edge.db, order_id) == "accepted"


def test_public_url_rebuild() -> None:
    headers = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "a.example, b"}
    assert (
        public_url("/sms/inbound?x=1", scheme="http", host="10.0.0.5:8080", headers=headers)
        == "https://a.example/sms/inbound?x=1"
    )
    assert (
        public_url(
            "/sms/status",
            scheme="http",
            host="10.0.0.5:8080",
            headers=headers,
            public_base_url="https://hotline.example.com/base/",
        )
        == "https://hotline.example.com/base/sms/status"
    )
    assert public_url("/p", scheme="http", host="h:1", headers={}) == "http://h:1/p"


async def test_refusals(edge: Edge, fake: FakeTwilio) -> None:
    world = await make_world(edge.db)
    _r1, order1 = await dispatched(edge, world)
    _r2, order2 = await dispatched(edge, world)
    url = edge.base_url + "/sms/inbound"
    # A stranger: refused, audited, no reply.
    await send_inbound(edge.http, url, "+8613999999999", f"JD {order1}")
    # Not a command: the syntax comes back.
    await send_inbound(edge.http, url, world.tech_mobile, "收到了谢谢")
    # Two open orders and no number: ask for the number.
    await send_inbound(edge.http, url, world.tech_mobile, "接单")
    # Someone else's order: refused, nothing changes.
    await send_inbound(edge.http, url, world.tech2_mobile, f"JD {order1}")
    # A provider retry of the same message is handled once.
    await send_inbound(edge.http, url, world.tech_mobile, f"JD {order2}", sid="SMretry")
    await send_inbound(edge.http, url, world.tech_mobile, f"JD {order2}", sid="SMretry")
    assert await order_state(edge.db, order1) == "assigned"
    assert await order_state(edge.db, order2) == "accepted"
    async with edge.db.transaction() as s:
        outcomes = (await s.scalars(select(SmsInbound.outcome).order_by(SmsInbound.id))).all()
        audits = (await s.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
        to_stranger = await s.scalar(
            select(func.count()).select_from(SmsMessage).where(SmsMessage.to == "+8613999999999")
        )
        bodies = (
            await s.scalars(select(SmsMessage.body).where(SmsMessage.key.like("reply:%")))
        ).all()
    assert outcomes == [
        "unknown_sender",
        "unparseable",
        "refused:work_order_ambiguous",
        "refused:not_your_work_order",
        "applied",
    ]
    assert "sms_command_refused:unknown_sms_sender" in audits
    assert "sms_command_refused:not_your_work_order" in audits
    assert to_stranger == 0
    assert any(b.startswith("无法识别") for b in bodies)
    assert any("不是派给您的单" in b for b in bodies)
    assert any("请在指令中写明单号" in b for b in bodies)

"""SLA: due times per priority, overdue items found once, dispatch overdue escalates by SMS;
the IVR survey fills the follow-up score; SMS rows commit or roll back with the change."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from ticket_world import (
    World,
    world_fixture,  # noqa: F401  (registers the fixture)
)

from crm_core.events import SlaBreached, SurveyAnswered
from sms_gateway.models import SmsMessage
from sms_gateway.outbox import enqueue_notice
from ticketing.follow_ups import FollowUpService
from ticketing.journal import Actor
from ticketing.models import FollowUp, ServiceRequest, SlaBreach, WorkOrder
from ticketing.notices import SmsNotice
from ticketing.requests import ServiceRequestService
from ticketing.sla import check_sla
from ticketing.states import WorkOrderAction
from ticketing.work_orders import FieldReport, WorkOrderService


async def approved(world: World, priority: str = "urgent") -> ServiceRequest:
    requests = ServiceRequestService(world.ctx)
    row = await requests.create(
        {"customer_id": world.customer_id, "description": "无法启动", "priority": priority},
        Actor.user(world.agent),
    )
    await requests.act(row.id, "submit", Actor.user(world.agent))
    await requests.act(row.id, "start_review", Actor.user(world.reviewer))
    return await requests.act(row.id, "approve", Actor.user(world.reviewer), office="合肥服务站")


async def test_due_times_follow_priority(world: World) -> None:
    urgent = await approved(world, "urgent")
    low = await approved(world, "low")
    assert (urgent.response_due_at - urgent.created_at).total_seconds() == 30 * 60
    assert (low.resolution_due_at - low.created_at).days == 7


async def test_overdue_dispatch_escalates_once_by_sms(world: World) -> None:
    seen: list[SlaBreached] = []
    world.ctx.bus.subscribe(SlaBreached, seen.append)
    request = await approved(world)
    assert await check_sla(world.ctx) == []
    world.clock.advance(minutes=31)
    first = await check_sla(world.ctx)
    assert [(b.kind, b.entity_id) for b in first] == [("dispatch", request.id)]
    assert await check_sla(world.ctx) == []
    escalations = [n for n in world.notes.notices if n.template == "sla_escalation"]
    assert [n.to for n in escalations] == [world.supervisor_mobile]
    assert [e.kind for e in seen] == ["dispatch"]
    order = await WorkOrderService(world.ctx).dispatch(
        request.id, world.tech, Actor.user(world.supervisor)
    )
    world.clock.advance(minutes=61)
    kinds = sorted(b.kind for b in await check_sla(world.ctx))
    assert kinds == ["accept"]
    async with world.ctx.db.transaction() as s:
        breaches = await s.scalar(select(func.count()).select_from(SlaBreach))
    assert breaches == 2
    await WorkOrderService(world.ctx).report(
        order.id, FieldReport(WorkOrderAction.ACCEPT), Actor.sms(world.tech, world.tech_mobile)
    )
    world.clock.advance(hours=25)
    assert [b.kind for b in await check_sla(world.ctx)] == ["resolution"]


async def finished(world: World) -> FollowUp:
    request = await approved(world)
    orders = WorkOrderService(world.ctx)
    order = await orders.dispatch(request.id, world.tech, Actor.user(world.supervisor))
    tech = Actor.sms(world.tech, world.tech_mobile)
    await orders.report(order.id, FieldReport(WorkOrderAction.ACCEPT), tech)
    await orders.report(order.id, FieldReport(WorkOrderAction.COMPLETE, text="好了"), tech)
    async with world.ctx.db.transaction() as s:
        row = await s.scalar(select(FollowUp).where(FollowUp.request_id == request.id))
    assert row is not None
    return row


async def test_ivr_survey_fills_the_score(world: World) -> None:
    follow_up = await finished(world)
    service = FollowUpService(world.ctx)
    await service.attach_call(follow_up.id, "1795568000.3")
    world.ctx.bus.subscribe(SurveyAnswered, service.apply_survey)
    await world.ctx.bus.publish(SurveyAnswered("1795568000.3", "1795568024.7", 4, "13905580000"))
    async with world.ctx.db.transaction() as s:
        row = await s.get(FollowUp, follow_up.id)
        request = await s.get(ServiceRequest, follow_up.request_id)
    assert row is not None and (row.score, row.score_source, row.state) == (4, "ivr", "completed")
    assert request is not None and request.state == "closed"


async def test_a_survey_on_another_call_of_the_customer_changes_no_follow_up(
    world: World,
) -> None:
    """The customer has an open follow-up and calls in about something else: that call's
    score is that call's (cti stores it), never the follow-up's."""
    follow_up = await finished(world)
    service = FollowUpService(world.ctx)
    assert await service.apply_survey(SurveyAnswered("x", "y", 9, "13905580000")) is None
    assert await service.apply_survey(SurveyAnswered("x", "y", 3, "+8613905580000")) is None
    async with world.ctx.db.transaction() as s:
        row = await s.get(FollowUp, follow_up.id)
    assert row is not None and (row.score, row.state) == (None, follow_up.state)


@dataclass
class FailingAfterEnqueue:
    """The outbox writes its row, then the rest of the transaction fails."""

    calls: int = 0

    async def __call__(self, session: AsyncSession, notice: SmsNotice) -> None:
        await enqueue_notice(session, notice)
        self.calls += 1
        raise RuntimeError("the change after the SMS failed")


async def test_sms_rolls_back_with_the_dispatch(world: World) -> None:
    request = await approved(world)
    world.ctx.notify = FailingAfterEnqueue()
    with pytest.raises(RuntimeError):
        await WorkOrderService(world.ctx).dispatch(
            request.id, world.tech, Actor.user(world.supervisor)
        )
    async with world.ctx.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(SmsMessage)) == 0
        assert await s.scalar(select(func.count()).select_from(WorkOrder)) == 0
        stored = await s.get(ServiceRequest, request.id)
    assert stored is not None and stored.state == "dispatched_to_office"
    world.ctx.notify = enqueue_notice
    await WorkOrderService(world.ctx).dispatch(request.id, world.tech, Actor.user(world.supervisor))
    async with world.ctx.db.transaction() as s:
        rows = (await s.scalars(select(SmsMessage))).all()
    assert [(m.to, m.state) for m in rows] == [(world.tech_mobile, "pending")]
    assert rows[0].segments <= 2

"""The wallboard's business figures (ticketing/board.py) on real rows: open requests by region
and stage, overdue dispatches by the SLA rules, follow-ups due today in Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from ticket_world import (
    World,
    world_fixture,  # noqa: F401  (registers the fixture)
)

from ticketing.board import OPEN_STAGES, RegionFigures, business_board, local_day
from ticketing.journal import Actor
from ticketing.models import FollowUp, ServiceRequest
from ticketing.requests import ServiceRequestService
from ticketing.sla import find_overdue
from ticketing.states import WorkOrderAction
from ticketing.work_orders import FieldReport, WorkOrderService


async def new_request(world: World, region: str | None = None) -> ServiceRequest:
    values = {"customer_id": world.customer_id, "description": "无法启动", "priority": "urgent"}
    if region:
        values["region"] = region
    return await ServiceRequestService(world.ctx).create(values, Actor.user(world.agent))


async def approved(world: World, region: str | None = None) -> ServiceRequest:
    requests = ServiceRequestService(world.ctx)
    row = await new_request(world, region)
    await requests.act(row.id, "submit", Actor.user(world.agent))
    await requests.act(row.id, "start_review", Actor.user(world.reviewer))
    return await requests.act(row.id, "approve", Actor.user(world.reviewer), office="合肥服务站")


async def board(world: World) -> dict[str | None, RegionFigures]:
    return {f.region: f for f in await business_board(world.ctx.db, world.clock.now)}


async def test_open_requests_by_region_and_stage(world: World) -> None:
    await new_request(world)
    await new_request(world, "华北")
    await approved(world)
    closed = await new_request(world)
    requests = ServiceRequestService(world.ctx)
    await requests.act(closed.id, "resolve_by_phone", Actor.user(world.agent), reason="已解答")
    await requests.act(closed.id, "close", Actor.user(world.agent))
    figures = await board(world)
    assert sorted(figures, key=str) == ["华东", "华北"]
    assert figures["华东"].stages == {"new": 1, "dispatched_to_office": 1}
    assert figures["华东"].open_requests == 2
    assert figures["华北"].as_dict()["stages"] == {"new": 1}
    assert set(figures["华东"].stages) <= set(OPEN_STAGES)


async def test_a_stage_change_moves_the_count(world: World) -> None:
    row = await new_request(world)
    assert (await board(world))["华东"].stages == {"new": 1}
    await ServiceRequestService(world.ctx).act(row.id, "submit", Actor.user(world.agent))
    assert (await board(world))["华东"].stages == {"submitted": 1}


async def test_overdue_dispatch_and_accept_follow_the_sla_rules(world: World) -> None:
    request = await approved(world)
    await approved(world, "华北")
    assert (await board(world))["华东"].overdue_dispatch == 0
    world.clock.advance(minutes=31)  # urgent: respond (dispatch) within 30 minutes
    figures = await board(world)
    assert (figures["华东"].overdue_dispatch, figures["华北"].overdue_dispatch) == (1, 1)
    order = await WorkOrderService(world.ctx).dispatch(
        request.id, world.tech, Actor.user(world.supervisor)
    )
    world.clock.advance(minutes=61)  # a technician accepts within 60 minutes
    figures = await board(world)
    assert (figures["华东"].overdue_dispatch, figures["华东"].overdue_accept) == (0, 1)
    async with world.ctx.unit() as unit:
        kinds = sorted(i.kind for i in await find_overdue(unit) if i.kind in ("dispatch", "accept"))
    assert kinds == ["accept", "dispatch"]  # the same items as the SLA check
    await WorkOrderService(world.ctx).report(
        order.id, FieldReport(WorkOrderAction.ACCEPT), Actor.sms(world.tech, world.tech_mobile)
    )
    assert (await board(world))["华东"].overdue_accept == 0


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


async def test_follow_ups_due_today_in_beijing_time(world: World) -> None:
    follow_up = await finished(world)
    due = follow_up.due_at  # 48 h after completion: 2026-03-04 ~02:00 UTC, 10:00 in Beijing
    assert due.astimezone(UTC).date() == datetime(2026, 3, 4).date() and due.hour < 16

    async def figures(now: datetime) -> tuple[int, int, int]:
        rows = {f.region: f for f in await business_board(world.ctx.db, now)}
        f = rows["华东"]
        return f.follow_ups_today, f.follow_ups_today_late, f.follow_ups_earlier

    day_before_in_beijing = datetime(2026, 3, 3, 15, 30, tzinfo=UTC)  # 23:30 on 3 March
    assert await figures(day_before_in_beijing) == (0, 0, 0)
    same_day_in_beijing = datetime(2026, 3, 3, 16, 30, tzinfo=UTC)  # 00:30 on 4 March
    assert await figures(same_day_in_beijing) == (1, 0, 0)
    assert await figures(due + timedelta(minutes=1)) == (1, 1, 0)
    assert await figures(datetime(2026, 3, 4, 16, 30, tzinfo=UTC)) == (0, 0, 1)
    assert (await board(world))["华东"].stages == {"follow_up": 1}


def test_the_local_day_is_beijing_time() -> None:
    start, end = local_day(datetime(2026, 3, 3, 17, 0, tzinfo=UTC), "Asia/Shanghai")
    assert start.astimezone(UTC) == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)

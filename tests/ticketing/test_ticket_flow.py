from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import func, select
from ticket_world import (
    World,
    world_fixture,  # noqa: F401  (registers the fixture)
)

from ticketing.errors import (
    IllegalRequestTransition,
    IllegalWorkOrderTransition,
    ReasonRequired,
)
from ticketing.follow_ups import FollowUpService
from ticketing.journal import Actor
from ticketing.models import FollowUp, ServiceRequest, Transition, WorkOrder
from ticketing.requests import ServiceRequestService
from ticketing.states import RequestAction, WorkOrderAction
from ticketing.work_orders import FieldReport, WorkOrderService


async def transitions(world: World, request_id: int) -> list[tuple[str, str, str | None, str]]:
    async with world.ctx.db.transaction() as s:
        rows = await s.scalars(
            select(Transition).where(Transition.request_id == request_id).order_by(Transition.id)
        )
        return [(r.entity, r.action, r.from_state, r.to_state) for r in rows]


async def new_request(world: World, **extra: object) -> ServiceRequest:
    values = {
        "customer_id": world.customer_id,
        "vehicle_id": world.vehicle_id,
        "description": "刹车异响,仪表盘报警",
        "priority": "high",
        "call_linkedid": "1700000000.12",
        **extra,
    }
    return await ServiceRequestService(world.ctx).create(values, Actor.user(world.agent))


async def to_office(world: World) -> ServiceRequest:
    requests = ServiceRequestService(world.ctx)
    row = await new_request(world)
    await requests.act(row.id, "submit", Actor.user(world.agent))
    await requests.act(row.id, "start_review", Actor.user(world.reviewer))
    return await requests.act(row.id, "approve", Actor.user(world.reviewer), office="合肥服务站")


async def test_full_loop_records_every_transition(world: World) -> None:
    request = await to_office(world)
    assert request.state == "dispatched_to_office"
    orders = WorkOrderService(world.ctx)
    order = await orders.dispatch(request.id, world.tech, Actor.user(world.supervisor))
    assert [n.template for n in world.notes.notices] == ["work_order_dispatched"]
    assert world.notes.notices[0].to == world.tech_mobile
    tech = Actor.sms(world.tech, world.tech_mobile)
    await orders.report(order.id, FieldReport(WorkOrderAction.ACCEPT), tech)
    await orders.report(order.id, FieldReport(WorkOrderAction.SET_ETA, eta=time(14, 30)), tech)
    await orders.report(order.id, FieldReport(WorkOrderAction.ARRIVE), tech)
    done = await orders.report(
        order.id, FieldReport(WorkOrderAction.COMPLETE, text="换了刹车片"), tech
    )
    assert done.state == "done" and done.resolution == "换了刹车片"
    async with world.ctx.db.transaction() as s:
        follow_up = await s.scalar(select(FollowUp).where(FollowUp.request_id == request.id))
        stored = await s.get(ServiceRequest, request.id)
    assert follow_up is not None and stored is not None
    assert stored.state == "follow_up"
    assert follow_up.assignee_id in (world.agent, world.agent2)
    await FollowUpService(world.ctx).record_result(follow_up.id, 5, Actor.user(world.agent))
    async with world.ctx.db.transaction() as s:
        stored = await s.get(ServiceRequest, request.id)
    assert stored is not None and stored.state == "closed"
    steps = [(e, a) for e, a, _f, _t in await transitions(world, request.id)]
    assert steps == [
        ("request", "create"),
        ("request", "submit"),
        ("request", "start_review"),
        ("request", "approve"),
        ("work_order", "create"),
        ("request", "dispatch_work_order"),
        ("work_order", "accept"),
        ("work_order", "set_eta"),
        ("work_order", "arrive"),
        ("work_order", "complete"),
        ("request", "complete"),
        ("request", "start_follow_up"),
        ("follow_up", "record_result"),
        ("request", "close"),
    ]


async def test_illegal_transition_changes_nothing(world: World) -> None:
    row = await new_request(world)
    before = await transitions(world, row.id)
    with pytest.raises(IllegalRequestTransition) as caught:
        await ServiceRequestService(world.ctx).act(row.id, "approve", Actor.user(world.reviewer))
    assert caught.value.error_id == "illegal_service_request_transition"
    assert caught.value.status == 409
    assert await transitions(world, row.id) == before
    with pytest.raises(ReasonRequired):
        await ServiceRequestService(world.ctx).act(row.id, RequestAction.REOPEN, Actor.user(1))


async def test_reassignment_keeps_the_old_order(world: World) -> None:
    request = await to_office(world)
    orders = WorkOrderService(world.ctx)
    first = await orders.dispatch(request.id, world.tech, Actor.user(world.supervisor))
    tech = Actor.sms(world.tech, world.tech_mobile)
    await orders.report(first.id, FieldReport(WorkOrderAction.ACCEPT), tech)
    await orders.report(first.id, FieldReport(WorkOrderAction.ARRIVE), tech)
    await orders.report(
        first.id, FieldReport(WorkOrderAction.RETURN_TO_FACTORY, text="发动机"), tech
    )
    second = await orders.reassign(
        first.id, world.tech2, Actor.user(world.supervisor), "返厂后送回"
    )
    assert second.previous_id == first.id
    async with world.ctx.db.transaction() as s:
        old = await s.get(WorkOrder, first.id)
        count = await s.scalar(select(func.count()).select_from(WorkOrder))
    assert old is not None and old.state == "reassigned" and count == 2
    with pytest.raises(IllegalWorkOrderTransition):
        await orders.report(first.id, FieldReport(WorkOrderAction.COMPLETE), tech)
    assert world.notes.notices[-1].to == world.tech2_mobile


async def test_follow_up_round_robin_and_unreachable(world: World) -> None:
    assignees = []
    for _ in range(3):
        request = await to_office(world)
        orders = WorkOrderService(world.ctx)
        order = await orders.dispatch(request.id, world.tech, Actor.user(world.supervisor))
        tech = Actor.sms(world.tech, world.tech_mobile)
        await orders.report(order.id, FieldReport(WorkOrderAction.ACCEPT), tech)
        await orders.report(order.id, FieldReport(WorkOrderAction.COMPLETE, text="ok"), tech)
        async with world.ctx.db.transaction() as s:
            fu = await s.scalar(select(FollowUp).where(FollowUp.request_id == request.id))
        assert fu is not None
        assignees.append(fu.assignee_id)
    assert assignees == [world.agent, world.agent2, world.agent]
    service = FollowUpService(world.ctx)
    for attempt in range(1, 4):
        row = await service.no_answer(fu.id, Actor.user(world.agent))
        assert row.attempts == attempt
    assert row.state == "unreachable"
    async with world.ctx.db.transaction() as s:
        stored = await s.get(ServiceRequest, fu.request_id)
    assert stored is not None and stored.state == "closed"


async def test_complaint_goes_through_its_own_review(world: World) -> None:
    requests = ServiceRequestService(world.ctx)
    row = await new_request(world, category="complaint")
    await requests.act(row.id, "submit", Actor.user(world.agent))
    row = await requests.act(row.id, "start_review", Actor.user(world.reviewer))
    assert row.state == "complaint_review"
    row = await requests.act(row.id, "approve", Actor.user(world.reviewer))
    assert row.state == "complaint_handling"
    row = await requests.act(row.id, "complete", Actor.user(world.reviewer), reason="已道歉并补偿")
    assert row.state == "follow_up"

"""Property tests: the pure machines, and the service layer against random command sequences."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select
from ticket_world import World, make_world

from crm_core.db import Database
from crm_core.errors import HotlineError
from crm_core.settings import Settings
from ticketing.errors import IllegalTransition
from ticketing.follow_ups import FollowUpService
from ticketing.journal import Actor
from ticketing.models import FollowUp, ServiceRequest, Transition, WorkOrder
from ticketing.requests import ServiceRequestService
from ticketing.states import (
    COMPLAINT,
    FOLLOW_UP,
    SERVICE_REQUEST,
    WORK_ORDER,
    FollowUpState,
    Machine,
    RequestAction,
    RequestState,
    WorkOrderAction,
    WorkOrderState,
    follow_up_after_no_answer,
)
from ticketing.work_orders import FieldReport, WorkOrderService

MACHINES: Sequence[Machine] = (SERVICE_REQUEST, COMPLAINT, WORK_ORDER, FOLLOW_UP)  # type: ignore[type-arg]


@given(st.data())
def test_machines_reject_or_move_to_a_known_state(data: st.DataObject) -> None:
    for machine in MACHINES:
        states = sorted({s for s, _a in machine.table} | set(machine.table.values()))
        state = data.draw(st.sampled_from(states))
        actions = sorted({a for _s, a in machine.table})
        for action in data.draw(st.lists(st.sampled_from(actions), max_size=30)):
            try:
                state = machine.apply(state, action)
            except IllegalTransition as exc:
                assert exc.status == 409 and exc.error_id.startswith("illegal_")
                assert action not in machine.allowed(state)
            else:
                assert state in states


def test_terminal_states_allow_nothing() -> None:
    for machine in (WORK_ORDER, FOLLOW_UP):
        for state in machine.terminal:
            assert machine.allowed(state) == []


@given(st.integers(1, 6), st.integers(0, 10))
def test_no_answer_ends_unreachable_after_max_attempts(max_attempts: int, calls: int) -> None:
    state, attempts = FollowUpState.PENDING, 0
    for _ in range(calls):
        if state == FollowUpState.UNREACHABLE:
            break
        state, attempts = follow_up_after_no_answer(state, attempts, max_attempts)
    assert attempts == min(calls, max_attempts)
    assert (state == FollowUpState.UNREACHABLE) == (calls >= max_attempts)


class WorkOrderModel(RuleBasedStateMachine):
    """Model-based: a work order driven by any action agrees with a hand-written model."""

    def __init__(self) -> None:
        super().__init__()
        self.state = WorkOrderState.ASSIGNED

    @rule(action=st.sampled_from(list(WorkOrderAction)))
    def act(self, action: WorkOrderAction) -> None:
        legal = self.expected(action)
        try:
            self.state = WORK_ORDER.apply(self.state, action)
        except IllegalTransition:
            assert legal is None
        else:
            assert self.state == legal

    def expected(self, action: WorkOrderAction) -> WorkOrderState | None:
        s, W, A = self.state, WorkOrderState, WorkOrderAction  # noqa: N806
        if s in WORK_ORDER.terminal:
            return None
        if action == A.REASSIGN:
            return W.REASSIGNED
        if action == A.COMPLETE:
            return W.DONE if s in (W.ACCEPTED, W.EN_ROUTE, W.ON_SITE, W.NEEDS_PARTS) else None
        if action == A.ACCEPT:
            return W.ACCEPTED if s in (W.ASSIGNED, W.OFFERED) else None
        if action == A.DECLINE:
            return W.DECLINED if s in (W.ASSIGNED, W.OFFERED) else None
        if action == A.SET_ETA:
            return W.EN_ROUTE if s in (W.ACCEPTED, W.EN_ROUTE) else None
        if action == A.ARRIVE:
            return W.ON_SITE if s in (W.ACCEPTED, W.EN_ROUTE, W.NEEDS_PARTS) else None
        if action == A.NEED_PARTS:
            return W.NEEDS_PARTS if s in (W.ACCEPTED, W.EN_ROUTE, W.ON_SITE) else None
        return W.RETURN_TO_FACTORY if s in (W.ON_SITE, W.NEEDS_PARTS) else None

    @precondition(lambda self: True)
    @invariant()
    def known(self) -> None:
        assert self.state in set(WorkOrderState)


TestWorkOrderModel = WorkOrderModel.TestCase


# --- the service layer: random command sequences against a real database ---------------

STEPS = st.sampled_from(
    [
        *(
            ("request", a)
            for a in (
                "submit",
                "start_review",
                "approve",
                "reject",
                "resubmit",
                "resolve_by_phone",
                "close",
                "reopen",
                "complete",
                "handle_complaint",
            )
        ),
        ("dispatch", "tech"),
        ("dispatch", "tech2"),
        *(("order", a.value) for a in WorkOrderAction),
        ("follow_up", "no_answer"),
        ("follow_up", "record_result"),
    ]
)
_worlds = itertools.count(1)


async def _step(world: World, request_id: int, step: tuple[str, str]) -> None:
    kind, what = step
    boss = Actor.user(world.supervisor)
    if kind == "request":
        await ServiceRequestService(world.ctx).act(
            request_id, what, boss, reason="因为", office="合肥服务站"
        )
        return
    async with world.ctx.db.transaction() as s:
        order = await s.scalar(
            select(WorkOrder)
            .where(WorkOrder.request_id == request_id)
            .order_by(WorkOrder.id.desc())
        )
        follow_up = await s.scalar(
            select(FollowUp).where(FollowUp.request_id == request_id).order_by(FollowUp.id.desc())
        )
    orders = WorkOrderService(world.ctx)
    if kind == "dispatch":
        await orders.dispatch(request_id, world.tech if what == "tech" else world.tech2, boss)
    elif kind == "order" and order is not None:
        if what == WorkOrderAction.REASSIGN:
            await orders.reassign(order.id, world.tech2, boss, "改派")
        else:
            await orders.report(order.id, FieldReport(WorkOrderAction(what), text="x"), boss)
    elif kind == "follow_up" and follow_up is not None:
        service = FollowUpService(world.ctx)
        if what == "no_answer":
            await service.no_answer(follow_up.id, boss)
        else:
            await service.record_result(follow_up.id, 4, boss)


async def _snapshot(db: Database, request_id: int) -> tuple[object, ...]:
    async with db.transaction() as s:
        request = await s.get(ServiceRequest, request_id)
        orders = (
            await s.scalars(select(WorkOrder).where(WorkOrder.request_id == request_id))
        ).all()
        follow_ups = (
            await s.scalars(select(FollowUp).where(FollowUp.request_id == request_id))
        ).all()
        records = (
            await s.scalars(
                select(Transition)
                .where(Transition.request_id == request_id)
                .order_by(Transition.id)
            )
        ).all()
    assert request is not None
    return (
        request.state,
        tuple((o.id, o.state) for o in orders),
        tuple((f.id, f.state, f.attempts) for f in follow_ups),
        tuple((t.entity, t.entity_id, t.from_state, t.to_state) for t in records),
    )


def _check_invariants(snapshot: tuple[object, ...]) -> None:
    state, orders, follow_ups, records = snapshot
    assert isinstance(orders, tuple) and isinstance(follow_ups, tuple)
    assert isinstance(records, tuple)
    assert RequestState(state) in set(RequestState)
    open_orders = [o for o in orders if o[1] not in ("done", "reassigned", "declined")]
    open_fus = [f for f in follow_ups if f[1] in ("pending", "rescheduled")]
    assert len(open_orders) == (1 if state == "in_field" else 0)
    assert len(open_fus) == (1 if state == "follow_up" else 0)
    # Every entity's records form an unbroken chain ending in its stored state.
    current = {("request", None): state}
    current.update({("work_order", o[0]): o[1] for o in orders})
    current.update({("follow_up", f[0]): f[1] for f in follow_ups})
    last: dict[tuple[str, int], str] = {}
    for entity, entity_id, before, after in records:
        assert last.get((entity, entity_id)) == before
        last[(entity, entity_id)] = after
    for (entity, entity_id), after in last.items():
        key = (entity, None) if entity == "request" else (entity, entity_id)
        assert current[key] == after


async def _run(settings: Settings, category: str, steps: list[tuple[str, str]]) -> None:
    db = Database.open(settings)
    try:
        world = await make_world(db, next(_worlds))
        request = await ServiceRequestService(world.ctx).create(
            {"customer_id": world.customer_id, "description": "故障", "category": category},
            Actor.user(world.agent),
        )
        before = await _snapshot(db, request.id)
        for step in steps:
            try:
                await _step(world, request.id, step)
            except HotlineError:
                assert await _snapshot(db, request.id) == before, step
            after = await _snapshot(db, request.id)
            _check_invariants(after)
            before = after
    finally:
        await db.close()


@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    category=st.sampled_from(["repair", "complaint"]),
    steps=st.lists(STEPS, min_size=1, max_size=25),
)
def test_no_command_sequence_breaks_the_records(
    settings: Settings, category: str, steps: list[tuple[str, str]]
) -> None:
    asyncio.run(_run(settings, category, steps))


def test_request_actions_cover_the_machine() -> None:
    used = {a for _s, a in SERVICE_REQUEST.table} | {a for _s, a in COMPLAINT.table}
    assert used == set(RequestAction)

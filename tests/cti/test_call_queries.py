"""Wrap-up, the unprocessed list, the callback list and the wallboard, on real rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ami_replay import load

from crm_core.db import Database
from crm_core.errors import NotFound, ValidationError
from crm_core.users import create_user
from cti import call_queries
from cti.agent_state import AgentStates
from cti.call_queries import NotYourCall, Viewer
from cti.models import Call
from cti.tracker import CallTracker
from cti.wallboard import Wallboard


@pytest.fixture
async def people(db: Database) -> dict[str, int]:
    a = await create_user(db, {"username": "a1", "display_name": "甲", "region": "华东"})
    b = await create_user(db, {"username": "b1", "display_name": "乙", "region": "华北"})
    s = await create_user(
        db, {"username": "s1", "display_name": "主管", "region": "华东", "role": "supervisor"}
    )
    return {"a": a.id, "b": b.id, "sup": s.id}


async def add_call(db: Database, n: int, **values: Any) -> int:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "server": "pbx",
        "linkedid": f"L{n}",
        "direction": "inbound",
        "number": "13900000000",
        "number_e164": "+8613900000000",
        "status": "ended",
        "entered_at": now - timedelta(minutes=5),
        **values,
    }
    row = Call(**fields)
    async with db.transaction() as session:
        session.add(row)
    return row.id


async def test_wrap_up_marks_processed_only_for_the_agent(
    db: Database, people: dict[str, int]
) -> None:
    now = datetime.now(UTC)
    call = await add_call(
        db,
        1,
        agent_id=people["a"],
        answered_at=now,
        outcome="answered",
        queue="hotline",
        wait_seconds=5,
    )
    agent_a = Viewer(people["a"], "agent", "华东")
    agent_b = Viewer(people["b"], "agent", "华北")
    assert [c["id"] for c in await call_queries.my_unprocessed(db, agent_a)] == [call]
    with pytest.raises(NotYourCall):
        await call_queries.set_disposition(db, agent_b, call, "resolved", "好了")
    with pytest.raises(NotFound):
        await call_queries.get_call(db, agent_b, call)
    with pytest.raises(ValidationError):
        await call_queries.set_disposition(db, agent_a, call, "lunch", "x")
    done = await call_queries.set_disposition(db, agent_a, call, "resolved", "")
    assert done.processed_at is None  # a disposition without a note is not processed yet
    done = await call_queries.set_disposition(db, agent_a, call, "resolved", "已解答刹车问题")
    assert done.processed_at is not None
    assert await call_queries.my_unprocessed(db, agent_a) == []


async def test_supervisor_sees_whose_calls_are_unhandled(
    db: Database, people: dict[str, int]
) -> None:
    now = datetime.now(UTC)
    for n in range(3):
        await add_call(db, n, agent_id=people["a"], answered_at=now, outcome="answered")
    await add_call(db, 9, agent_id=people["b"], answered_at=now, outcome="answered")
    board = await call_queries.unprocessed_by_agent(db, Viewer(people["sup"], "supervisor", "华东"))
    assert [(r["username"], r["unprocessed"]) for r in board] == [("a1", 3)]


async def test_callback_list(db: Database, people: dict[str, int]) -> None:
    missed = await add_call(db, 1, outcome="missed")
    await add_call(db, 2, outcome="abandoned", number_e164="+8613911111111")
    later = Call(
        server="pbx",
        linkedid="L3",
        direction="inbound",
        number_e164="+8613911111111",
        status="ended",
        outcome="answered",
        entered_at=datetime.now(UTC),
        answered_at=datetime.now(UTC),
    )
    async with db.transaction() as session:
        session.add(later)
    admin = Viewer(people["sup"], "admin", None)
    assert [c["id"] for c in await call_queries.callback_list(db, admin)] == [missed]
    await call_queries.mark_called_back(db, missed)
    assert await call_queries.callback_list(db, admin) == []


async def test_wallboard(db: Database, people: dict[str, int]) -> None:
    now = datetime.now(UTC)
    await add_call(db, 1, queue="hotline", outcome="answered", answered_at=now, wait_seconds=8)
    await add_call(db, 2, queue="hotline", outcome="answered", answered_at=now, wait_seconds=40)
    await add_call(db, 3, queue="hotline", outcome="abandoned")
    tracker, agents = CallTracker(lambda e: None), AgentStates()
    events = load("caller_abandons_in_queue")
    cut = next(i for i, e in enumerate(events) if e.name == "AgentCalled")
    for event in events[:cut]:  # a caller still waiting in the queue
        tracker.handle("pbx", event)
        agents.apply("pbx", event.name, event.headers)
    for event in load("answered_queue_call")[:3]:
        agents.apply("pbx", event.name, event.headers)
    snapshot = await Wallboard(db, tracker, agents).snapshot()
    (queue,) = [q for q in snapshot["queues"] if q["queue"] == "hotline"]
    assert queue["waiting"] == 1 and queue["longest_wait"] > 0
    assert (queue["answered_today"], queue["abandoned_today"]) == (2, 1)
    assert queue["service_level"] == pytest.approx(33.3)
    assert snapshot["agents"] and snapshot["agents"][0]["state"] == "paused"

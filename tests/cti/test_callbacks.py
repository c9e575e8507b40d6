"""Queue-callback jobs: one job per call, one winner per attempt, results applied once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

import cti.callbacks as callbacks
from crm_core.db import Database
from cti.models import Call, QueueCallback

RETRY = timedelta(seconds=60)


async def _job(db: Database, linkedid: str = "1700000000.1", attempts: int = 3) -> QueueCallback:
    async with db.transaction() as session:
        session.add(Call(server="pbx", linkedid=linkedid, direction="inbound", number="139"))
    return await callbacks.request(
        db,
        server="pbx",
        linkedid=linkedid,
        queue="hotline",
        number="13905581234",
        place_at=datetime.now(UTC) - timedelta(seconds=40),
        max_attempts=attempts,
    )


async def test_pressing_1_twice_is_one_job_and_marks_the_call(db: Database) -> None:
    first = await _job(db)
    again = await callbacks.request(
        db,
        server="pbx",
        linkedid="1700000000.1",
        queue="hotline",
        number="13905581234",
        place_at=datetime.now(UTC),
        max_attempts=3,
    )
    assert again.id == first.id and again.place_at == first.place_at
    async with db.transaction() as session:
        call = (await session.scalars(select(Call))).one()
    assert call.routed == "callback"


async def test_an_attempt_is_claimed_once_and_its_result_applied_once(db: Database) -> None:
    job = await _job(db)
    (due,) = await callbacks.due(db, "pbx", datetime.now(UTC))
    attempt = await callbacks.claim(db, due)
    assert attempt is not None and attempt.attempt_id == f"{job.id}x1"
    assert await callbacks.claim(db, due) is None  # a second worker with the same snapshot
    assert await callbacks.due(db, "pbx", datetime.now(UTC)) == []
    assert await callbacks.record_result(db, attempt.attempt_id, "ANSWER", RETRY) == "done"
    assert await callbacks.record_result(db, attempt.attempt_id, "ANSWER", RETRY) is None
    async with db.transaction() as session:
        call = (await session.scalars(select(Call))).one()
    assert call.callback_done_at is not None


async def test_unanswered_tries_wait_then_fail_after_the_last(db: Database) -> None:
    await _job(db, attempts=2)
    (due,) = await callbacks.due(db, "pbx", datetime.now(UTC))
    first = await callbacks.claim(db, due)
    assert first is not None
    assert await callbacks.record_result(db, first.attempt_id, "NOANSWER", RETRY) == "waiting"
    assert await callbacks.due(db, "pbx", datetime.now(UTC)) == []  # not before the retry time
    (later,) = await callbacks.due(db, "pbx", datetime.now(UTC) + RETRY * 2)
    second = await callbacks.claim(db, later)
    assert second is not None and second.attempt_id.endswith("x2")
    assert await callbacks.record_result(db, second.attempt_id, "BUSY", RETRY) == "failed"
    # A late report of the first try changes nothing.
    assert await callbacks.record_result(db, first.attempt_id, "ANSWER", RETRY) is None


async def test_an_attempt_that_dialled_nothing_is_given_back(db: Database) -> None:
    await _job(db)
    (due,) = await callbacks.due(db, "pbx", datetime.now(UTC))
    attempt = await callbacks.claim(db, due)
    assert attempt is not None
    await callbacks.release(db, attempt.attempt_id, timedelta(0))
    (again,) = await callbacks.due(db, "pbx", datetime.now(UTC) + timedelta(seconds=1))
    assert again.attempts == 0 and again.state == "waiting"
    assert await callbacks.pending_linkedids(db, ["1700000000.1", "other"]) == {"1700000000.1"}

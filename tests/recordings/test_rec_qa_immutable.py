"""A submitted QA scorecard is immutable in the database itself (migration recordings_0002):
raw SQL cannot UPDATE or DELETE it on SQLite or PostgreSQL; a correction is a new row that
names the one it corrects; PostgreSQL's TRUNCATE (the test fixture's reset) still works."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from crm_core.db import Database
from crm_core.users import create_user
from recordings import qa
from recordings.models import QaReview, Recording

TRIGGER_MESSAGE = "a submitted scorecard is immutable"


@dataclass
class Scored:
    db: Database
    recording: Recording
    reviewer: int
    criteria: list[int]
    review: QaReview


async def _user(db: Database, username: str, role: str) -> int:
    row = await create_user(
        db, {"username": username, "display_name": username, "role": role, "region": "华东"}
    )
    return row.id


@pytest.fixture
async def scored(db: Database) -> Scored:
    agent = await _user(db, "qa_agent", "agent")
    reviewer = await _user(db, "qa_sup", "supervisor")
    async with db.transaction() as session:
        recording = Recording(
            server="main", source_path="/spool/qa-immutable.wav", agent_id=agent,
            state="complete", duration_seconds=30.0,
        )  # fmt: skip
        session.add(recording)
    criteria = [
        (await qa.save_criterion(db, {"name": name, "weight": weight}, None)).id
        for name, weight in (("开场白规范", 40), ("问题解决", 60))
    ]
    scores = {str(criteria[0]): 50, str(criteria[1]): 100}
    review = await qa.submit_review(db, recording, reviewer, {"scores": scores})
    return Scored(db, recording, reviewer, criteria, review)


async def _raw(db: Database, sql: str, **params: object) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(sql), params)


async def _stored(db: Database, review_id: int) -> tuple[float, int] | None:
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT score, version FROM qa_reviews WHERE id = :id"), {"id": review_id}
            )
        ).one_or_none()
    return None if row is None else (float(row[0]), int(row[1]))


async def test_raw_update_of_a_submitted_scorecard_is_rejected(scored: Scored) -> None:
    rid = scored.review.id
    with pytest.raises(IntegrityError, match=TRIGGER_MESSAGE):
        await _raw(scored.db, "UPDATE qa_reviews SET score = 100 WHERE id = :id", id=rid)
    with pytest.raises(IntegrityError, match=TRIGGER_MESSAGE):
        await _raw(scored.db, "UPDATE qa_reviews SET summary = 'changed'")
    assert await _stored(scored.db, rid) == (80.0, 1)


async def test_raw_delete_of_a_submitted_scorecard_is_rejected(scored: Scored) -> None:
    rid = scored.review.id
    with pytest.raises(IntegrityError, match=TRIGGER_MESSAGE):
        await _raw(scored.db, "DELETE FROM qa_reviews WHERE id = :id", id=rid)
    with pytest.raises(IntegrityError, match=TRIGGER_MESSAGE):
        await _raw(scored.db, "DELETE FROM qa_reviews")
    assert await _stored(scored.db, rid) == (80.0, 1)


async def test_a_correction_is_a_new_row_naming_the_old_one(scored: Scored) -> None:
    first = scored.review
    scores = {str(scored.criteria[0]): 100, str(scored.criteria[1]): 100}
    body = {"scores": scores, "summary": "复核后更正", "amends_id": first.id}
    correction = await qa.submit_review(scored.db, scored.recording, scored.reviewer, body)
    assert correction.id != first.id and correction.amends_id == first.id
    assert (correction.version, correction.score) == (2, 100.0)
    assert await _stored(scored.db, first.id) == (80.0, 1)  # the original stays as it was
    history = qa.reviews_with_history(await qa.reviews_of(scored.db, scored.recording.id))
    assert [(h["version"], h["current"], h["corrected_by"]) for h in history] == [
        (1, False, correction.id),
        (2, True, None),
    ]
    with pytest.raises(IntegrityError, match=TRIGGER_MESSAGE):  # the correction is locked too
        await _raw(scored.db, "UPDATE qa_reviews SET score = 0 WHERE id = :id", id=correction.id)


async def test_other_qa_tables_still_change(scored: Scored) -> None:
    """Only the submitted scorecards are frozen: criteria stay editable, and old reviews
    keep the copy of the criteria they were scored on."""
    await qa.save_criterion(scored.db, {"name": "开场白", "active": False}, scored.criteria[0])
    assert [c.id for c in await qa.list_criteria(scored.db)] == [scored.criteria[1]]
    reviews = await qa.reviews_of(scored.db, scored.recording.id)
    assert reviews[0].items[0]["name"] == "开场白规范"


async def test_truncate_still_empties_the_table_on_postgresql(scored: Scored) -> None:
    if scored.db.settings.is_sqlite:
        pytest.skip("SQLite has no TRUNCATE; its test databases are fresh copies")
    await _raw(scored.db, "TRUNCATE qa_reviews RESTART IDENTITY CASCADE")
    async with scored.db.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(QaReview)) == 0

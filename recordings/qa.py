"""QA scorecards: admin-configured criteria with weights; reviews scored 0-100 per criterion
with comments pinned to a time in the recording. A submitted review is immutable: the ORM
refuses to flush a change, and a trigger (migration recordings_0002) rejects a raw UPDATE or
DELETE on SQLite and PostgreSQL. A correction (amendment) is a new version that names the one
it amends, and each version can be amended once, so the history is a single chain."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from crm_core.db import Database, is_integrity_error
from recordings.errors import QaConflict, QaInvalid
from recordings.models import QaCriterion, QaReview, Recording

MAX_COMMENTS = 100
MAX_TEXT = 1000


@event.listens_for(Session, "before_flush")
def _reviews_are_immutable(session: Session, _context: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, QaReview) and (obj in session.deleted or session.is_modified(obj)):
            raise QaConflict("a submitted review cannot be changed; submit an amendment")


def criterion_dict(c: QaCriterion) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "weight": c.weight, "active": c.active}


async def list_criteria(db: Database, active_only: bool = True) -> list[QaCriterion]:
    query = select(QaCriterion).order_by(QaCriterion.position, QaCriterion.id)
    if active_only:
        query = query.where(QaCriterion.active.is_(True))
    async with db.transaction() as session:
        return list((await session.scalars(query)).all())


def _weight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise QaInvalid("weight is a whole number from 0 to 100", field="weight")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise QaInvalid("name is required (at most 100 characters)", field="name")
    return value.strip()


async def save_criterion(
    db: Database, body: dict[str, Any], criterion_id: int | None
) -> QaCriterion:
    """Create, or change name/weight/active. Old reviews keep the copy they were scored on."""
    async with db.transaction() as session:
        row = await session.get(QaCriterion, criterion_id) if criterion_id else QaCriterion()
        if row is None:
            raise QaInvalid(f"criterion {criterion_id} does not exist")
        if "name" in body or criterion_id is None:
            row.name = _name(body.get("name"))
        if "weight" in body or criterion_id is None:
            row.weight = _weight(body.get("weight", 1))
        if "active" in body:
            row.active = bool(body["active"])
        if "position" in body:
            row.position = _weight(body["position"])
        session.add(row)
    return row


def _items(criteria: list[QaCriterion], scores: Any) -> tuple[list[dict[str, Any]], float]:
    if not isinstance(scores, dict):
        raise QaInvalid("scores is an object {criterion_id: 0-100}", field="scores")
    if not criteria or sum(c.weight for c in criteria) == 0:
        raise QaInvalid("no active QA criteria: an admin configures them first")
    items: list[dict[str, Any]] = []
    weighted, weights = 0.0, 0
    for c in criteria:
        value = scores.get(str(c.id), scores.get(c.id))
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise QaInvalid(f"score every criterion 0-100: {c.name}", field=f"scores.{c.id}")
        items.append({"criterion_id": c.id, "name": c.name, "weight": c.weight, "score": value})
        weighted, weights = weighted + c.weight * float(value), weights + c.weight
    return items, round(weighted / weights, 1)


def _comments(value: Any, duration: float) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_COMMENTS:
        raise QaInvalid(f"comments is a list (at most {MAX_COMMENTS})", field="comments")
    clean = []
    for item in value:
        at, text = (item.get("at"), item.get("text")) if isinstance(item, dict) else (None, None)
        if isinstance(at, bool) or not isinstance(at, int | float) or not 0 <= at <= duration + 1:
            raise QaInvalid("a comment's time (at) is seconds into the recording", field="comments")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise QaInvalid("a comment needs text (at most 1000 characters)", field="comments")
        clean.append({"at": round(float(at), 2), "text": text.strip()})
    return sorted(clean, key=lambda c: c["at"])


def review_dict(r: QaReview) -> dict[str, Any]:
    return {
        "id": r.id,
        "recording_id": r.recording_id,
        "version": r.version,
        "amends_id": r.amends_id,
        "reviewer_id": r.reviewer_id,
        "agent_id": r.agent_id,
        "score": r.score,
        "items": r.items,
        "comments": r.comments,
        "summary": r.summary,
        "submitted_at": r.submitted_at.isoformat(),
    }


def reviews_with_history(reviews: list[QaReview]) -> list[dict[str, Any]]:
    """The reviews as dicts, each marked with the version that corrected it (if any); the one
    nobody corrected is the current score of its recording."""
    corrected_by = {r.amends_id: r.id for r in reviews if r.amends_id is not None}
    return [
        {
            **review_dict(r),
            "corrected_by": corrected_by.get(r.id),
            "current": r.id not in corrected_by,
        }
        for r in reviews
    ]


async def submit_review(
    db: Database, recording: Recording, reviewer_id: int, body: dict[str, Any]
) -> QaReview:
    if recording.state != "complete":
        raise QaConflict("only an ingested, playable recording can be reviewed")
    items, score = _items(await list_criteria(db), body.get("scores"))
    comments = _comments(body.get("comments"), recording.duration_seconds or 0)
    summary = body.get("summary")
    if summary is not None and (not isinstance(summary, str) or len(summary) > MAX_TEXT):
        raise QaInvalid("summary is text of at most 1000 characters", field="summary")
    amends = body.get("amends_id")
    try:
        async with db.transaction() as session:
            version = 1
            if amends is not None:
                previous = await session.get(QaReview, amends)
                if previous is None or previous.recording_id != recording.id:
                    raise QaInvalid("amends_id is not a review of this recording")
                version = previous.version + 1
            elif await session.scalar(
                select(QaReview.id).where(QaReview.recording_id == recording.id).limit(1)
            ):
                raise QaConflict("this recording has a review; submit an amendment (amends_id)")
            row = QaReview(
                recording_id=recording.id, version=version, amends_id=amends,
                reviewer_id=reviewer_id, agent_id=recording.agent_id, score=score,
                items=items, comments=comments, summary=summary or None,
            )  # fmt: skip
            session.add(row)
    except Exception as exc:
        if is_integrity_error(exc):
            raise QaConflict("that review was already amended; amend the latest version") from None
        raise
    return row


async def reviews_of(db: Database, recording_id: int) -> list[QaReview]:
    query = select(QaReview).where(QaReview.recording_id == recording_id).order_by(QaReview.version)
    async with db.transaction() as session:
        return list((await session.scalars(query)).all())


async def reviews_of_agent(db: Database, agent_id: int) -> list[QaReview]:
    query = (
        select(QaReview)
        .where(QaReview.agent_id == agent_id)
        .order_by(QaReview.submitted_at.desc())
        .limit(200)
    )
    async with db.transaction() as session:
        return list((await session.scalars(query)).all())

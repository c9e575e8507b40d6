"""The caller's post-call satisfaction score belongs to the call.

The FastAGI survey handler publishes SurveyAnswered with the call's Linkedid; this writes the
score on that call's row, whatever the call was about, and closes nothing. The agent and the
request it is scored for come through the call (calls.agent_id, calls.service_request_id).
A follow-up call transferred to the survey also fills that follow-up's satisfaction: ticketing
does that from the same event (ticketing/follow_ups.py: apply_survey).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from crm_core.db import Database
from crm_core.events import EventBus, SurveyAnswered
from crm_core.models import utcnow
from cti.models import Call

log = logging.getLogger(__name__)


async def record_survey(db: Database, answer: SurveyAnswered) -> Call | None:
    """Store the score on the call; None when the score is off the scale or no such call."""
    if not 1 <= answer.score <= 5:
        log.warning("survey score %r off the 1-5 scale, linkedid=%s", answer.score, answer.linkedid)
        return None
    query = select(Call).where(Call.linkedid == answer.linkedid).order_by(Call.id.desc()).limit(1)
    async with db.transaction() as session:
        call = await session.scalar(query.with_for_update())
        if call is None:
            log.warning("survey score for a call not in the log, linkedid=%s", answer.linkedid)
            return None
        call.survey_score, call.surveyed_at = answer.score, utcnow()
    return call


def follow_surveys(db: Database, bus: EventBus) -> None:
    async def on_survey(answer: SurveyAnswered) -> None:
        await record_survey(db, answer)

    bus.subscribe(SurveyAnswered, on_survey)

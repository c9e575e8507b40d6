"""回访: follow-up calls after completion, assigned round-robin, rebooked when unanswered.

Closing a follow-up (answered with a score, or unreachable after N attempts) closes the
service request in the same transaction.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select

from crm_core.events import FollowUpCreated
from crm_core.models import Role, User
from ticketing.context import TicketingContext, Unit
from ticketing.errors import InvalidScore, NoAssignee
from ticketing.journal import Actor
from ticketing.lifecycle import lock_follow_up, lock_request, move_follow_up, move_request
from ticketing.models import FollowUp, RotationPointer, ServiceRequest
from ticketing.policy import Policy
from ticketing.states import (
    FollowUpAction,
    FollowUpState,
    RequestAction,
    follow_up_after_no_answer,
)

POOL = "follow_up"
OPEN = (FollowUpState.PENDING.value, FollowUpState.RESCHEDULED.value)


class SurveyAnswer(Protocol):
    """The CTI issue's `SurveyAnswered` event, by shape (ticketing may not import cti)."""

    @property
    def linkedid(self) -> str: ...
    @property
    def score(self) -> int: ...
    @property
    def caller(self) -> str: ...


async def _pool(unit: Unit, policy: Policy) -> list[int]:
    query = select(User.id).where(User.active.is_(True)).order_by(User.id)
    if policy.follow_up_pool:
        query = query.where(User.username.in_(policy.follow_up_pool))
    else:
        query = query.where(User.role == Role.AGENT.value)
        if policy.follow_up_office:
            query = query.where(User.office == policy.follow_up_office)
    return list((await unit.session.scalars(query)).all())


async def next_representative(unit: Unit, policy: Policy) -> int:
    """Round-robin over the pool: the next user id after the last one given a follow-up."""
    candidates = await _pool(unit, policy)
    if not candidates:
        raise NoAssignee("no active service representative for follow-ups; check follow_up_pool")
    pointer = await unit.session.scalar(
        select(RotationPointer).where(RotationPointer.pool == POOL).with_for_update()
    )
    last = pointer.last_user_id if pointer else 0
    chosen = next((c for c in candidates if c > last), candidates[0])
    if pointer is None:
        unit.session.add(RotationPointer(pool=POOL, last_user_id=chosen))
    else:
        pointer.last_user_id = chosen
    return chosen


async def open_follow_up(
    unit: Unit, policy: Policy, request: ServiceRequest, actor: Actor
) -> FollowUp:
    """Called in the completion transaction: create the task and move the request on."""
    assignee = await next_representative(unit, policy)
    row = FollowUp(
        request_id=request.id,
        assignee_id=assignee,
        state=FollowUpState.PENDING.value,
        attempts=0,
        max_attempts=policy.follow_up_max_attempts,
        due_at=unit.now + policy.follow_up_due,
        created_at=unit.now,
    )
    unit.session.add(row)
    await unit.session.flush()
    await move_request(unit, request, RequestAction.START_FOLLOW_UP, actor)
    unit.events.append(FollowUpCreated(row.id, request.id, assignee))
    return row


async def _close_request(unit: Unit, row: FollowUp, actor: Actor, why: str) -> None:
    request = await lock_request(unit, row.request_id)
    await move_request(unit, request, RequestAction.CLOSE, actor, reason=why)


class FollowUpService:
    def __init__(self, ctx: TicketingContext) -> None:
        self.ctx = ctx

    async def attach_call(self, follow_up_id: int, linkedid: str) -> None:
        """Remember the click-to-dial call, so its IVR survey finds this follow-up."""
        async with self.ctx.unit() as unit:
            row = await lock_follow_up(unit, follow_up_id)
            row.call_linkedid = linkedid

    async def no_answer(self, follow_up_id: int, actor: Actor, note: str | None = None) -> FollowUp:
        async with self.ctx.unit() as unit:
            row = await lock_follow_up(unit, follow_up_id)
            state, attempts = follow_up_after_no_answer(
                FollowUpState(row.state), row.attempts, row.max_attempts
            )
            row.attempts = attempts
            if state == FollowUpState.RESCHEDULED:
                row.due_at = unit.now + self.ctx.policy.follow_up_retry
            await move_follow_up(
                unit,
                row,
                FollowUpAction.NO_ANSWER,
                state,
                actor,
                reason=note,
                detail={"attempt": attempts, "due_at": row.due_at.isoformat()},
            )
            if state == FollowUpState.UNREACHABLE:
                row.completed_at = unit.now
                await _close_request(unit, row, actor, f"回访{attempts}次无应答")
            return row

    async def record_result(
        self,
        follow_up_id: int,
        score: int,
        actor: Actor,
        comment: str | None = None,
        source: str = "rep",
    ) -> FollowUp:
        check_score(score)
        async with self.ctx.unit() as unit:
            row = await lock_follow_up(unit, follow_up_id)
            await self._complete(unit, row, score, comment, source, actor)
            return row

    async def _complete(
        self, unit: Unit, row: FollowUp, score: int, comment: str | None, source: str, actor: Actor
    ) -> None:
        await move_follow_up(
            unit,
            row,
            FollowUpAction.RECORD_RESULT,
            FollowUpState.COMPLETED,
            actor,
            reason=comment,
            detail={"score": score, "source": source},
        )
        row.score, row.comment, row.score_source = score, comment, source
        row.attempts += 1
        row.completed_at = unit.now
        await _close_request(unit, row, actor, f"回访满意度 {score}")

    async def apply_survey(self, answer: SurveyAnswer) -> FollowUp | None:
        """A follow-up call the representative transferred to the IVR survey: the score
        completes that follow-up. Only the follow-up whose call this was (its
        call_linkedid): a caller's survey on any other call is that call's score (cti
        stores it) and changes no follow-up. Returns None when no follow-up matches."""
        if not 1 <= int(answer.score) <= 5:
            return None
        async with self.ctx.unit() as unit:
            row = await unit.session.scalar(
                select(FollowUp)
                .where(FollowUp.call_linkedid == answer.linkedid, FollowUp.state.in_(OPEN))
                .with_for_update()
            )
            if row is None:
                return None
            await self._complete(
                unit, row, int(answer.score), None, "ivr", Actor.system(f"ivr:{answer.linkedid}")
            )
            return row


def check_score(score: int) -> None:
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidScore("satisfaction is a whole number from 1 to 5", field="score")

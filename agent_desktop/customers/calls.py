"""The customer 360's call history and service requests: every call with the customer, with
its recording playable in place where the viewer may hear it, and the requests, open first.

Only `agent_desktop` may join CRM, CTI, ticketing and recordings rows, so this lives here.
Whether a recording is offered follows `recordings.access.can_hear`, the rule the audio
endpoint enforces (and audits) again when it is played.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.orm import aliased

from agent_desktop.common.sessions import SessionUser
from crm_core.db import Database
from crm_core.models import Customer, User
from cti.models import Call
from recordings.access import RecordingOwners, Viewer, can_hear
from recordings.models import Recording, RecordingState
from ticketing.models import ServiceRequest
from ticketing.states import RequestState

CALLS = 30
REQUESTS = 30
CLOSED_STATES = (RequestState.CLOSED.value, RequestState.RESOLVED_BY_PHONE.value)
CALL_AGENT = aliased(User, name="call_agent")


@dataclass(frozen=True)
class CallRow:
    id: int
    at: datetime
    direction: str
    outcome: str | None
    agent: str | None
    talk_seconds: float | None
    disposition: str | None
    recording_id: int | None  # set only when complete and the viewer may hear it
    request_id: int | None  # the service request the call belongs to
    request_number: str | None


@dataclass(frozen=True)
class RequestRow:
    id: int
    number: str | None
    state: str
    category: str
    description: str
    created_at: datetime
    open: bool


async def customer_calls(db: Database, customer: Customer, user: SessionUser) -> list[CallRow]:
    viewer = Viewer(user.id, user.role, user.region)
    query = (
        select(
            Call,
            CALL_AGENT.display_name,
            CALL_AGENT.region,
            Recording.id,
            Recording.state,
            ServiceRequest.number,
        )
        .outerjoin(CALL_AGENT, CALL_AGENT.id == Call.agent_id)
        .outerjoin(Recording, Recording.call_id == Call.id)
        .outerjoin(ServiceRequest, ServiceRequest.id == Call.service_request_id)
        .where(Call.customer_id == customer.id)
        .order_by(Call.entered_at.desc(), Call.id.desc())
        .limit(CALLS)
    )
    async with db.transaction() as session:
        rows = (await session.execute(query)).all()
    calls: dict[int, CallRow] = {}  # a call with several recordings offers a playable one
    for call, agent_name, agent_region, recording_id, recording_state, number in rows:
        owners = RecordingOwners(call.agent_id, customer.owner_id, customer.region, agent_region)
        playable = recording_state == RecordingState.COMPLETE.value and can_hear(viewer, owners)
        if call.id in calls and not playable:
            continue
        calls[call.id] = CallRow(
            call.id,
            call.entered_at,
            call.direction,
            call.outcome,
            agent_name,
            call.talk_seconds,
            call.disposition,
            recording_id if playable else None,
            call.service_request_id,
            number,
        )
    return list(calls.values())


async def customer_requests(db: Database, customer_id: int, user: SessionUser) -> list[RequestRow]:
    if user.role == "technician":
        return []  # technicians see requests through their own work orders only
    still_open = case((ServiceRequest.state.in_(CLOSED_STATES), 1), else_=0)
    query = (
        select(ServiceRequest)
        .where(ServiceRequest.customer_id == customer_id)
        .order_by(still_open, ServiceRequest.created_at.desc())
        .limit(REQUESTS)
    )
    async with db.transaction() as session:
        rows = (await session.scalars(query)).all()
    return [
        RequestRow(
            r.id,
            r.number,
            r.state,
            r.category,
            r.description[:60],
            r.created_at,
            r.state not in CLOSED_STATES,
        )
        for r in rows
    ]

"""Read models for the ticketing pages: one request's timeline (transitions, calls with their
recordings, outgoing and incoming SMS), names for ids, and customers' dialable phones.

Only `agent_desktop` may join ticketing, CTI and SMS rows, so the joins live here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from crm_core.db import Database
from crm_core.models import Customer, PhoneNumber, User, Vehicle
from crm_core.phones import mask, mask_in_text, normalize
from cti.models import Call
from recordings.access import RecordingOwners, Viewer, can_hear
from recordings.models import Recording, RecordingState
from sms_gateway.models import SmsInbound, SmsMessage
from ticketing.models import FollowUp, ServiceRequest, Transition, WorkOrder

# Route names a recordings feature may register; the timeline links the first one present.


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # transition | call | recording | sms_out | sms_in
    entity: str  # request | work_order | follow_up | call | sms
    entity_id: int | None
    title: str  # an action, call direction or SMS state (translated by the page)
    detail: str  # reason, SMS text, number
    who: str  # a display name, or the actor string (sms:+86…, ivr:…, system)
    link: str | None = None
    from_state: str | None = None  # transitions only
    to_state: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


@dataclass(frozen=True)
class DialablePhone:
    id: int
    label: str
    shown: str  # masked unless the viewer may see full numbers


async def user_names(db: Database, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    async with db.transaction() as s:
        rows = await s.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
        return {i: n for i, n in rows.all()}


async def customers_by_id(db: Database, ids: Iterable[int]) -> dict[int, Customer]:
    wanted = set(ids)
    if not wanted:
        return {}
    async with db.transaction() as s:
        rows = await s.scalars(select(Customer).where(Customer.id.in_(wanted)))
        return {c.id: c for c in rows.all()}


async def vehicle_of(db: Database, vehicle_id: int | None) -> Vehicle | None:
    if vehicle_id is None:
        return None
    async with db.transaction() as s:
        return await s.get(Vehicle, vehicle_id)


async def dialable_phones(db: Database, customer_id: int, full: bool) -> list[DialablePhone]:
    async with db.transaction() as s:
        rows = (
            await s.scalars(
                select(PhoneNumber)
                .where(PhoneNumber.customer_id == customer_id)
                .order_by(PhoneNumber.id)
            )
        ).all()
    phones = []
    for row in rows:
        phone = normalize(row.e164)
        display = phone.display if phone else row.raw
        phones.append(DialablePhone(row.id, row.label, display if full else mask(display)))
    return phones


async def phone_number_of(db: Database, customer_id: int, phone_id: int) -> str | None:
    async with db.transaction() as s:
        row = await s.get(PhoneNumber, phone_id)
    return row.e164 if row is not None and row.customer_id == customer_id else None


async def _playable(
    s: Any, row: ServiceRequest, calls: list[Call], listener: Viewer | None
) -> set[int]:
    """The calls whose recording is complete and that this listener may hear: the rule the
    audio endpoint enforces (and audits) again when it is played."""
    if listener is None or not calls:
        return set()
    customer = await s.get(Customer, row.customer_id)
    query = (
        select(Recording.call_id, Recording.agent_id, User.region)
        .outerjoin(User, User.id == Recording.agent_id)
        .where(
            Recording.call_id.in_([c.id for c in calls]),
            Recording.state == RecordingState.COMPLETE.value,
        )
    )
    playable = set()
    for call_id, agent_id, agent_region in (await s.execute(query)).all():
        owners = RecordingOwners(
            agent_id,
            customer.owner_id if customer else None,
            customer.region if customer else None,
            agent_region,
        )
        if can_hear(listener, owners):
            playable.add(call_id)
    return playable


async def _calls(s: Any, row: ServiceRequest, follow_ups: list[FollowUp]) -> list[Call]:
    linkedids = {row.call_linkedid} | {f.call_linkedid for f in follow_ups}
    linkedids.discard(None)
    conditions = [Call.service_request_id == row.id]
    if linkedids:
        conditions.append(Call.linkedid.in_(linkedids))
    return list((await s.scalars(select(Call).where(or_(*conditions)).order_by(Call.id))).all())


async def timeline(
    db: Database, request_id: int, full_numbers: bool, listener: Viewer | None = None
) -> list[TimelineEntry]:
    """Everything that happened to one request, oldest first. A recording entry links to
    its playback only when `listener` may hear it."""
    shown = (lambda n: n) if full_numbers else mask

    def text(body: str) -> str:
        return body if full_numbers else mask_in_text(body)

    async with db.transaction() as s:
        row = await s.get(ServiceRequest, request_id)
        if row is None:
            return []
        orders = list(
            (await s.scalars(select(WorkOrder).where(WorkOrder.request_id == request_id))).all()
        )
        follow_ups = list(
            (await s.scalars(select(FollowUp).where(FollowUp.request_id == request_id))).all()
        )
        transitions = (
            await s.scalars(
                select(Transition)
                .where(Transition.request_id == request_id)
                .order_by(Transition.id)
            )
        ).all()
        calls = await _calls(s, row, follow_ups)
        playable = await _playable(s, row, calls, listener)
        outgoing = (
            await s.scalars(select(SmsMessage).where(SmsMessage.request_id == request_id))
        ).all()
        incoming = (
            (
                await s.scalars(
                    select(SmsInbound).where(SmsInbound.work_order_id.in_([o.id for o in orders]))
                )
            ).all()
            if orders
            else []
        )
    names = await user_names(db, [t.user_id for t in transitions] + [c.agent_id for c in calls])
    entries = [
        TimelineEntry(
            t.at,
            "transition",
            t.entity,
            t.entity_id,
            t.action,
            t.reason or "",
            names.get(t.user_id or 0, t.actor),
            from_state=t.from_state,
            to_state=t.to_state,
        )
        for t in transitions
    ]
    entries += _call_entries(calls, names, shown, playable)
    entries += [
        TimelineEntry(
            m.created_at,
            "sms_out",
            "sms",
            m.id,
            m.provider_status or m.state,
            text(m.body),
            shown(m.to),
        )
        for m in outgoing
    ]
    entries += [
        TimelineEntry(
            m.received_at,
            "sms_in",
            "sms",
            m.id,
            m.outcome or "",
            text(m.body),
            shown(m.from_number),
        )
        for m in incoming
    ]
    return sorted(entries, key=lambda e: (e.at, e.kind != "transition"))


def _call_entries(
    calls: list[Call], names: dict[int, str], shown: Any, playable: set[int]
) -> list[TimelineEntry]:
    """Each call of the request, and its recording (with playback where it may be heard)."""
    entries = []
    for call in calls:
        entries.append(
            TimelineEntry(
                call.entered_at,
                "call",
                "call",
                call.id,
                call.direction,
                " · ".join(
                    x
                    for x in (shown(call.number_e164 or call.number), call.outcome or call.status)
                    if x
                ),
                names.get(call.agent_id or 0, ""),
            )
        )
        if call.recording_path:
            entries.append(
                TimelineEntry(
                    call.ended_at or call.entered_at,
                    "recording",
                    "call",
                    call.id,
                    "recording",
                    call.recording_path.rsplit("/", 1)[-1],
                    names.get(call.agent_id or 0, ""),
                    f"/recordings/call/{call.id}" if call.id in playable else None,
                )
            )
    return entries

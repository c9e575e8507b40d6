"""Which service request a call belongs to, in the call log.

A call is linked when a request is opened from it (ticketing publishes CallLinkRequested),
when the caller keys a request number in the IVR (the identify handler does the same), when
an agent dials from a request (click_to_dial writes it on the new row) and when an agent links
it by hand from the call log (`link_call(..., replace=True)`). Automatic links never replace
an existing one; a hand-made link does. After the row is written, CallLinkedToRequest tells
recordings, so the call's recording follows.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import select

from crm_core.db import Database
from crm_core.events import CallLinkedToRequest, CallLinkRequested, EventBus
from cti.models import Call

log = logging.getLogger(__name__)
# A link asked for early in a call (the IVR) may come before the CTI database worker has
# written the call's first row; it is tried again this often, this many times.
RETRY_SECONDS = 0.5
RETRIES = 20


@dataclass(frozen=True)
class CallKey:
    """One call, by its call-log id or by its Linkedid (what ticketing and the IVR know)."""

    call_id: int | None = None
    linkedid: str | None = None


async def link_call(
    db: Database, bus: EventBus, key: CallKey, request_id: int, *, replace: bool = False
) -> Call | None:
    """Write the link on the call's row; None when no such call is logged, or (unless
    `replace`) when it already belongs to another request."""
    if key.call_id is None and not key.linkedid:
        raise ValueError("link_call needs a call id or a Linkedid")
    query = (
        select(Call).where(Call.id == key.call_id)
        if key.call_id is not None
        else select(Call).where(Call.linkedid == key.linkedid).order_by(Call.id.desc()).limit(1)
    )
    async with db.transaction() as session:
        call = await session.scalar(query.with_for_update())
        if call is None:
            log.info("no logged call %s to link to request %s", key, request_id)
            return None
        if call.service_request_id not in (None, request_id) and not replace:
            log.info(
                "call %s already belongs to request %s; not moved to %s",
                call.id,
                call.service_request_id,
                request_id,
            )
            return None
        call.service_request_id = request_id
    await bus.publish(CallLinkedToRequest(call.id, call.server, call.linkedid, request_id))
    return call


async def _is_logged(db: Database, linkedid: str) -> bool:
    async with db.transaction() as session:
        return await session.scalar(select(Call.id).where(Call.linkedid == linkedid)) is not None


def follow_link_requests(db: Database, bus: EventBus) -> set[asyncio.Task[None]]:
    """Apply every CallLinkRequested on the bus to the call log. Returns the set of links
    still waiting for their call's row (for a clean shutdown)."""
    waiting: set[asyncio.Task[None]] = set()

    async def link_when_logged(event: CallLinkRequested) -> None:
        for _ in range(RETRIES):
            await asyncio.sleep(RETRY_SECONDS)
            if await _is_logged(db, event.linkedid):
                await link_call(db, bus, CallKey(linkedid=event.linkedid), event.request_id)
                return
        log.warning("call %s never logged; request %s not linked", event.linkedid, event.request_id)

    async def on_requested(event: CallLinkRequested) -> None:
        if await _is_logged(db, event.linkedid):
            await link_call(db, bus, CallKey(linkedid=event.linkedid), event.request_id)
            return
        task = asyncio.create_task(link_when_logged(event))
        waiting.add(task)
        task.add_done_callback(waiting.discard)

    bus.subscribe(CallLinkRequested, on_requested)
    return waiting

"""A recording belongs to the service request its call belongs to.

The call log (cti) owns the link; this follows CallLinkedToRequest onto the recordings of
that call. A recording ingested after its call was linked gets the link from its call's
CallRecordingFinished. One whose row was claimed just between the two (or a node that died
between them) is put right by the composition root's reconcile (agent_desktop/recordings/
wiring.py), which runs before every retention purge: the retention rule "keep recordings of
open requests" always sees the link.
"""

from __future__ import annotations

from sqlalchemy import or_, update

from crm_core.db import Database
from crm_core.events import CallLinkedToRequest
from recordings.models import Recording


async def follow_call_link(db: Database, event: CallLinkedToRequest) -> int:
    """Set the request on every recording of the linked call; returns how many."""
    statement = (
        update(Recording)
        .where(
            or_(
                Recording.call_id == event.call_id,
                (Recording.server == event.server) & (Recording.linkedid == event.linkedid),
            )
        )
        .values(service_request_id=event.request_id)
    )
    async with db.transaction() as session:
        result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)

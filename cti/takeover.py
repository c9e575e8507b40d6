"""A node that takes over an Asterisk server from another (a cluster's new AMI leader):
the calls the call log still shows in progress on that server but the PBX no longer has.

They ended while the old leader was dying or while nobody led, and the old leader's last
writes about them may have been refused by fencing (crm_core/cluster/fence.py). They are
closed from the PBX's call records when this host can read them (the way calls of an AMI
outage are, cti/outage_recovery.py), otherwise ended now with `unknown` as their outcome
and the reason in the note: an honest "we do not know" rather than an open call for ever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import utcnow
from cti.call_events import Direction, Outcome
from cti.models import Call
from cti.outage_recovery import read_records, recovered_calls
from cti.tracker import CallTracker, TrackedCall
from cti.tracker_resync import log_recovered

log = logging.getLogger(__name__)
# Open rows older than this are not this takeover's business (a call can't last a day).
LOOKBACK = timedelta(hours=24)
MARGIN_S = 15.0
UNKNOWN_REASON = "ended while no node led its Asterisk server (cluster takeover)"


async def open_calls(db: Database, server: str) -> dict[str, datetime]:
    """linkedid → started, of the server's calls still in progress in the call log."""
    query = select(Call.linkedid, Call.entered_at).where(
        Call.server == server, Call.status == "in_progress", Call.entered_at > utcnow() - LOOKBACK
    )
    async with db.connect() as conn:
        return {str(linkedid): at for linkedid, at in (await conn.execute(query)).all()}


async def close_orphans(
    db: Database,
    tracker: CallTracker,
    server: str,
    live: set[str],
    records: Path | None,
    recording_of: Callable[[str, str], str | None] | None,
) -> list[str]:
    """End the server's open calls that are not live and not tracked; the linkedids."""
    rows = await open_calls(db, server)
    orphans = {k: v for k, v in rows.items() if k not in live and (server, k) not in tracker.calls}
    if not orphans:
        return []
    since = min(at.timestamp() for at in orphans.values()) - MARGIN_S
    found = await asyncio.to_thread(read_records, records, since) if records else []
    from_records = {c.linkedid: c for c in recovered_calls(found) if c.linkedid in orphans}
    for linkedid, started in orphans.items():
        call = from_records.get(linkedid)
        if call is not None:
            recording = recording_of(server, linkedid) if recording_of else None
            log_recovered(tracker, server, call, recording)
        else:
            _end_unknown(tracker, server, linkedid, started.timestamp())
    log.warning(
        "takeover %s: %d call(s) that ended meanwhile closed (%d from the call records)",
        server,
        len(orphans),
        len(from_records),
    )
    return list(orphans)


def _end_unknown(tracker: CallTracker, server: str, linkedid: str, started_at: float) -> None:
    call = TrackedCall(
        server=server,
        linkedid=linkedid,
        direction=Direction.INBOUND,
        caller="",
        caller_name="",
        did="",
        started_at=started_at,
    )
    tracker.calls[(server, linkedid)] = call
    tracker.end(call, Outcome.UNKNOWN, time.time(), reason=UNKNOWN_REASON)

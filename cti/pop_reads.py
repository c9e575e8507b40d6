"""Open pops read back from their rows, for a desktop that (re)connects to a node that
does not lead the call's Asterisk server: that node has no pops in memory (the leader
has), and the rows hold every pop as the object the browser was sent."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import utcnow
from cti.models import ScreenPop

OPEN_STATES = ("ringing", "connected")
# A pop row left open by a leader that died before closing it is not shown for ever.
NEWEST = timedelta(hours=4)


async def open_pops(db: Database, user_id: int) -> list[dict[str, Any]]:
    """The agent's pops still ringing or connected, oldest first, in the hello's shape."""
    query = (
        select(ScreenPop.payload, ScreenPop.state)
        .where(
            ScreenPop.agent_id == user_id,
            ScreenPop.state.in_(OPEN_STATES),
            ScreenPop.closed_at.is_(None),
            ScreenPop.created_at > utcnow() - NEWEST,
        )
        .order_by(ScreenPop.created_at)
    )
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    pops = []
    for payload, state in rows:
        pop = json.loads(payload) if isinstance(payload, str) else dict(payload)
        pop["state"] = state  # the row's state is newer than the object first sent
        pops.append(pop)
    return pops


POP_FIELDS = ("id", "state", "linkedid", "caller", "queue", "rang_at")


async def open_pop_rows(db: Database, server: str, linkedids: list[str]) -> list[dict[str, Any]]:
    """The open pops of these calls as stored: what a node taking over a server's calls
    (another node popped them) needs so as not to pop them again."""
    if not linkedids:
        return []
    query = select(
        ScreenPop.id,
        ScreenPop.linkedid,
        ScreenPop.ring_id,
        ScreenPop.agent_id,
        ScreenPop.state,
        ScreenPop.payload,
    ).where(
        ScreenPop.server == server,
        ScreenPop.linkedid.in_(linkedids),
        ScreenPop.state.in_(OPEN_STATES),
        ScreenPop.closed_at.is_(None),
    )
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    found = []
    for pop_id, linkedid, ring_id, agent_id, state, payload in rows:
        body = json.loads(payload) if isinstance(payload, str) else dict(payload)
        found.append(
            {
                "id": pop_id,
                "linkedid": linkedid,
                "ring_id": ring_id,
                "agent_id": agent_id,
                "state": state,
                "caller": str(body.get("caller", "")),
                "queue": body.get("queue"),
                "rang_at": float(body.get("rang_at") or 0.0),
                "payload": {k: v for k, v in body.items() if k not in POP_FIELDS},
            }
        )
    return found

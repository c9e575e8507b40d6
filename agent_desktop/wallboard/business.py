"""What the wallboard adds to cti's live figures (老板视图): the business side from ticketing
(open requests by region and stage, overdue dispatches, follow-ups due today), today's
service level and abandon rate per queue, and the agents in wrap-up.

cti and ticketing never import each other; this module, in the composition root, is where
their figures meet. Everything here is computed once per broadcast tick for every screen;
`for_region` then cuts one supervisor's copy.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import cti.kpi as kpi
from crm_core.db import Database
from ticketing.board import OPEN_STAGES, business_board

LiveSnapshot = Callable[[], Awaitable[dict[str, Any]]]
# An agent entry of cti's wallboard in after-call work has this state (cti/agent_state.py:
# MemberState.state; a break outranks it).
WRAPUP_STATE = "wrapup"


def agents_in_wrapup(agents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The agents in wrap-up, once each (an agent is a member of several queues)."""
    names: dict[str, None] = {}
    for agent in agents:
        if agent.get("state") == WRAPUP_STATE:
            names.setdefault(str(agent.get("member_name") or agent.get("interface") or "?"))
    return {"count": len(names), "names": sorted(names)}


def queue_kpis(rows: Iterable[kpi.QueueToday]) -> list[dict[str, Any]]:
    """Today's figures per queue (since 00:00 Beijing time); percentages and seconds."""
    return [asdict(row) for row in rows]


def for_region(business: dict[str, Any], region: str | None) -> dict[str, Any]:
    """A supervisor with a region sees that region's requests only; everyone else sees all."""
    if region is None:
        return business
    return {**business, "regions": [r for r in business["regions"] if r["region"] == region]}


class BoardComposer:
    """The full wallboard snapshot: cti's live figures plus everything above."""

    def __init__(self, db: Database, live: LiveSnapshot, timezone: str) -> None:
        self.db = db
        self.live = live
        self.timezone = timezone

    async def snapshot(self) -> dict[str, Any]:
        snap = await self.live()
        now = datetime.fromtimestamp(snap.get("at") or time.time(), UTC)
        regions = await business_board(self.db, now, self.timezone)
        snap["business"] = {
            "stages": list(OPEN_STAGES),
            "regions": [r.as_dict() for r in regions],
        }
        snap["queues_today"] = queue_kpis(await kpi.today_by_queue(self.db, now))
        snap["wrapup"] = agents_in_wrapup(snap.get("agents", []))
        return snap

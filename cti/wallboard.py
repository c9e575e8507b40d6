"""The supervisor wallboard's numbers: live queue and agent state plus today's call totals.

Live parts come from memory (tracker, agent states) on every call; the database totals are
cached for a few seconds, so a wallboard refreshed every second costs one query per period.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import case, func, select

from crm_core.db import Database
from cti.agent_state import AgentStates
from cti.call_queries import Viewer, start_of_today, unprocessed_by_agent
from cti.models import Call
from cti.tracker import CallState, CallTracker

SERVICE_LEVEL_SECONDS = 20
DB_CACHE_SECONDS = 5.0
WAITING = (CallState.QUEUED, CallState.RINGING)


class Wallboard:
    def __init__(self, db: Database, tracker: CallTracker, agents: AgentStates) -> None:
        self.db = db
        self.tracker = tracker
        self.agents = agents
        self._totals: tuple[float, dict[str, dict[str, float]], list[dict[str, Any]]] | None = None

    async def _today(self) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
        now = time.monotonic()
        if self._totals is not None and now - self._totals[0] < DB_CACHE_SECONDS:
            return self._totals[1], self._totals[2]
        answered = Call.outcome.in_(("answered", "transferred"))
        within = answered & (Call.wait_seconds <= SERVICE_LEVEL_SECONDS)
        query = (
            select(
                Call.queue,
                func.sum(case((answered, 1), else_=0)).label("answered"),
                func.sum(case((Call.outcome == "abandoned", 1), else_=0)).label("abandoned"),
                func.sum(case((Call.outcome == "missed", 1), else_=0)).label("missed"),
                func.sum(case((within, 1), else_=0)).label("within"),
            )
            .where(
                Call.direction == "inbound",
                Call.status == "ended",
                Call.entered_at >= start_of_today(),
                Call.queue.is_not(None),
            )
            .group_by(Call.queue)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        totals = {
            r.queue: {
                "answered": int(r.answered or 0),
                "abandoned": int(r.abandoned or 0),
                "missed": int(r.missed or 0),
                "within": int(r.within or 0),
            }
            for r in rows
        }
        unprocessed = await unprocessed_by_agent(self.db, Viewer(0, "admin", None))
        self._totals = (now, {k: dict(v) for k, v in totals.items()}, unprocessed)
        return self._totals[1], unprocessed

    def _live_queues(self) -> dict[str, dict[str, Any]]:
        now = time.time()
        queues: dict[str, dict[str, Any]] = defaultdict(lambda: {"waiting": 0, "longest_wait": 0.0})
        for call in self.tracker.calls.values():
            if call.state in WAITING and call.queue:
                entry = queues[call.queue]
                entry["waiting"] += 1
                waited = now - (call.queued_at or call.started_at)
                entry["longest_wait"] = round(max(entry["longest_wait"], waited), 1)
        for member in self.agents.all():
            counts = queues[member.queue].setdefault("agents", Counter())
            counts[member.state] += 1
        return queues

    def _answered_calls(self) -> dict[str, str]:
        """Agent interface -> Linkedid of the live call that agent answered."""
        return {
            call.answered_by: call.linkedid
            for call in self.tracker.calls.values()
            if call.state is CallState.CONNECTED and call.answered_by
        }

    async def snapshot(self) -> dict[str, Any]:
        totals, unprocessed = await self._today()
        live = self._live_queues()
        queues = []
        for name in sorted(set(live) | set(totals)):
            today = totals.get(name, {"answered": 0, "abandoned": 0, "missed": 0, "within": 0})
            offered = today["answered"] + today["abandoned"] + today["missed"]
            agents = dict(live.get(name, {}).get("agents", Counter()))
            queues.append(
                {
                    "queue": name,
                    "waiting": live.get(name, {}).get("waiting", 0),
                    "longest_wait": live.get(name, {}).get("longest_wait", 0.0),
                    "agents": {
                        "available": agents.get("available", 0),
                        "ringing": agents.get("ringing", 0),
                        "busy": agents.get("busy", 0) + agents.get("on_hold", 0),
                        "paused": agents.get("paused", 0),
                        "wrapup": agents.get("wrapup", 0),  # after-call work (cti/wrapup.py)
                        "unavailable": agents.get("unavailable", 0),
                    },
                    "answered_today": today["answered"],
                    "abandoned_today": today["abandoned"],
                    "missed_today": today["missed"],
                    "service_level": round(100.0 * today["within"] / offered, 1)
                    if offered
                    else None,
                }
            )
        on_call = self._answered_calls()
        board = [
            {
                **m.as_dict(),
                "in_state_seconds": round(time.time() - m.since, 1),
                "linkedid": on_call.get(m.interface),  # the call a supervisor may listen to
            }
            for m in self.agents.all()
        ]
        return {
            "v": 1,
            "type": "wallboard",
            "at": time.time(),
            "queues": queues,
            "agents": board,
            "unprocessed": unprocessed,
            "service_level_seconds": SERVICE_LEVEL_SECONDS,
        }

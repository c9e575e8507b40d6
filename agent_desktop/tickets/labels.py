"""How ticket pages render: the label tables and local times, and which actions need a reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from agent_desktop.common.labels import TICKET_LABELS
from agent_desktop.common.pages import render
from agent_desktop.context import CONTEXT_KEY

# Actions a reason must come with (the service refuses them without one).
NEEDS_REASON = frozenset({"reject", "reopen", "resolve_by_phone"})


def ticket_page(request: web.Request, template: str, **values: Any) -> web.Response:
    """render() plus the label tables and `when` (UTC or ISO text → local time)."""
    zone = ZoneInfo(request.app[CONTEXT_KEY].settings.timezone)

    def when(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if not value:
            return ""
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(zone).strftime(fmt)

    return render(request, template, T=TICKET_LABELS, when=when, **values)

"""The agent desktop page. The call panel is filled by desktop*.js from the pops on /ws.

The page carries everything its scripts need to speak the user's language: the translated
strings as a JSON data block (not executable, so the strict CSP allows it).
"""

from __future__ import annotations

import json

from aiohttp import web

from agent_desktop.common.labels import CATEGORY_LABELS, PRIORITY_LABELS
from agent_desktop.common.pages import add_nav, render, translator
from agent_desktop.context import CONTEXT_KEY, AppContext
from cti import dispositions

# English msgids the scripts show; translated into the page's JSON data block.
JS_STRINGS = (
    "Ringing",
    "Connected",
    "Wrap-up",
    "After-call work",
    "Withdrawn",
    "Call ended",
    "Incoming call",
    "Waiting",
    "Talking",
    "Queue",
    "IVR key",
    "Unknown caller",
    "Several customers have this number",
    "A different caller",
    "Choose",
    "Create customer",
    "Possible duplicates",
    "Create anyway",
    "Customer created",
    "Saved",
    "Processed",
    "Dial",
    "Dialling…",
    "Dial failed",
    "Contacts",
    "Vehicles",
    "Open service requests",
    "Recent calls",
    "Activities",
    "Recording",
    "Play recording",
    "Open customer file",
    "Service request created",
    "Looking up the call…",
    "The call is not in the log yet; try again in a moment",
    "Connected to the server",
    "Reconnecting…",
    "Paused",
    "Available",
    "Busy",
    "Unavailable",
    "Not in any queue",
    "Nothing due",
    "No calls",
    "Birthday",
    "Follow-up due",
    "Response overdue",
    "Resolution overdue",
    "Dispatch overdue",
    "Acceptance overdue",
    "Follow-up overdue",
    "SLA breaches",
    "Call back",
    "Called back",
    "Missed",
    "Abandoned",
    "Answered",
    "Inbound",
    "Outbound",
    "in another scope",
    "No matches",
    "Warranty until",
    "Owner",
    "Choose a customer first",
)


def strings_for(request: web.Request, labels: dict[str, str]) -> str:
    """`labels`: every disposition code's label, the deactivated ones too (old calls)."""
    _ = translator(request)
    table = {m: _(m) for m in JS_STRINGS}
    table.update({f"disposition.{code}": label for code, label in labels.items()})
    # "</" cannot end the data block early when escaped like this.
    return json.dumps(table, ensure_ascii=False).replace("</", "<\\/")


async def desktop_page(request: web.Request) -> web.Response:
    # The codes and their labels are the admin's (系统管理 → 处理结果), shown as written.
    codes = await dispositions.all_codes(request.app[CONTEXT_KEY].db)
    return render(
        request,
        "desktop.html",
        dispositions=[(d.code, d.label) for d in codes if d.active],
        categories=list(CATEGORY_LABELS.items()),
        priorities=list(PRIORITY_LABELS.items()),
        strings_json=strings_for(request, {d.code: d.label for d in codes}),
    )


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_get("/desktop", desktop_page)
    add_nav(app, "/desktop", "Desktop", ("agent", "supervisor", "admin"))

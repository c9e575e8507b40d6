"""POST /api/calls/{call_id}/survey: the agent sends the customer of their live call to the
IVR satisfaction survey (a follow-up call's 满意度 ends this way); see cti/survey_transfer.py."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.context import AppContext
from agent_desktop.services import AMI_KEY, BRIDGE_KEY
from crm_core.errors import ValidationError
from cti import call_queries
from cti.survey_transfer import NotOnThatCall, transfer_to_survey


@require_roles("agent", "supervisor", "admin")
async def send_to_survey(request: web.Request) -> web.Response:
    user = current_user(request)
    try:
        call_id = int(request.match_info["call_id"])
    except ValueError:
        raise ValidationError("call id must be a number") from None
    db = request.app[BRIDGE_KEY].db
    viewer = call_queries.Viewer(user.id, user.role, user.region)
    call = await call_queries.get_call(db, viewer, call_id)
    if call.status != "in_progress" or call.linkedid.startswith("pending"):
        raise NotOnThatCall("that call is not in progress")
    if not user.phone_interface:
        raise NotOnThatCall("you have no phone extension, so you are on no call")
    channel = await transfer_to_survey(
        request.app[AMI_KEY], call.server, call.linkedid, user.phone_interface
    )
    return web.json_response({"call_id": call.id, "survey": "started", "channel": channel})


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_post(r"/api/calls/{call_id:\d+}/survey", send_to_survey)

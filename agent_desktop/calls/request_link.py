"""Link a call to a service request by hand, from the call history (客户 360).

The automatic links (a request opened from the call, a request number keyed in the IVR, a
call placed from a request) need no agent; this is for the call that was about a request
anyway, say a customer calling back about an open job. The call must be visible to the agent
(their own, or their region's for a supervisor) and the request must be the same customer's.
A hand-made link replaces an automatic one; every link is audited.
"""

from __future__ import annotations

from aiohttp import web

from agent_desktop.common.audit import audit
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.context import CONTEXT_KEY, AppContext
from crm_core.errors import ValidationError
from cti import call_queries
from cti.request_links import CallKey, link_call
from ticketing import queries as ticket_queries


async def _request_id(request: web.Request) -> int:
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("the request body must be a JSON object") from None
    value = body.get("service_request_id") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(
            "service_request_id must be the id of a service request", field="service_request_id"
        )
    return value


@require_roles("agent", "supervisor", "admin")
async def link_to_request(request: web.Request) -> web.Response:
    ctx: AppContext = request.app[CONTEXT_KEY]
    user = current_user(request)
    try:
        call_id = int(request.match_info["call_id"])
    except ValueError:
        raise ValidationError("call id must be a number") from None
    request_id = await _request_id(request)
    viewer = call_queries.Viewer(user.id, user.role, user.region)
    call = await call_queries.get_call(ctx.db, viewer, call_id)
    service_request = await ticket_queries.get_request(ctx.db, request_id)
    if call.customer_id is None:
        raise ValidationError("this call has no customer yet: link it to the customer first")
    if service_request.customer_id != call.customer_id:
        raise ValidationError(
            f"service request {service_request.number} is another customer's",
            field="service_request_id",
        )
    before = call.service_request_id
    await link_call(ctx.db, ctx.bus, CallKey(call_id=call.id), request_id, replace=True)
    await audit(
        ctx,
        user,
        "call_linked_to_request",
        "call",
        str(call.id),
        client_ip(request, ctx.settings),
        {"before": before, "after": request_id},
    )
    return web.json_response(
        {"call_id": call.id, "service_request_id": request_id, "number": service_request.number}
    )


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_post(r"/api/calls/{call_id:\d+}/service-request", link_to_request)

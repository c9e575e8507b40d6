"""The services one feature starts and other features use, each kept on the app under a key.

Features never import each other; they meet here. The CTI feature (calls/) puts the AMI client,
the CTI bridge and the agents' WebSocket hub on the app at start-up; `ticketing_for` builds
ticketing's services once, wired to write their SMS into the outbox, for whichever feature
(tickets, sms) asks first.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from agent_desktop.common.ws_hub import WebSocketHub
from agent_desktop.context import CONTEXT_KEY, AppContext
from cti.ami_client import AmiClient
from cti.bridge import CtiBridge
from sms_gateway.outbox import enqueue_notice
from ticketing.context import TicketingContext
from ticketing.field import FieldCommands
from ticketing.follow_ups import FollowUpService
from ticketing.policy import Policy
from ticketing.requests import ServiceRequestService
from ticketing.work_orders import WorkOrderService

BRIDGE_KEY = web.AppKey("cti_bridge", CtiBridge)
HUB_KEY = web.AppKey("ws_hub", WebSocketHub)
AMI_KEY = web.AppKey("ami_client", AmiClient)


@dataclass
class Ticketing:
    """Ticketing's services, wired to write their SMS into the outbox."""

    ctx: TicketingContext
    requests: ServiceRequestService
    orders: WorkOrderService
    follow_ups: FollowUpService
    field: FieldCommands


TICKETING_KEY = web.AppKey("hotline.ticketing", Ticketing)


def ticketing_for(app: web.Application) -> Ticketing:
    """One set of ticketing services per app; created by the first feature that needs it
    (at set-up time, before the app is frozen)."""
    if TICKETING_KEY not in app:
        ctx: AppContext = app[CONTEXT_KEY]
        tctx = TicketingContext(
            ctx.db, notify=enqueue_notice, bus=ctx.bus, policy=Policy.from_settings(ctx.settings)
        )
        orders = WorkOrderService(tctx)
        app[TICKETING_KEY] = Ticketing(
            tctx,
            ServiceRequestService(tctx),
            orders,
            FollowUpService(tctx),
            FieldCommands(tctx, orders),
        )
    return app[TICKETING_KEY]

"""The services one feature starts and other features use, each kept on the app under a key.

Features never import each other; they meet here. The CTI feature (calls/) puts the AMI client,
the CTI bridge and the agents' WebSocket hub on the app at start-up; `ticketing_for` builds
ticketing's services once, wired to write their SMS into the outbox, for whichever feature
(tickets, sms) asks first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from agent_desktop.common.ws_hub import WebSocketHub
from agent_desktop.context import CONTEXT_KEY, AppContext
from crm_core.settings import Settings
from cti.ami_client import AmiClient
from cti.bridge import CtiBridge
from sms_gateway.outbox import enqueue_notice
from ticketing.context import TicketingContext
from ticketing.field import FieldCommands
from ticketing.field_links import FieldLinks
from ticketing.follow_ups import FollowUpService
from ticketing.mobile import MobileFieldService
from ticketing.offers import OfferService
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
    # Offers to several technicians and the technician's mobile page (issue #21 §2).
    offers: OfferService = dataclasses.field(init=False)
    mobile: MobileFieldService = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.offers = OfferService(self.ctx)
        self.mobile = MobileFieldService(self.ctx, self.orders)


TICKETING_KEY = web.AppKey("hotline.ticketing", Ticketing)


def ticketing_for(app: web.Application) -> Ticketing:
    """One set of ticketing services per app; created by the first feature that needs it
    (at set-up time, before the app is frozen)."""
    if TICKETING_KEY not in app:
        ctx: AppContext = app[CONTEXT_KEY]
        tctx = TicketingContext(
            ctx.db,
            notify=enqueue_notice,
            bus=ctx.bus,
            policy=Policy.from_settings(ctx.settings),
            links=field_links(ctx.settings),
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


def field_base_url(settings: Settings) -> str:
    """Where a phone opens the mobile page: field_link_base_url, else public_base_url, else
    this server's own address."""
    base = settings.field_link_base_url or settings.public_base_url
    return (base or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")


def field_links(settings: Settings) -> FieldLinks:
    return FieldLinks(
        settings.field_link_secret,
        field_base_url(settings),
        timedelta(hours=settings.field_link_hours),
    )

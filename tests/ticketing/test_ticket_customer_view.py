"""What the pop and the IVR learn about a customer's requests (ticketing.customer_view and
its wiring in agent_desktop.calls.ivr)."""

from __future__ import annotations

from aiohttp import web
from ticket_world import make_world

from agent_desktop.calls.ivr import setup as wire_ivr
from agent_desktop.context import AppContext
from asterisk_conf.prompts import PROMPTS
from crm_core.db import Database
from cti.agi_handlers import KeyedRequest
from ticketing import customer_view
from ticketing.journal import Actor
from ticketing.requests import ServiceRequestService


async def test_open_requests_and_the_spoken_status(db: Database) -> None:
    world = await make_world(db)
    ctx = AppContext(db.settings, db)
    wire_ivr(web.Application(), ctx)
    status_for = ctx.providers["status_for"]
    assert await customer_view.open_requests(db, world.customer_id) == []
    assert await status_for(world.customer_id) is None

    created = await ServiceRequestService(world.ctx).create(
        {
            "customer_id": world.customer_id,
            "vehicle_id": world.vehicle_id,
            "category": "repair",
            "description": "刹车异响",
        },
        Actor.user(world.agent),
    )
    (listed,) = await customer_view.open_requests(db, world.customer_id)
    assert (listed["id"], listed["category"]) == (created.id, "repair")
    assert await status_for(world.customer_id) == PROMPTS["status-received"]
    assert created.number is not None
    owner = ctx.providers["request_owner"]
    keyed = KeyedRequest(world.customer_id, created.id)
    assert await owner(created.number) == keyed
    assert await owner(str(created.id)) == keyed  # FW000123 keyed on a phone: 123
    assert await owner(created.number.removeprefix("FW")) == keyed  # or 000123
    assert await owner("no-such-number") is None
    assert await owner("99999") is None

"""Offers (抢单) and SMS/page mixing, over real HTTP against the whole app: several
technicians race to accept one order and exactly one gets it; one order is worked half by
SMS codes through the real (Twilio-signed) inbound webhook and half by the mobile page."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from field_world import Field, field_app, jpeg, signature_png
from sqlalchemy import select

from crm_core.db import Database
from ticketing.models import ServiceRequest, Transition, WorkOrder, WorkOrderOffer

sys.path.append(str(Path(__file__).resolve().parents[1] / "sms"))

from fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio, send_inbound

HTML = {"Accept": "text/html"}


async def _offer(field: Field, request_id: int) -> int:
    token = await field.login("office_sup")
    headers = {"X-CSRF-Token": token, "Origin": field.base}
    body = {"technician_ids": [field.world.tech, field.world.tech2], "instructions": "先到先得"}
    async with field.http.post(
        f"{field.base}/api/tickets/{request_id}/offer", json=body, headers=headers
    ) as response:
        data = await response.json()
        assert response.status == 201, data
    field.http.cookie_jar.clear()  # the technicians' page needs no session
    assert data["state"] == "offered" and data["technician_id"] is None
    return int(data["id"])


async def _state(field: Field, order_id: int) -> WorkOrder:
    async with field.db.transaction() as s:
        row = await s.get(WorkOrder, order_id)
        assert row is not None
        return row


async def test_the_first_technician_to_accept_gets_the_offer(db: Database) -> None:
    async with field_app(db.settings) as field:
        world = field.world
        for round_no in range(4):
            request_id = await field.approved_request()
            order_id = await _offer(field, request_id)
            mine = (await field.links_to(world.tech_mobile))[-1]
            theirs = (await field.links_to(world.tech2_mobile))[-1]
            assert mine != theirs
            replies = await asyncio.gather(
                field.act(mine, {"action_id": f"race-a-{round_no:04d}", "kind": "accept"}),
                field.act(theirs, {"action_id": f"race-b-{round_no:04d}", "kind": "accept"}),
            )
            statuses = sorted(status for status, _ in replies)
            assert statuses == [201, 409], replies
            loser_reply = next(body for status, body in replies if status == 409)
            assert loser_reply["error_id"] == "work_order_taken"
            winner = world.tech if replies[0][0] == 201 else world.tech2
            loser_token = theirs if winner == world.tech else mine
            order = await _state(field, order_id)
            assert (order.state, order.technician_id) == ("accepted", winner)
            async with field.db.transaction() as s:
                offers = dict(
                    (
                        await s.execute(
                            select(WorkOrderOffer.technician_id, WorkOrderOffer.state).where(
                                WorkOrderOffer.work_order_id == order_id
                            )
                        )
                    ).all()
                )
                accepts = (
                    await s.scalars(
                        select(Transition.actor).where(
                            Transition.entity_id == order_id, Transition.action == "accept"
                        )
                    )
                ).all()
            assert sorted(offers.values()) == ["lost", "taken"] and offers[winner] == "taken"
            assert accepts == [f"mobile:{winner}"]
            status, page = await field.get(f"/m/{loser_token}", headers=HTML)
            assert status == 200 and "已被其他工程师接单" in page
            status, body = await field.act(
                loser_token,
                {"action_id": f"late-eta-{round_no:03d}", "kind": "eta", "eta": "09:30"},
            )
            assert (status, body["error_id"]) == (409, "work_order_taken")
            done = await field.act(
                mine if winner == world.tech else theirs,
                {"action_id": f"win-eta-{round_no:04d}", "kind": "eta", "eta": "09:30"},
            )
            assert done[0] == 201 and done[1]["state"] == "en_route"


async def test_when_everyone_declines_the_request_goes_back_to_the_office(
    db: Database,
) -> None:
    async with field_app(db.settings) as field:
        request_id = await field.approved_request()
        await field.login("office_sup")
        status, board = await field.get("/tickets/dispatch", headers=HTML)
        assert status == 200 and f'data-offer="/api/tickets/{request_id}/offer"' in board
        assert "抢单：发给全部工程师" in board
        order_id = await _offer(field, request_id)
        mine = (await field.links_to(field.world.tech_mobile))[-1]
        theirs = (await field.links_to(field.world.tech2_mobile))[-1]
        first = await field.act(
            mine, {"action_id": "decl-0001", "kind": "decline", "text": "在外地"}
        )
        assert first[0] == 201 and first[1]["state"] == "offered"
        assert first[1]["offer_state"] == "declined"
        second = await field.act(
            theirs, {"action_id": "decl-0002", "kind": "decline", "text": "车辆故障"}
        )
        assert second[0] == 201 and second[1]["state"] == "declined"
        async with field.db.transaction() as s:
            request = await s.get(ServiceRequest, request_id)
        assert request is not None and request.state == "dispatched_to_office"
        assert (await _state(field, order_id)).state == "declined"
        # ... and the office dispatches it again, to one technician.
        token = await field.login("office_sup")
        async with field.http.post(
            f"{field.base}/api/tickets/{request_id}/dispatch",
            json={"technician_id": field.world.tech},
            headers={"X-CSRF-Token": token, "Origin": field.base},
        ) as response:
            assert response.status == 201, await response.text()


@pytest.fixture(name="fake")
async def fake_fixture() -> AsyncIterator[FakeTwilio]:
    twilio = await FakeTwilio().start()
    yield twilio
    await twilio.stop()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(400):  # a generous bound for the outbox worker, not a timing claim
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_one_order_half_by_sms_half_by_the_page(db: Database, fake: FakeTwilio) -> None:
    twilio = {
        "sms_backend": "twilio",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from": FROM_NUMBER,
        "twilio_api_base_url": fake.base_url,
    }
    async with field_app(db.settings, **twilio) as field:
        world = field.world
        request_id, order_id, token = await field.dispatched()

        async def dispatch_sent() -> bool:
            return len(fake.to(world.tech_mobile)) >= 1

        await eventually(dispatch_sent, "the dispatch SMS reached the provider")
        sent = fake.to(world.tech_mobile)[0]["body"]
        assert f"派工单{order_id}" in sent and f"{field.base}/m/{token}" in sent

        inbound = field.base + "/sms/inbound"
        assert (
            await send_inbound(field.http, inbound, world.tech_mobile, f"JD {order_id}")
        ).status == 200
        status, body = await field.get(f"/m/{token}/state")
        assert status == 200 and '"state": "accepted"' in body  # the page sees the SMS step
        status, reply = await field.act(
            token, {"action_id": "mix-eta-01", "kind": "eta", "eta": "16:00"}
        )
        assert (status, reply["state"]) == (201, "en_route")
        arrived = await send_inbound(field.http, inbound, world.tech_mobile, f"DD {order_id}")
        assert arrived.status == 200
        status, reply = await field.photo(token, jpeg(1000, 750), "mix-photo-1")
        assert (status, reply["state"]) == (201, "on_site")
        status, reply = await field.act(
            token,
            {
                "action_id": "mix-done-01",
                "kind": "complete",
                "text": "已修复",
                "signature": signature_png(),
            },
        )
        assert (status, reply["state"]) == (201, "done")
        # Too late by SMS now: refused by the same machine, and nothing changes.
        late = await send_inbound(field.http, inbound, world.tech_mobile, f"DD {order_id}")
        assert late.status == 200

        async with field.db.transaction() as s:
            records = (
                await s.execute(
                    select(Transition.action, Transition.actor)
                    .where(Transition.entity == "work_order", Transition.entity_id == order_id)
                    .order_by(Transition.id)
                )
            ).all()
            request = await s.get(ServiceRequest, request_id)
        sms, page = f"sms:{world.tech_mobile}", f"mobile:{world.tech}"
        assert [tuple(r) for r in records[1:]] == [
            ("accept", sms),
            ("set_eta", page),
            ("arrive", sms),
            ("complete", page),
        ]
        assert request is not None and request.state == "follow_up"
        refused = await field.audits("sms_command_refused:illegal_work_order_transition")
        assert len(refused) == 1

"""A recording is playable where its call appears: the customer page's call history offers
the audio in place to those who may hear it (and only them), and playing it is audited."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from rec_world import RecWorld, ingest_call, login_as
from test_rec_streaming import audit_rows

from cti.models import Call
from ticketing.models import ServiceRequest

HTML = {"Accept": "text/html"}


async def _call_with_recording(world: RecWorld, tmp_path: Path) -> tuple[int, int]:
    east, agent = world.customers["east"], world.users["agent_east"]
    async with world.db.transaction() as session:
        call = Call(
            server="main", linkedid="1795568111.1", direction="inbound", number="13905581234",
            number_e164="+8613905581234", customer_id=east, agent_id=agent, queue="hotline",
            entered_at=datetime(2026, 11, 25, 2, 0, tzinfo=UTC),
            answered_at=datetime(2026, 11, 25, 2, 0, 9, tzinfo=UTC),
            ended_at=datetime(2026, 11, 25, 2, 2, 14, tzinfo=UTC), talk_seconds=125.0,
            status="ended", outcome="answered", disposition="resolved",
        )  # fmt: skip
        session.add(call)
        request = ServiceRequest(
            number="SR-TEST-1", customer_id=east, channel="phone", category="repair",
            priority="normal", state="in_field", description="刹车异响",
            response_due_at=datetime(2026, 11, 25, tzinfo=UTC),
            resolution_due_at=datetime(2026, 11, 26, tzinfo=UTC),
        )  # fmt: skip
        session.add(request)
    settings = world.db.settings
    recording = await ingest_call(
        world.db, settings, tmp_path, "1795568111.1", east, agent, call_id=call.id
    )
    return call.id, recording


async def _customer_page(client: TestClient[Any, Any], customer_id: int) -> str:
    response = await client.get(f"/customers/{customer_id}", headers=HTML)
    assert response.status == 200
    return await response.text()


async def test_the_customer_page_plays_the_calls_recording_for_those_who_may_hear_it(
    rec_client: TestClient[Any, Any], rec_world: RecWorld, tmp_path: Path
) -> None:
    call_id, recording_id = await _call_with_recording(rec_world, tmp_path)
    audio = f'src="/api/recordings/{recording_id}/audio"'

    await login_as(rec_client, "agent_east")  # took the call
    page = await _customer_page(rec_client, rec_world.customers["east"])
    row = re.search(rf'<tr id="call-{call_id}">.*?</tr>', page, re.S)
    assert row is not None and audio in row.group()
    assert "呼入" in row.group() and "已接听" in row.group() and "2:05" in row.group()
    assert "SR-TEST-1" in page and "现场服务中" in page  # the request list, with its state
    played = await rec_client.get(f"/api/recordings/{recording_id}/audio")
    assert played.status == 200 and len(await played.read()) > 1000
    assert [r.object_id for r in await audit_rows(rec_world.db, "recording_played")] == [
        str(recording_id)
    ]

    await login_as(rec_client, "sup_east")  # the region's supervisor hears it too
    assert audio in await _customer_page(rec_client, rec_world.customers["east"])

    await login_as(rec_client, "agent_east2")  # sees the customer, did not take the call
    page = await _customer_page(rec_client, rec_world.customers["east"])
    assert f'id="call-{call_id}"' in page and audio not in page

"""Calls and recordings follow their service request in the real app (every feature): a
request opened from a call, a call linked by hand from the call history, the reconcile that
closes the race between a link and a recording's row, and retention of open requests.

The call-log rows are written here as the CTI database worker writes them for an ended call;
everything after that (the link, the bus, recordings, retention) is the production path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from rec_world import RecWorld, ingest_call, login_as
from sqlalchemy import select

from agent_desktop.recordings.wiring import RUNTIME_KEY
from crm_core.db import Database
from crm_core.models import AuditEntry
from crm_core.settings import Settings
from cti.models import Call
from recordings.models import Recording
from recordings.retention import RetentionPolicy, purge
from recordings.storage import Storage

ENDED = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


async def logged_call(db: Database, linkedid: str, customer: int, agent: int) -> int:
    async with db.transaction() as session:
        call = Call(
            server="main", linkedid=linkedid, direction="inbound", number="13905581234",
            customer_id=customer, agent_id=agent, agent_interface="PJSIP/1001",
            queue="hotline", status="ended", outcome="answered", entered_at=ENDED,
            answered_at=ENDED, ended_at=ENDED, talk_seconds=4.0,
        )  # fmt: skip
        session.add(call)
        await session.flush()
        return call.id


async def links(db: Database, call_id: int) -> tuple[int | None, list[int | None]]:
    """(the call's request, its recordings' requests)."""
    async with db.transaction() as session:
        call = await session.get(Call, call_id)
        rows = await session.scalars(select(Recording).where(Recording.call_id == call_id))
        assert call is not None
        return call.service_request_id, [r.service_request_id for r in rows]


async def post(client: TestClient[Any, Any], token: str, path: str, body: Any) -> Any:
    response = await client.post(path, json=body, headers={"X-CSRF-Token": token})
    return response.status, await response.json()


async def open_request(
    client: TestClient[Any, Any], token: str, customer: int, linkedid: str | None = None
) -> int:
    body = {"customer_id": customer, "category": "repair", "description": "刹车异响"}
    if linkedid:
        body["call_linkedid"] = linkedid
    status, created = await post(client, token, "/api/tickets", body)
    assert status == 201, created
    request_id: int = created["id"]
    return request_id


async def test_a_request_opened_from_a_call_keeps_its_recording_until_closed_and_expired(
    rec_world: RecWorld, rec_client: TestClient[Any, Any], settings: Settings, tmp_path: Path
) -> None:
    db, east, agent = rec_world.db, rec_world.customers["east"], rec_world.users["agent_east"]
    call_id = await logged_call(db, "2001.1", east, agent)
    recording = await ingest_call(
        db, settings, tmp_path, "2001.1", east, agent, call_id=call_id, ended=ENDED
    )
    token = await login_as(rec_client, "agent_east")
    request_id = await open_request(rec_client, token, east, linkedid="2001.1")
    assert await links(db, call_id) == (request_id, [request_id])

    runtime = rec_client.server.app[RUNTIME_KEY]
    storage = Storage(Path(settings.recordings_dir))
    policy = RetentionPolicy.from_settings(settings.replace(recordings_retention_days=90))
    later = ENDED + timedelta(days=200)
    kept = await purge(db, storage, policy, runtime.open_requests, now=later)
    assert recording in kept.kept_open_request and recording not in kept.purged

    status, closed = await post(
        rec_client,
        token,
        f"/api/tickets/{request_id}/actions",
        {"action": "resolve_by_phone", "reason": "电话指导后已解决"},
    )
    assert status == 200, closed
    purged = await purge(db, storage, policy, runtime.open_requests, now=later)
    assert recording in purged.purged
    async with db.transaction() as session:
        row = await session.get(Recording, recording)
        assert row is not None and row.state == "purged"


async def test_a_link_made_before_the_recording_row_is_reconciled(
    rec_world: RecWorld, rec_client: TestClient[Any, Any], settings: Settings, tmp_path: Path
) -> None:
    """The call's CallRecordingFinished went out before the agent opened the request; the
    link lands before the recording's row exists, which then carries no request."""
    db, east, agent = rec_world.db, rec_world.customers["east"], rec_world.users["agent_east"]
    call_id = await logged_call(db, "2002.1", east, agent)
    token = await login_as(rec_client, "agent_east")
    request_id = await open_request(rec_client, token, east, linkedid="2002.1")
    assert await links(db, call_id) == (request_id, [])
    await ingest_call(db, settings, tmp_path, "2002.1", east, agent, call_id=call_id)
    assert await links(db, call_id) == (request_id, [None])

    runtime = rec_client.server.app[RUNTIME_KEY]
    assert await runtime.reconcile_request_links() == 1
    assert await links(db, call_id) == (request_id, [request_id])
    assert await runtime.reconcile_request_links() == 0


async def test_an_agent_links_a_call_to_a_request_by_hand(
    rec_world: RecWorld, rec_client: TestClient[Any, Any], settings: Settings, tmp_path: Path
) -> None:
    db, users, customers = rec_world.db, rec_world.users, rec_world.customers
    call_id = await logged_call(db, "2003.1", customers["east"], users["agent_east"])
    await ingest_call(
        db, settings, tmp_path, "2003.1", customers["east"], users["agent_east"], call_id=call_id
    )
    token = await login_as(rec_client, "agent_east")
    first = await open_request(rec_client, token, customers["east"], linkedid="2003.1")
    second = await open_request(rec_client, token, customers["east"])
    assert await links(db, call_id) == (first, [first])

    path = f"/api/calls/{call_id}/service-request"
    status, linked = await post(rec_client, token, path, {"service_request_id": second})
    assert status == 200 and linked["number"] == f"FW{second:06d}"
    assert await links(db, call_id) == (second, [second])  # by hand replaces the automatic
    async with db.transaction() as session:
        (entry,) = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "call_linked_to_request")
            )
        ).all()
    assert (entry.object_id, entry.detail) == (str(call_id), {"before": first, "after": second})

    # One session per client: each login replaces the previous user's.
    north_token = await login_as(rec_client, "agent_north")
    north_request = await open_request(rec_client, north_token, customers["north"])
    status, refused = await post(rec_client, north_token, path, {"service_request_id": first})
    assert status == 404  # not agent_north's call
    token = await login_as(rec_client, "agent_east")
    status, refused = await post(rec_client, token, path, {"service_request_id": north_request})
    assert status == 422 and "another customer" in refused["message"]
    for bad in ({"service_request_id": "7"}, {"service_request_id": True}, {}, []):
        status, refused = await post(rec_client, token, path, bad)
        assert status == 422, bad
    status, refused = await post(rec_client, token, path, {"service_request_id": 99999})
    assert status == 404
    tech_token = await login_as(rec_client, "tech_east")
    status, refused = await post(rec_client, tech_token, path, {"service_request_id": first})
    assert status == 403
    assert await links(db, call_id) == (second, [second])  # nothing moved

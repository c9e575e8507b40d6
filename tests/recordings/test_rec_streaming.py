"""Streaming: byte ranges with the right bytes, object-level permissions, audit rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from rec_world import RecWorld, login_as
from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import AuditEntry, Customer
from recordings.models import Recording


async def audit_rows(db: Database, action: str) -> list[AuditEntry]:
    async with db.transaction() as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return list(rows.all())


async def stored(db: Database, recording_id: int) -> Recording:
    async with db.transaction() as session:
        row = await session.get(Recording, recording_id)
        assert row is not None
        return row


async def test_range_request_returns_206_with_the_right_bytes(
    rec_client: TestClient[Any, Any], rec_world: RecWorld
) -> None:
    await login_as(rec_client, "agent_east")
    rid = rec_world.recordings["east"]
    row = await stored(rec_world.db, rid)
    wav = Path(rec_world.db.settings.recordings_dir) / str(row.wav_path)
    expected = wav.read_bytes()
    response = await rec_client.get(
        f"/api/recordings/{rid}/audio?format=wav", headers={"Range": "bytes=1000-1999"}
    )
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 1000-1999/{len(expected)}"
    assert await response.read() == expected[1000:2000]
    tail = await rec_client.get(
        f"/api/recordings/{rid}/audio?format=wav", headers={"Range": "bytes=-100"}
    )
    assert tail.status == 206 and await tail.read() == expected[-100:]
    whole = await rec_client.get(f"/api/recordings/{rid}/audio")
    assert whole.status == 200 and whole.headers["Content-Type"] == "audio/ogg"
    assert (await whole.read())[:4] == b"OggS"
    bad = await rec_client.get(
        f"/api/recordings/{rid}/audio?format=wav", headers={"Range": f"bytes={len(expected) + 5}-"}
    )
    assert bad.status == 416
    played = await audit_rows(rec_world.db, "recording_played")
    assert len(played) >= 3 and all(r.object_id == str(rid) for r in played)
    assert played[0].user_id == rec_world.users["agent_east"] and played[0].ip
    assert played[0].detail and played[0].detail["range"] == "bytes=1000-1999"


async def test_download_is_audited(rec_client: TestClient[Any, Any], rec_world: RecWorld) -> None:
    await login_as(rec_client, "sup_east")
    rid = rec_world.recordings["east"]
    response = await rec_client.get(f"/api/recordings/{rid}/audio?format=wav&download=1")
    assert response.status == 200 and "attachment" in response.headers["Content-Disposition"]
    (row,) = await audit_rows(rec_world.db, "recording_downloaded")
    assert row.user_id == rec_world.users["sup_east"] and row.object_id == str(rid)


async def test_agent_of_another_region_gets_403_and_an_audit_row(
    rec_client: TestClient[Any, Any], rec_world: RecWorld
) -> None:
    await login_as(rec_client, "agent_north")
    rid = rec_world.recordings["east"]
    for path in (f"/api/recordings/{rid}/audio", f"/api/recordings/{rid}"):
        response = await rec_client.get(path, headers={"Range": "bytes=0-99"})
        assert response.status == 403
        assert (await response.json())["error_id"] == "recording_forbidden"
    denied = await audit_rows(rec_world.db, "access_denied")
    assert len(denied) == 2
    assert {d.object_type for d in denied} == {"recording"}
    assert denied[0].user_id == rec_world.users["agent_north"]
    assert await audit_rows(rec_world.db, "recording_played") == []
    listed = await (await rec_client.get("/api/recordings")).json()
    assert [r["id"] for r in listed["recordings"]] == [rec_world.recordings["north"]]


async def test_scopes_agent_owner_supervisor_admin_technician(
    rec_client: TestClient[Any, Any], rec_world: RecWorld
) -> None:
    east, north = rec_world.recordings["east"], rec_world.recordings["north"]

    async def status_for(username: str, rid: int) -> int:
        await login_as(rec_client, username)
        return (await rec_client.get(f"/api/recordings/{rid}")).status

    assert await status_for("agent_east", east) == 200  # their own call
    assert await status_for("agent_east2", east) == 403  # same region, not theirs
    async with rec_world.db.transaction() as session:
        customer = await session.get(Customer, rec_world.customers["east"])
        assert customer is not None
        customer.owner_id = rec_world.users["agent_east2"]  # the customer changes hands
    assert await status_for("agent_east2", east) == 200
    assert await status_for("sup_east", east) == 200
    assert await status_for("sup_east", north) == 403
    assert await status_for("sup_north", north) == 200
    assert await status_for("tech_east", east) == 403
    assert await status_for("admin1", north) == 200


async def test_review_page_and_call_link_render(
    rec_client: TestClient[Any, Any], rec_world: RecWorld
) -> None:
    await login_as(rec_client, "sup_east")
    page = await rec_client.get("/recordings", headers={"Accept": "text/html"})
    assert page.status == 200 and "rec-wave" in await page.text()
    listing = await (await rec_client.get("/api/recordings?customer=合肥")).json()
    assert [r["id"] for r in listing["recordings"]] == [rec_world.recordings["east"]]
    none = await (await rec_client.get("/api/recordings?qa_status=reviewed")).json()
    assert none["recordings"] == []
    bad = await rec_client.get("/api/recordings?date_from=yesterday")
    assert bad.status == 422

"""Recordings end to end on the real PBX: a SIPp call through MixMonitor, ingested and
indexed by the real server, and a pause during the call that leaves silence in the file."""

from __future__ import annotations

import array
import asyncio
import math
import os
import sys
import time
import urllib.error
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from live_server import AgentBrowser, LiveServer, live_server
from pbx_harness import CALLER_MOBILE, PbxUnderTest, Sipp, place_call, start_phone, wav_facts
from sqlalchemy import select

from crm_core import migrate
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.models import User
from crm_core.settings import Settings
from crm_core.users import ensure_demo_users
from cti.models import Call
from recordings.models import Recording, RecordingPause

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("calls_cleared")]


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'live.db'}")
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    await ensure_demo_users(db)
    customer = await CustomerService(db).create(
        {"name": "阜阳顺达物流有限公司", "code": "C0000001", "region": "华东"}, [CALLER_MOBILE]
    )
    async with db.transaction() as session:
        agent = await session.scalar(select(User).where(User.username == "agent1001"))
    assert agent is not None
    yield {"db": db, "url": settings.database_url, "customer": customer, "agent_id": agent.id}
    await db.close()


@pytest.fixture(autouse=True)
def own_media_ports() -> None:
    """SIPp media ports of this run clear of other runs sharing the machine (30000+)."""
    Sipp._media_port = max(Sipp._media_port, 40000 + (os.getpid() % 500) * 40)


@pytest.fixture
def server(pbx: PbxUnderTest, crm: dict[str, Any], tmp_path: Path) -> Any:
    with live_server(pbx, crm["url"], tmp_path) as running:
        yield running


async def recordings_in(db: Database, timeout: float = 90) -> list[Recording]:
    deadline = time.monotonic() + timeout
    while True:
        async with db.transaction() as session:
            rows = list((await session.scalars(select(Recording))).all())
        if (rows and all(r.state != "pending" for r in rows)) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.5)


def rms_between(path: Path, start: float, end: float) -> float:
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        wav.setpos(int(start * rate))
        frames = wav.readframes(int((end - start) * rate))
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


async def post(server: LiveServer, session: tuple[str, str], path: str, body: Any) -> Any:
    try:
        return await asyncio.to_thread(server.post, path, session, body)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{path}: {exc.code} {exc.read().decode()}") from None


async def test_real_call_is_ingested_indexed_and_the_paused_span_is_silent(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    agent = AgentBrowser(server, "agent1001")
    await agent.connect()
    session = await asyncio.to_thread(server.login, "agent1001")
    try:
        sipp_processes.append(place_call(pbx, tmp_path, caller=CALLER_MOBILE, hold_ms=60000))
        await agent.wait_for(
            lambda m: m.get("type") == "pop.update" and m.get("state") == "connected"
        )
        await asyncio.sleep(1.0)  # the agent phone's 7 s of audio is playing now
        paused = await post(server, session, "/api/recordings/live/pause", {"paused": True})
        assert paused["paused"] is True and paused["already"] is False
        await agent.wait_for(lambda m: m.get("type") == "recording.paused")
        await asyncio.sleep(2.0)
        resumed = await post(server, session, "/api/recordings/live/pause", {"paused": False})
        assert resumed["paused"] is False and resumed["reason"] == "agent"
        await agent.wait_for(lambda m: m.get("type") == "recording.resumed")
        await asyncio.sleep(1.0)
        # Hang up while the phone still sends audio: SIPp stops sending RTP after its pcap,
        # and MixMonitor writes nothing while no media flows.
        await asyncio.to_thread(pbx.cli, "channel request hangup all")
    finally:
        await agent.close()

    rows = await recordings_in(crm["db"])
    assert len(rows) == 1, [(r.source_path, r.state, r.error) for r in rows]
    (rec,) = rows
    assert rec.state == "complete", rec.error
    assert (rec.customer_id, rec.agent_id) == (crm["customer"].id, crm["agent_id"])
    async with crm["db"].transaction() as session_:
        call = await session_.scalar(select(Call))
        pause = await session_.scalar(select(RecordingPause))
    assert call is not None and pause is not None and pause.resumed_at is not None
    assert rec.call_id == call.id and rec.linkedid == call.linkedid and call.talk_seconds
    # MixMonitor starts when the PBX answers (before the welcome prompt and the queue), so
    # the file holds the wait and the talk; its talk part matches the call's talk time.
    assert call.answered_at and call.ended_at and rec.duration_seconds
    pre_answer = (call.answered_at - call.entered_at).total_seconds()
    assert abs((rec.duration_seconds - pre_answer) - call.talk_seconds) < 1.0
    wav = Path(server.log.parent / "var" / "recordings" / str(rec.wav_path))
    seconds, rms = wav_facts(wav)
    assert abs(seconds - rec.duration_seconds) < 0.01 and rms > 100 and (rec.rms or 0) > 100
    assert (wav.parent / (wav.stem + ".opus")).is_file() and rec.sha256

    start = call.entered_at.timestamp()  # MixMonitor starts as the PBX answers
    span_from = pause.paused_at.timestamp() - start
    span_to = pause.resumed_at.timestamp() - start
    assert span_to - span_from > 1.5
    silent = rms_between(wav, span_from + 0.3, span_to - 0.3)
    before = rms_between(wav, span_from - 0.8, span_from - 0.1)
    after = rms_between(wav, span_to + 0.1, span_to + 0.8)
    assert silent < 5.0, (silent, before, after)
    assert before > 100 and after > 100, (silent, before, after)

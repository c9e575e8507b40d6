"""Pause/resume bookkeeping with a stand-in AMI (the real PBX test is tests/pbx/test_rec_live.py):
the right actions, auto-resume with a warning first, spans stored, failures reported."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.users import create_user
from recordings.errors import PauseFailed
from recordings.models import RecordingPause
from recordings.pause import AmiReply, RecordingPauses


class FakeAmi:
    def __init__(self, fail_mute: bool = False) -> None:
        self.sent: list[dict[str, str]] = []
        self.fail_mute = fail_mute

    async def __call__(self, action: dict[str, str]) -> AmiReply:
        self.sent.append(action)
        if action["Action"] == "CoreShowChannels":
            return AmiReply(
                {"Response": "Success"},
                [
                    {"Channel": "PJSIP/1001-00000001", "Uniqueid": "99.1", "Linkedid": "99.0"},
                    {"Channel": "PJSIP/carrier-00000000", "Uniqueid": "99.0", "Linkedid": "99.0"},
                ],
            )
        if self.fail_mute:
            raise RuntimeError("Response: Error")
        return AmiReply({"Response": "Success"})


async def test_pause_mutes_both_directions_and_auto_resumes_with_a_warning(db: Database) -> None:
    user = await create_user(db, {"username": "a1", "display_name": "坐席"}, password="x-long-pass")
    ami, pushed = FakeAmi(), []

    async def notify(user_id: int, message: dict[str, Any]) -> object:
        pushed.append((user_id, message))
        return 1

    pauses = RecordingPauses(db, ami, notify, auto_resume_seconds=0.6, warn_before_seconds=0.3)
    result = await pauses.pause("main", "99.0", user.id)
    assert result["paused"] is True
    assert (await pauses.pause("main", "99.0", user.id))["already"] is True
    mute = ami.sent[1]
    assert mute == {
        "Action": "MixMonitorMute", "Channel": "PJSIP/carrier-00000000",
        "Direction": "both", "State": "1",
    }  # fmt: skip
    for _ in range(100):
        if len(pushed) == 3:
            break
        await asyncio.sleep(0.05)
    types = [m["type"] for _, m in pushed]
    assert types == ["recording.paused", "recording.resume_warning", "recording.resumed"]
    assert pushed[-1][1]["reason"] == "auto" and ami.sent[-1]["State"] == "0"
    async with db.transaction() as session:
        (span,) = (await session.scalars(select(RecordingPause))).all()
    assert span.resumed_by == "auto" and span.resumed_at and span.resumed_at > span.paused_at


async def test_refused_mute_is_reported_and_nothing_is_stored(db: Database) -> None:
    user = await create_user(db, {"username": "a2", "display_name": "坐席"}, password="x-long-pass")

    async def notify(user_id: int, message: dict[str, Any]) -> object:
        return 0

    pauses = RecordingPauses(db, FakeAmi(fail_mute=True), notify, auto_resume_seconds=60)
    with pytest.raises(PauseFailed):
        await pauses.pause("main", "99.0", user.id)
    with pytest.raises(PauseFailed):
        await pauses.pause("main", "no-such-call", user.id)
    assert pauses.active == {}
    async with db.transaction() as session:
        assert (await session.scalars(select(RecordingPause))).all() == []

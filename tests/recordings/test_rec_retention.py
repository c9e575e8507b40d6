"""Retention per queue: purge deletes files and marks rows, keeps held and open-request ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rec_world import ingest_call

from crm_core.db import Database
from crm_core.events import CallLinkedToRequest
from crm_core.settings import Settings
from recordings.models import Recording
from recordings.request_links import follow_call_link
from recordings.retention import RetentionPolicy, purge
from recordings.storage import Storage

NOW = datetime(2027, 6, 1, tzinfo=UTC)
OLD = datetime(2026, 11, 25, tzinfo=UTC)  # 188 days before NOW


async def test_purge_by_queue_keeps_holds_and_open_requests(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    plan = {
        "hotline_old": ("1.1", "hotline", None, OLD),
        "vip_old": ("2.2", "vip", None, OLD),
        "held": ("3.3", "hotline", None, OLD),
        "open_req": ("4.4", "hotline", 41, OLD),
        "closed_req": ("5.5", "hotline", 42, OLD),
        "fresh": ("6.6", "hotline", None, NOW),
    }
    ids = {}
    for key, (name, queue, request, ended) in plan.items():
        ids[key] = await ingest_call(
            db, settings, tmp_path, name, None, None, 1, queue, ended=ended
        )
        if request is not None:  # the call log linked the call (cti/request_links.py)
            linked = CallLinkedToRequest(
                call_id=1000 + request, server="main", linkedid=name, request_id=request
            )
            assert await follow_call_link(db, linked) == 1
    async with db.transaction() as session:
        held = await session.get(Recording, ids["held"])
        assert held is not None
        held.hold_reason = "客户投诉争议"
    storage = Storage(Path(settings.recordings_dir))
    policy = RetentionPolicy.from_settings(
        settings.replace(recordings_retention_days=90, recordings_retention_by_queue="vip=365")
    )
    asked: list[set[int]] = []

    async def open_requests(request_ids: set[int]) -> set[int]:
        asked.append(request_ids)
        return request_ids & {41}

    report = await purge(db, storage, policy, open_requests, now=NOW)
    assert sorted(report.purged) == sorted([ids["hotline_old"], ids["closed_req"]])
    assert report.kept_hold == [ids["held"]] and report.kept_open_request == [ids["open_req"]]
    assert asked == [{41, 42}]
    async with db.transaction() as session:
        for name, rid in ids.items():
            row = await session.get(Recording, rid)
            assert row is not None
            gone = name in ("hotline_old", "closed_req")
            assert (row.state == "purged") is gone, name
            assert storage.path(str(row.wav_path)).exists() is not gone, name
            assert storage.path(str(row.opus_path)).exists() is not gone, name
    again = await purge(db, storage, policy, open_requests, now=NOW)
    assert again.purged == []

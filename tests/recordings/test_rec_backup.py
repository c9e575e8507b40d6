"""Backup and restore with the recordings (issue #17 §4): incremental copies checked against
the sha256 taken at ingest, damaged files reported, and the restore drill: a backup restored
into an empty data directory serves its recordings through the normal streaming endpoint."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from rec_world import RecWorld, ingest_call, login_as
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from agent_desktop.cli import backup as cli_backup
from agent_desktop.cli import backup_ops
from agent_desktop.server import build_app
from crm_core.db import Database, create_engine
from crm_core.models import AuditEntry
from crm_core.settings import Settings
from recordings.models import Recording

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def rows(db: Database) -> dict[int, Recording]:
    async with db.transaction() as session:
        found = await session.scalars(select(Recording).order_by(Recording.id))
        return {r.id: r for r in found.all()}


def manifest(dest: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((dest / "manifest.json").read_text())
    return loaded


def damage(path: Path) -> None:
    """Same size, different bytes: what bit rot or a stray write looks like."""
    data = bytearray(path.read_bytes())
    data[200:210] = bytes(b ^ 0xFF for b in data[200:210])
    path.write_bytes(bytes(data))


async def test_second_backup_copies_nothing_and_a_new_recording_is_copied_alone(
    rec_world: RecWorld, tmp_path: Path
) -> None:
    db, dest = rec_world.db, tmp_path / "backup"
    first = await backup_ops.back_up(db, dest)
    assert first.report.problems == []
    assert first.recordings == 2 and first.report.total == 4  # a WAV and an Opus each
    assert first.report.copied == 4 and first.report.copied_ids == set(
        rec_world.recordings.values()
    )
    stored = await rows(db)
    for row in stored.values():
        copy = dest / "recordings" / str(row.wav_path)
        assert sha(copy) == row.sha256
        assert (dest / "recordings" / str(row.opus_path)).read_bytes()[:4] == b"OggS"
    made = manifest(dest)
    assert made["database"]["kind"] == ("sqlite" if db.settings.is_sqlite else "postgresql")
    assert (dest / made["database"]["file"]).stat().st_size == made["database"]["size"] > 0
    assert len(made["recordings"]["files"]) == 4

    second = await backup_ops.back_up(db, dest)
    assert (second.report.copied, second.report.skipped) == (0, 4)
    assert second.report.problems == []
    # One database copy in the backup: the previous one goes once the manifest moved on.
    assert [p.name for p in dest.glob("database-*")] == [manifest(dest)["database"]["file"]]

    new_id = await ingest_call(
        db, db.settings, tmp_path, "1003.3", rec_world.customers["east"],
        rec_world.users["agent_east"], seconds=2.0,
    )  # fmt: skip
    third = await backup_ops.back_up(db, dest)
    assert third.report.copied_ids == {new_id}
    assert (third.report.copied, third.report.skipped) == (2, 4)
    assert len(manifest(dest)["recordings"]["files"]) == 6
    summary = cli_backup.backup_summary(third)
    assert "recordings: 3 (6 files): 2 files copied (" in summary
    assert "of 1 recording), 4 already there, 0 failed" in summary


async def test_a_damaged_recording_is_reported_and_not_copied(
    rec_world: RecWorld, tmp_path: Path
) -> None:
    db, dest = rec_world.db, tmp_path / "backup"
    east = (await rows(db))[rec_world.recordings["east"]]
    live = Path(db.settings.recordings_dir) / str(east.wav_path)
    damage(live)
    outcome = await backup_ops.back_up(db, dest)
    (problem,) = outcome.report.problems
    assert problem.recording_id == east.id and problem.relative == east.wav_path
    assert "does not match the sha256" in problem.reason and "not copied" in problem.reason
    assert not (dest / "recordings" / str(east.wav_path)).exists()
    assert not list((dest / "recordings").rglob("*.part"))
    made = manifest(dest)
    assert str(east.wav_path) not in made["recordings"]["files"]
    assert made["recordings"]["problems"] == [problem.line()]
    assert outcome.report.copied == 3  # everything else is in the backup
    # Still reported on the next run: a damaged file never becomes "present".
    again = await backup_ops.back_up(db, dest)
    assert [p.relative for p in again.report.problems] == [east.wav_path]


async def test_crash_leftovers_and_bad_copies_in_the_backup_are_never_trusted(
    rec_world: RecWorld, tmp_path: Path
) -> None:
    db, dest = rec_world.db, tmp_path / "backup"
    await backup_ops.back_up(db, dest)
    east, north = (await rows(db)).values()
    east_copy = dest / "recordings" / str(east.wav_path)
    north_copy = dest / "recordings" / str(north.wav_path)
    # A crash mid-copy leaves only a dot-named temporary: deleted, never taken as the file.
    leftover = east_copy.with_name(f".{east_copy.name}.{uuid.uuid4().hex}.part")
    leftover.write_bytes(east_copy.read_bytes()[:100])
    # A copy cut short (a power loss), and one the manifest does not know yet (the run that
    # copied it died before writing the manifest) with other bytes of the same size.
    east_copy.write_bytes(east_copy.read_bytes()[:1000])
    damage(north_copy)
    made = manifest(dest)
    del made["recordings"]["files"][str(north.wav_path)]
    (dest / "manifest.json").write_text(json.dumps(made))

    outcome = await backup_ops.back_up(db, dest)
    assert outcome.report.problems == [] and not leftover.exists()
    assert outcome.report.copied_ids == {east.id, north.id} and outcome.report.copied == 2
    assert sha(east_copy) == east.sha256 and sha(north_copy) == north.sha256

    # Damage the manifest already vouches for is found by --verify (a plain run trusts it).
    damage(north_copy)
    assert (await backup_ops.back_up(db, dest)).report.copied == 0
    verified = await backup_ops.back_up(db, dest, verify=True)
    assert verified.report.copied == 1 and sha(north_copy) == north.sha256
    assert verified.report.problems == []


async def test_purged_recordings_stay_in_the_backup_until_pruned(
    rec_world: RecWorld, tmp_path: Path
) -> None:
    db, dest = rec_world.db, tmp_path / "backup"
    await backup_ops.back_up(db, dest)
    async with db.transaction() as session:
        row = await session.get(Recording, rec_world.recordings["north"])
        assert row is not None
        row.state = "purged"
        wav, opus = str(row.wav_path), str(row.opus_path)
    kept = await backup_ops.back_up(db, dest)
    assert sorted(kept.report.unreferenced) == sorted([wav, opus])
    assert (dest / "recordings" / wav).exists() and wav in manifest(dest)["recordings"]["files"]
    pruned = await backup_ops.back_up(db, dest, prune=True)
    assert pruned.report.removed == 2 and not (dest / "recordings" / wav).exists()
    assert wav not in manifest(dest)["recordings"]["files"]


@pytest.fixture
async def empty_data_dir(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings for a new installation: no database file (SQLite) or a new empty database
    on the same server (PostgreSQL), and a recordings directory that does not exist."""
    var = tmp_path / "drill" / "var"
    if settings.is_sqlite:
        yield Settings(
            database_url=f"sqlite+aiosqlite:///{var / 'hotline.db'}",
            var_dir=str(var),
            recordings_dir=str(var / "recordings"),
        )
        return
    name = f"hotline_drill_{uuid.uuid4().hex[:8]}"
    url = make_url(settings.database_url)
    admin = create_engine(settings, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield Settings(
            database_url=url.set(database=name).render_as_string(hide_password=False),
            var_dir=str(var),
            recordings_dir=str(var / "recordings"),
        )
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_restore_drill_into_an_empty_data_directory_plays_the_recording(
    rec_world: RecWorld,
    tmp_path: Path,
    empty_data_dir: Settings,
    aiohttp_client: AiohttpClient,
) -> None:
    source_db, dest = rec_world.db, tmp_path / "backup"
    originals = await rows(source_db)
    east = originals[rec_world.recordings["east"]]
    live_root = Path(source_db.settings.recordings_dir)
    original_wav = (live_root / str(east.wav_path)).read_bytes()
    original_opus = (live_root / str(east.opus_path)).read_bytes()
    await backup_ops.back_up(source_db, dest)

    fresh = empty_data_dir
    assert not await asyncio.to_thread(os.path.exists, fresh.recordings_dir)
    restored = await backup_ops.restore(fresh, dest)
    assert restored.report is not None and restored.report.problems == []
    assert (restored.recordings, restored.report.copied) == (2, 4)
    restored_wav = Path(fresh.recordings_dir) / str(east.wav_path)
    assert sha(restored_wav) == east.sha256
    with wave.open(str(restored_wav)) as audio:
        assert audio.getnframes() / audio.getframerate() == pytest.approx(4.0)

    db = Database.open(fresh)
    try:
        client = await aiohttp_client(build_app(db))
        await login_as(client, "sup_east")  # the restored user, with the restored password
        played = await client.get(f"/api/recordings/{east.id}/audio?format=wav")
        assert played.status == 200
        body = await played.read()
        assert hashlib.sha256(body).hexdigest() == east.sha256 and body == original_wav
        streamed = await client.get(f"/api/recordings/{east.id}/audio")
        assert streamed.status == 200 and streamed.headers["Content-Type"] == "audio/ogg"
        assert await streamed.read() == original_opus
        async with db.transaction() as session:
            audited = (
                await session.scalars(
                    select(AuditEntry).where(AuditEntry.action == "recording_played")
                )
            ).all()
        assert len(audited) == 2
        assert {(a.user_id, a.object_id) for a in audited} == {
            (rec_world.users["sup_east"], str(east.id))
        }
        assert all(a.ip and a.detail and a.detail["file"] for a in audited)
        # A supervisor of another region is still refused on the restored installation.
        await login_as(client, "sup_north")
        refused = await client.get(f"/api/recordings/{east.id}/audio?format=wav")
        assert refused.status == 403
    finally:
        await db.close()

    # Restoring again over the same data directory keeps the good files, copies nothing.
    again = await backup_ops.restore(fresh, dest)
    assert again.report is not None and (again.report.copied, again.report.skipped) == (0, 4)


async def test_restore_reports_a_damaged_file_in_the_backup_and_leaves_it_out(
    rec_world: RecWorld, tmp_path: Path, empty_data_dir: Settings
) -> None:
    dest = tmp_path / "backup"
    await backup_ops.back_up(rec_world.db, dest)
    north = (await rows(rec_world.db))[rec_world.recordings["north"]]
    damage(dest / "recordings" / str(north.wav_path))
    restored = await backup_ops.restore(empty_data_dir, dest, tmp_path / "elsewhere")
    assert restored.report is not None
    (problem,) = restored.report.problems
    assert problem.relative == north.wav_path and "does not match the sha256" in problem.reason
    assert not (tmp_path / "elsewhere" / str(north.wav_path)).exists()
    assert (tmp_path / "elsewhere" / str(north.opus_path)).exists()
    assert restored.report.copied == 3
    assert not [p for p in (tmp_path / "elsewhere").rglob("*") if p.name.endswith(".part")]


async def test_an_older_single_file_backup_still_restores(
    rec_world: RecWorld, tmp_path: Path, empty_data_dir: Settings
) -> None:
    from crm_core import backup as db_backup

    old_style = tmp_path / "hotline.backup"
    await db_backup.backup(rec_world.db.settings, old_style)
    restored = await backup_ops.restore(empty_data_dir, old_style)
    assert restored.report is None
    db = Database.open(empty_data_dir)
    try:
        assert len(await rows(db)) == 2
    finally:
        await db.close()
    assert "database-only backup" in cli_backup.restore_summary(restored, empty_data_dir)

"""`hotline backup` / `hotline restore` as a user runs them: real subprocesses, real exit codes,
the summary line, the list of damaged files, and bad input refused with nothing changed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from rec_world import RecWorld
from sqlalchemy import func, select

from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.models import Customer
from crm_core.settings import Settings
from recordings.models import Recording


async def hotline(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "HOTLINE_VAR_DIR": settings.var_dir,
        "HOTLINE_RECORDINGS_DIR": settings.recordings_dir,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent_desktop.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def customers(db: Database) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its sha256: to show nothing changed."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


async def test_backup_twice_then_restore_over_changed_data(
    rec_world: RecWorld, tmp_path: Path
) -> None:
    db, settings, dest = rec_world.db, rec_world.db.settings, tmp_path / "backup"
    first = await hotline(settings, "backup", str(dest))
    assert first.returncode == 0, first.stderr
    assert "recordings: 2 (4 files): 4 files copied (" in first.stdout
    assert "database " in first.stdout and " bytes (database-" in first.stdout
    assert "100.0%" in first.stderr  # the progress bars reached the end
    second = await hotline(settings, "backup", str(dest))
    assert second.returncode == 0 and "0 files copied (0 bytes, of 0 recordings)" in second.stdout
    assert "4 already there" in second.stdout

    # Lose a recording file and add a customer; the restore puts both back as they were.
    async with db.transaction() as session:
        east = await session.get(Recording, rec_world.recordings["east"])
        assert east is not None
        wav = str(east.wav_path)
    live = Path(settings.recordings_dir) / wav
    original = await asyncio.to_thread(live.read_bytes)
    await asyncio.to_thread(live.unlink)
    await CustomerService(db).create({"name": "备份之后的客户"}, ["13900000001"])
    assert await customers(db) == 3
    await db.engine.dispose()  # as a real restore would: the server drops its pooled links
    restored = await hotline(settings, "restore", str(dest), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert "1 file copied (" in restored.stdout
    assert "of 1 recording), 3 already there, 0 failed" in restored.stdout
    assert await asyncio.to_thread(live.read_bytes) == original
    assert await customers(db) == 2


async def test_backup_lists_a_damaged_recording_and_exits_nonzero(
    rec_world: RecWorld, tmp_path: Path
) -> None:
    settings, dest = rec_world.db.settings, tmp_path / "backup"
    async with rec_world.db.transaction() as session:
        row = await session.get(Recording, rec_world.recordings["north"])
        assert row is not None
        wav = Path(settings.recordings_dir) / str(row.wav_path)
    data = bytearray(await asyncio.to_thread(wav.read_bytes))
    data[100] ^= 0xFF
    await asyncio.to_thread(wav.write_bytes, bytes(data))
    done = await hotline(settings, "backup", str(dest))
    assert done.returncode == 1
    assert "1 recording file could not be backed up:" in done.stderr
    assert f"recording #{row.id} {row.wav_path}: the file in recordings_dir does not match" in (
        done.stderr
    )
    assert "older backup" in done.stderr and "Traceback" not in done.stderr
    assert "1 failed" in done.stdout  # the summary still says what was done
    assert not (dest / "recordings" / str(row.wav_path)).exists()


async def test_bad_input_is_refused_with_a_message_and_nothing_changes(
    rec_world: RecWorld, tmp_path: Path
) -> None:
    settings = rec_world.db.settings
    live = Path(settings.recordings_dir)
    dest = tmp_path / "backup"
    assert (await hotline(settings, "backup", str(dest))).returncode == 0
    await CustomerService(rec_world.db).create({"name": "不应被覆盖的客户"}, ["13900000002"])
    await rec_world.db.engine.dispose()
    before = (await customers(rec_world.db), snapshot(live), snapshot(dest))

    old_file = tmp_path / "old.backup"
    old_file.write_bytes(b"an older single-file backup")
    stranger = tmp_path / "photos"
    stranger.mkdir()
    (stranger / "cat.jpg").write_bytes(b"\xff\xd8")
    damaged = tmp_path / "damaged"
    await asyncio.to_thread(
        lambda: subprocess.run(["cp", "-r", str(dest), str(damaged)], check=True)
    )
    made = json.loads((damaged / "manifest.json").read_text())
    (damaged / made["database"]["file"]).write_bytes(b"not the database")
    other_kind = tmp_path / "other-kind"
    await asyncio.to_thread(
        lambda: subprocess.run(["cp", "-r", str(dest), str(other_kind)], check=True)
    )
    made["database"]["kind"] = "postgresql" if settings.is_sqlite else "sqlite"
    (other_kind / "manifest.json").write_text(json.dumps(made))

    cases = [
        (("backup",), 2, "give the backup directory"),
        (("backup", str(old_file)), 1, "is a file (an older database-only backup?)"),
        (("backup", str(stranger)), 1, "is not empty and is not a hotline backup"),
        (("backup", str(tmp_path / "no" / "such" / "dir")), 1, "does not exist; create it"),
        (("backup", str(live.parent)), 1, "overlaps recordings_dir"),
        (("restore",), 2, "give the backup to restore"),
        (("restore", str(dest)), 1, "add --yes to confirm"),
        (("restore", str(tmp_path / "missing"), "--yes"), 1, "does not exist"),
        (("restore", str(stranger), "--yes"), 1, "is not a hotline backup: it has no manifest"),
        (("restore", str(damaged), "--yes"), 1, "the database copy is damaged"),
        (("restore", str(other_kind), "--yes"), 1, "point DATABASE_URL at a"),
    ]
    for args, code, message in cases:
        done = await hotline(settings, *args)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert old_file.read_bytes() == b"an older single-file backup"
    assert sorted(p.name for p in stranger.iterdir()) == ["cat.jpg"]
    assert not (tmp_path / "no").exists()
    after = (await customers(rec_world.db), snapshot(live), snapshot(dest))
    assert after == before

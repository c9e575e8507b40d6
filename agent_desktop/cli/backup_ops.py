"""Backup and restore of the database and the recording files (`hotline backup` and
`hotline restore`, agent_desktop/cli/backup.py, are the commands over these).

DEST is a directory (docs/backup.md):

    DEST/manifest.json                        what the backup holds, written last
    DEST/database-<UTC time>-<id>.sqlite      SQLite's online backup  (or .pgdump: pg_dump)
    DEST/recordings/YYYY/MM/DD/<file>.wav     the recording files, as under recordings_dir
                                  .../<file>.opus

The database is copied whole each time (crm_core.backup), under a new name; the recordings
only when the backup lacks them (recordings.backup). The manifest is replaced atomically at
the end and only then is the previous database file deleted, so at any moment the manifest
names a whole database file and vouches only for recording files that were verified and
synced. Restore refuses anything it cannot read before it changes anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm_core import backup as db_backup
from crm_core import migrate
from crm_core.db import Database, sqlite_path
from crm_core.errors import ValidationError
from crm_core.progress import Progress
from crm_core.settings import Settings
from recordings import backup as rec_backup

MANIFEST = "manifest.json"
FORMAT = "hotline-backup"
VERSION = 1
RECORDINGS = "recordings"
DATABASE_PREFIX = "database-"
EXTENSIONS = {"sqlite": ".sqlite", "postgresql": ".pgdump"}


def db_kind(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The backup's manifest; None when there is none. A manifest of something else, or
    one that cannot be read, is an error that says so."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path} cannot be read ({exc}); this backup is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValidationError(f"{path} is not a hotline backup manifest")
    if manifest.get("version") != VERSION:
        raise ValidationError(
            f"{path} is backup format version {manifest.get('version')}; this hotline reads "
            f"version {VERSION}: restore it with the hotline version that wrote it"
        )
    return manifest


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    partial = folder / (MANIFEST + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        json.dump(manifest, out, ensure_ascii=False, indent=1, sort_keys=True)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, folder / MANIFEST)
    _fsync_dir(folder)
    for old in folder.glob(DATABASE_PREFIX + "*"):
        if old.name != manifest["database"]["file"]:
            old.unlink(missing_ok=True)  # the manifest no longer names it


def _ours(name: str) -> bool:
    return name in (MANIFEST, MANIFEST + ".partial", RECORDINGS) or name.startswith(DATABASE_PREFIX)


def _destination(path: Path, recordings_dir: Path) -> dict[str, Any] | None:
    """Check DEST (made when missing) before anything is written; the previous manifest
    when it is a backup."""
    live, target = recordings_dir.resolve(), path.resolve()
    if target.is_relative_to(live) or live.is_relative_to(target):
        raise ValidationError(
            f"{path} overlaps recordings_dir ({recordings_dir}); put the backup outside the "
            f"data directory, best on another disk"
        )
    if path.is_file():
        raise ValidationError(
            f"{path} is a file (an older database-only backup?). `hotline backup` now writes "
            f"a directory holding the database, the recordings and {MANIFEST}: give a new or "
            f"empty directory, e.g. `hotline backup {path.with_suffix('')}-full`"
        )
    if not path.parent.is_dir():
        raise ValidationError(
            f"folder {path.parent} does not exist; create it first (`mkdir -p {path.parent}`)"
        )
    if not path.exists():
        path.mkdir()
        return None
    manifest = read_manifest(path)
    strangers = sorted(p.name for p in path.iterdir() if not _ours(p.name))
    if manifest is None and strangers:
        raise ValidationError(
            f"{path} is not empty and is not a hotline backup (no {MANIFEST}; it holds "
            f"{', '.join(strangers[:3])}{' …' if len(strangers) > 3 else ''}): give a new or "
            f"empty directory, or one an earlier `hotline backup` wrote"
        )
    return manifest


@dataclass
class BackupOutcome:
    path: Path
    database_file: Path
    database_bytes: int
    recordings: int
    report: rec_backup.CopyReport
    seconds: float


async def _database_copy(settings: Settings, dest: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = (
        dest / f"{DATABASE_PREFIX}{stamp}-{uuid.uuid4().hex[:6]}{EXTENSIONS[db_kind(settings)]}"
    )
    bar: Progress | None = None

    def pages(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or Progress("backup: database", total, " pages")
        bar.update(done - bar.done)

    await db_backup.backup(settings, target, pages)
    if bar:
        bar.finish()
    return target


def _ticker(label: str, total: int) -> tuple[rec_backup.Tick | None, Progress | None]:
    if total == 0:
        return None, None
    bar = Progress(label, total, " files")
    return bar.update, bar


async def back_up(
    db: Database, dest: str | Path, *, verify: bool = False, prune: bool = False
) -> BackupOutcome:
    """The database, then every recording file the backup lacks, then the manifest."""
    started = time.monotonic()
    path = Path(dest)
    live = Path(db.settings.recordings_dir)
    previous = await asyncio.to_thread(_destination, path, live)
    snapshot_at = _now()
    database_file = await _database_copy(db.settings, path)
    database_sha = await asyncio.to_thread(_file_sha256, database_file)
    # Listed after the database copy: a recording ingested meanwhile is copied too (its row
    # is not in this database copy, and a restore leaves such a file aside).
    files = await rec_backup.stored_files(db)
    known = (previous or {}).get(RECORDINGS, {}).get("files", {})
    tick, bar = _ticker("backup: recordings", len(files))
    report = await asyncio.to_thread(
        rec_backup.back_up,
        files,
        live,
        path / RECORDINGS,
        known,
        verify=verify,
        prune=prune,
        tick=tick,
    )
    if bar:
        bar.finish()
    seconds = time.monotonic() - started
    outcome = BackupOutcome(
        path,
        database_file,
        database_file.stat().st_size,
        len({f.recording_id for f in files}),
        report,
        seconds,
    )
    manifest = _manifest(db.settings, outcome, snapshot_at, database_sha)
    await asyncio.to_thread(_write_manifest, path, manifest)
    return outcome


def _manifest(
    settings: Settings, outcome: BackupOutcome, snapshot_at: str, database_sha: str
) -> dict[str, Any]:
    report = outcome.report
    return {
        "format": FORMAT,
        "version": VERSION,
        "created_at": snapshot_at,
        "finished_at": _now(),
        "database": {
            "kind": db_kind(settings),
            "file": outcome.database_file.name,
            "size": outcome.database_bytes,
            "sha256": database_sha,
        },
        RECORDINGS: {
            "dir": RECORDINGS,
            "recordings": outcome.recordings,
            "files": report.entries,
            "bytes": report.bytes_total,
            "problems": [p.line() for p in report.problems],
        },
        "last_run": {
            "copied": report.copied,
            "skipped": report.skipped,
            "failed": len(report.problems),
            "bytes_copied": report.bytes_copied,
            "removed": report.removed,
            "seconds": round(outcome.seconds, 3),
        },
    }


@dataclass
class RestoreOutcome:
    source: Path
    database_file: Path
    recordings_dir: Path
    recordings: int
    report: rec_backup.CopyReport | None  # None: an older database-only backup
    seconds: float


def _check_backup(settings: Settings, source: Path) -> tuple[dict[str, Any], Path]:
    """Everything a restore needs, read and checked before anything is changed."""
    if not source.exists():
        raise ValidationError(
            f"backup {source} does not exist; give the directory `hotline backup DEST` wrote"
        )
    manifest = read_manifest(source)
    if manifest is None:
        raise ValidationError(
            f"{source} is not a hotline backup: it has no {MANIFEST}. Give the directory "
            f"`hotline backup DEST` wrote, or an older single-file database backup"
        )
    database = manifest.get("database") or {}
    kind = database.get("kind")
    if kind != db_kind(settings):
        raise ValidationError(
            f"{source} holds a {kind} database but DATABASE_URL names a {db_kind(settings)} "
            f"one; point DATABASE_URL at a {kind} database to restore it"
        )
    file = source / str(database.get("file"))
    if not file.is_file() or file.parent != source:
        raise ValidationError(
            f"{source} is incomplete: its database file {database.get('file')} is missing; "
            f"restore another backup"
        )
    if _file_sha256(file) != database.get("sha256"):
        raise ValidationError(
            f"{file} does not match the sha256 in {MANIFEST}: the database copy is damaged; "
            f"restore another backup"
        )
    return manifest, file


async def _restore_database(settings: Settings, file: Path) -> None:
    target = sqlite_path(settings.database_url)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)  # an empty data directory
    bar: Progress | None = None

    def pages(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or Progress("restore: database", total, " pages")
        bar.update(done - bar.done)

    await db_backup.restore(settings, file, pages)
    if bar:
        bar.finish()
    await asyncio.to_thread(migrate.upgrade, settings)  # a backup from an older hotline


async def restore(
    settings: Settings, src: str | Path, recordings_dir: str | Path | None = None
) -> RestoreOutcome:
    """The database, then every recording file its complete rows name, each checked."""
    started = time.monotonic()
    source = Path(src)
    target = Path(recordings_dir or settings.recordings_dir)
    if await asyncio.to_thread(source.is_file):  # an older database-only backup (one file)
        await _restore_database(settings, source)
        return RestoreOutcome(source, source, target, 0, None, time.monotonic() - started)
    manifest, database_file = await asyncio.to_thread(_check_backup, settings, source)
    await _restore_database(settings, database_file)
    db = Database.open(settings)
    try:
        files = await rec_backup.stored_files(db)
    finally:
        await db.close()
    known = manifest.get(RECORDINGS, {}).get("files", {})
    tick, bar = _ticker("restore: recordings", len(files))
    report = await asyncio.to_thread(
        rec_backup.restore, files, source / RECORDINGS, target, known, tick=tick
    )
    if bar:
        bar.finish()
    recordings = len({f.recording_id for f in files})
    return RestoreOutcome(
        source, database_file, target, recordings, report, time.monotonic() - started
    )

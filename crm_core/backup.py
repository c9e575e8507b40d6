"""Online backup and restore while the server runs.

SQLite uses its backup API, copying pages in steps so writers are only briefly held up, and
restores the same way (one atomic copy into the live file). PostgreSQL uses pg_dump's custom
format and pg_restore in a single transaction, so a failed restore changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from crm_core.db import sqlite_path
from crm_core.errors import BackupFailed, ToolMissing, ValidationError
from crm_core.settings import Settings

PAGES_PER_STEP = 1024
Progress = Callable[[int, int], None]  # (pages done, pages total)


def libpq_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))


def _sqlite_copy(
    source: sqlite3.Connection, target: sqlite3.Connection, progress: Progress | None
) -> None:
    def report(_status: int, remaining: int, total: int) -> None:
        if progress:
            progress(total - remaining, total)

    source.backup(target, pages=PAGES_PER_STEP, progress=report)


def _check_sqlite_backup(path: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ValidationError(f"{path} is not a hotline SQLite backup: {exc}") from None
    if ok != "ok" or "alembic_version" not in tables or "customers" not in tables:
        raise ValidationError(f"{path} is not a complete hotline backup (check: {ok})")


def _sqlite_backup(db_file: Path, target: Path, progress: Progress | None) -> None:
    if not db_file.exists():
        raise BackupFailed(f"database file {db_file} does not exist; run `hotline db upgrade`")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(db_file)
    dest = sqlite3.connect(partial)
    try:
        _sqlite_copy(source, dest, progress)
    finally:
        dest.close()
        source.close()
    # Only a finished copy gets the requested name: a crash leaves no file that looks whole.
    os.replace(partial, target)


def _sqlite_restore(backup: Path, db_file: Path, progress: Progress | None) -> None:
    _check_sqlite_backup(backup)
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    dest = sqlite3.connect(db_file, timeout=30)
    try:
        _sqlite_copy(source, dest, progress)
    finally:
        dest.close()
        source.close()


def _run(args: list[str], what: str) -> None:
    if shutil.which(args[0]) is None:
        raise ToolMissing(f"{args[0]} is not installed; run `apt-get install postgresql-client`")
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupFailed(f"{what} failed: {result.stderr.strip()[-500:]}")


def _pg_backup(url: str, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    _run(
        ["pg_dump", "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={url}"],
        "pg_dump",
    )
    os.replace(partial, target)


def _pg_restore(backup: Path, url: str) -> None:
    _run(["pg_restore", "--list", str(backup)], f"reading {backup}")
    _run(
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={url}",
            str(backup),
        ],
        "pg_restore",
    )


def _target(path: str | Path) -> Path:
    target = Path(path)
    if target.is_dir():
        raise ValidationError(f"{target} is a directory; give a file name for the backup")
    if not target.parent.exists():
        raise ValidationError(f"folder {target.parent} does not exist")
    return target


async def backup(settings: Settings, path: str | Path, progress: Progress | None = None) -> Path:
    target = _target(path)
    db_file = sqlite_path(settings.database_url)
    if db_file is not None:
        await asyncio.to_thread(_sqlite_backup, db_file, target, progress)
    else:
        await asyncio.to_thread(_pg_backup, libpq_url(settings.database_url), target)
    return target


async def restore(settings: Settings, path: str | Path, progress: Progress | None = None) -> None:
    source = Path(path)
    if not await asyncio.to_thread(source.is_file):
        raise ValidationError(f"backup file {source} does not exist")
    db_file = sqlite_path(settings.database_url)
    if db_file is not None:
        await asyncio.to_thread(_sqlite_restore, source, db_file, progress)
    else:
        await asyncio.to_thread(_pg_restore, source, libpq_url(settings.database_url))

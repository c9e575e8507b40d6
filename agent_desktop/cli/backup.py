"""`hotline backup DEST` and `hotline restore SRC`: the commands, their summaries and their
messages. The work is in agent_desktop/cli/backup_ops.py; docs/backup.md describes both."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from agent_desktop.cli.backup_ops import BackupOutcome, RestoreOutcome, back_up, db_kind, restore
from crm_core import migrate
from crm_core.db import Database
from crm_core.errors import ValidationError
from crm_core.settings import Settings
from recordings import backup as rec_backup


def _shown_url(url: str) -> str:
    """The database URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _copied(r: rec_backup.CopyReport) -> str:
    return (
        f"{_count(r.copied, 'file')} copied ({r.bytes_copied:,} bytes, of "
        f"{_count(len(r.copied_ids), 'recording')}), {r.skipped:,} already there, "
        f"{len(r.problems):,} failed"
    )


def backup_summary(outcome: BackupOutcome) -> str:
    r = outcome.report
    return (
        f"backup done in {outcome.seconds:.1f}s → {outcome.path}: database "
        f"{outcome.database_bytes:,} bytes ({outcome.database_file.name}); recordings: "
        f"{outcome.recordings:,} ({_count(r.total, 'file')}): {_copied(r)}; "
        f"{r.bytes_total:,} bytes of recordings in the backup"
    )


def restore_summary(outcome: RestoreOutcome, settings: Settings) -> str:
    where = f"{db_kind(settings)} database {_shown_url(settings.database_url)}"
    r = outcome.report
    if r is None:
        return (
            f"restored {outcome.source} into the {where} in {outcome.seconds:.1f}s "
            f"(an older database-only backup: no recordings in it)"
        )
    return (
        f"restore done in {outcome.seconds:.1f}s from {outcome.source}: the {where}; "
        f"recordings: {outcome.recordings:,} ({_count(r.total, 'file')}) into "
        f"{outcome.recordings_dir}: {_copied(r)}"
    )


# --- the commands ---------------------------------------------------------------------


def _usage(message: str) -> int:
    print(f"hotline: {message}", file=sys.stderr)
    return 2


def _problems(report: rec_backup.CopyReport, doing: str, advice: str) -> int:
    if not report.problems:
        return 0
    count = len(report.problems)
    print(
        f"hotline: {count} recording file{'s' if count > 1 else ''} could not be {doing}:",
        file=sys.stderr,
    )
    for problem in report.problems:
        print(f"  {problem.line()}", file=sys.stderr)
    print(advice, file=sys.stderr)
    return 1


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    if not args.dest:
        return _usage(
            "give the backup directory, e.g. `hotline backup /srv/backup/hotline`; it is "
            "created if missing, and a later backup into it copies only new recordings"
        )
    migrate.upgrade(settings)

    async def run() -> BackupOutcome:
        db = Database.open(settings)
        try:
            return await back_up(db, args.dest, verify=args.verify, prune=args.prune)
        finally:
            await db.close()

    outcome = asyncio.run(run())
    print(backup_summary(outcome))
    if outcome.report.unreferenced:
        print(
            f"note: {len(outcome.report.unreferenced):,} files in the backup belong to no "
            f"complete recording any more (purged); `hotline backup {args.dest} --prune` "
            f"deletes them from the backup"
        )
    return _problems(
        outcome.report,
        "backed up",
        "The database and every other file are in the backup. A file that does not match "
        "the sha256 taken at ingest was changed or damaged on disk since: get the good copy "
        "from an older backup (restore it with --recordings-dir into a spare directory), "
        "put it back under recordings_dir and run the backup again.",
    )


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    if not args.src:
        return _usage(
            "give the backup to restore, e.g. `hotline restore /srv/backup/hotline --yes` "
            "(the directory `hotline backup` wrote, or an older single-file backup)"
        )
    if not args.yes:
        if not sys.stdin.isatty():
            raise ValidationError(
                "restore replaces all current data (the database and the recordings it "
                "names); add --yes to confirm"
            )
        answer = input(
            f"Replace ALL data in {_shown_url(settings.database_url)} with {args.src}? [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("restore cancelled")
            return 1
    outcome = asyncio.run(restore(settings, args.src, args.recordings_dir))
    print(restore_summary(outcome, settings))
    if outcome.report and outcome.report.unreferenced:
        print(
            f"note: {len(outcome.report.unreferenced):,} files in the backup belong to no "
            f"complete recording in the restored database; they were left in the backup"
        )
    if (
        args.recordings_dir
        and Path(args.recordings_dir).resolve() != Path(settings.recordings_dir).resolve()
    ):
        print(
            f"note: the server reads recordings from recordings_dir ({settings.recordings_dir});"
            f" set HOTLINE_RECORDINGS_DIR={args.recordings_dir} (or recordings_dir in "
            f"hotline.toml) to serve the restored ones"
        )
    if outcome.report is None:
        return 0
    return _problems(
        outcome.report,
        "restored",
        "The database is restored; the recordings listed above are not (a file that does "
        "not match its sha256 was left out). Restore them from another backup with "
        "`hotline restore OTHER --yes`, or copy them from OTHER/recordings by hand.",
    )


def register(commands: Any) -> None:
    bk = commands.add_parser(
        "backup", help="online backup of the database and the recordings into a directory"
    )
    bk.add_argument(
        "dest",
        nargs="?",
        metavar="DEST",
        help="backup directory; created if missing; a later run into it copies only new files",
    )
    bk.add_argument(
        "--verify",
        action="store_true",
        help="re-hash every file in the backup and under recordings_dir, not only new ones",
    )
    bk.add_argument(
        "--prune",
        action="store_true",
        help="delete from the backup the files of recordings no longer in the database",
    )
    bk.set_defaults(handler=cmd_backup)
    rs = commands.add_parser(
        "restore", help="replace all data with a backup (database and recordings)"
    )
    rs.add_argument("src", nargs="?", metavar="SRC", help="the directory `hotline backup` wrote")
    rs.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rs.add_argument(
        "--recordings-dir", metavar="DIR", help="put the recordings here (default: recordings_dir)"
    )
    rs.set_defaults(handler=cmd_restore)

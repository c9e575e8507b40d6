"""`hotline import KIND FILE`: customer data from CSV/XLSX, with a dry run and an error report."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import agent_desktop.admin.technician_import  # noqa: F401 - registers the technicians kind
from agent_desktop.cli.commands import _with_db
from crm_core.db import Database
from crm_core.importing import ImportOptions, ImportReport, Outcome, kind_names, run_import
from crm_core.progress import Progress

LABELS = {
    Outcome.NEW: "new",
    Outcome.UPDATED: "updated",
    Outcome.UNCHANGED: "unchanged",
    Outcome.DUPLICATE: "duplicate",
    Outcome.INVALID: "invalid",
}


def default_report_path(var_dir: str, source: Path, kind: str, dry_run: bool) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    mode = "-dry-run" if dry_run else ""
    return Path(var_dir) / "imports" / f"{source.stem}-{kind}-{stamp}{mode}-errors.csv"


def _summary(report: ImportReport) -> list[str]:
    mode = "dry run, nothing written" if report.dry_run else "imported"
    rate = report.rows / report.seconds if report.seconds else 0.0
    lines = [f"{report.kind} from {report.source} ({report.encoding}): {mode}"]
    lines += [f"  {LABELS[o]:<10} {report.counts[o.value]:>9,}" for o in Outcome]
    lines.append(
        f"  {'rows':<10} {report.rows:>9,} in {report.batches} batch(es), "
        f"{report.seconds:.1f}s ({rate:,.0f} rows/s)"
    )
    lines += [f"warning: {text}" for text in report.warnings]
    if report.report_path:
        lines.append(f"error report: {report.report_path} ({len(report.problems):,} problem(s))")
    return lines


async def _import(db: Database, args: argparse.Namespace) -> int:
    path = Path(args.file)
    report_path = Path(args.report) if args.report else None
    options = ImportOptions(
        kind=args.kind,
        dry_run=args.dry_run,
        mapping=Path(args.mapping) if args.mapping else None,
        sheet=args.sheet,
        batch_size=args.batch_size,
        report_path=report_path,
    )
    bar: Progress | None = None

    def progress(done: int, expected: int) -> None:
        nonlocal bar
        if args.json:
            return
        bar = bar or Progress(f"importing {args.kind}", max(expected, done), " rows")
        bar.total = max(bar.total, done)
        bar.update(done - bar.done)

    report = await run_import(db, path, options, progress)
    if bar is not None:
        bar.finish()
    if report_path is None and report.problems:
        target = default_report_path(db.settings.var_dir, path, args.kind, args.dry_run)
        report.write_csv(target)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print("\n".join(_summary(report)))
    return 0


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("a batch is 1 to 10,000 rows")
    return value


def register(commands: Any) -> None:
    p = commands.add_parser(
        "import",
        help="import customers, contacts, vehicles or technicians from a CSV or XLSX file",
        description="Rows are checked, matched to stored records and written in batches "
        "(one transaction each); importing the same file again changes nothing. "
        "See docs/import.md.",
    )
    p.add_argument("kind", choices=kind_names(), help="what the file holds")
    p.add_argument("file", help="a .csv (UTF-8, UTF-8 with BOM, GBK/GB18030) or .xlsx file")
    p.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    p.add_argument("--mapping", help='TOML file: [columns] "header" = "field"')
    p.add_argument("--report", help="write the error report CSV here")
    p.add_argument("--sheet", help="the XLSX sheet to read (default: the first)")
    p.add_argument("--batch-size", type=_batch_size, default=1000, help="rows per transaction")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(handler=_with_db(_import))

"""One import run: read, map, validate, and write in batches, each batch one transaction.

A crash leaves only whole batches; running the same file again matches the rows already in
the database (they come out "unchanged") and writes the rest. A dry run does exactly the
same work and rolls every batch back, so its counts are the ones a real run would give.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_core.db import Database
from crm_core.importing.checking import checked_chunks, checker, chunks, worker_pool
from crm_core.importing.kinds import ImportContext, ImportKind, get_kind
from crm_core.importing.mapping import ColumnMap, load_mapping_file, map_columns
from crm_core.importing.reading import open_rows
from crm_core.importing.report import ImportReport, Outcome

BATCH_SIZE = 1000
PARALLEL_FROM = 20_000  # expected rows; below, starting a worker costs more than it saves


@dataclass(frozen=True)
class ImportOptions:
    kind: str
    dry_run: bool = False
    mapping: Path | None = None
    sheet: str | None = None
    batch_size: int = BATCH_SIZE
    user_id: int | None = None
    report_path: Path | None = None
    source_name: str | None = None  # what history notes call the file (uploads: its name)
    parallel: bool | None = None  # check rows in a worker process; None: for large files


Progress = Callable[[int, int], None]  # (rows done, rows expected)


class _Batches:
    def __init__(
        self, db: Database, kind: ImportKind, ctx: ImportContext, report: ImportReport
    ) -> None:
        self.db, self.kind, self.ctx, self.report = db, kind, ctx, report
        self.pending: list[Any] = []

    async def flush(self) -> None:
        if not self.pending:
            return
        rows, self.pending = self.pending, []
        async with self.db.engine.connect() as conn:
            transaction = await conn.begin()
            try:
                results = await self.kind.write_batch(conn, rows, self.ctx)
                if len(results) != len(rows):
                    raise RuntimeError(f"import kind {self.kind.name} answered for wrong rows")
            except BaseException:
                await transaction.rollback()
                raise
            if self.ctx.dry_run:
                await transaction.rollback()
            else:
                await transaction.commit()
        self.report.batches += 1
        for outcome, problem in results:
            self.report.add(outcome, problem)


def _columns(kind: ImportKind, header: list[str], options: ImportOptions) -> ColumnMap:
    overrides = load_mapping_file(options.mapping, kind.fields) if options.mapping else None
    return map_columns(header, kind.aliases, kind.required, overrides)


async def run_import(
    db: Database, path: Path, options: ImportOptions, progress: Progress | None = None
) -> ImportReport:
    """Import one file; ImportFileError/MissingColumn for a file that cannot be read at all."""
    started = time.monotonic()
    kind = get_kind(options.kind)
    source = open_rows(path, options.sheet)
    name = options.source_name or path.name
    report = ImportReport(kind.name, name, options.dry_run, source.encoding)
    try:
        columns = _columns(kind, source.header, options)
    except BaseException:
        source.close()
        raise
    if columns.unknown:
        ignored = ", ".join(columns.unknown)
        report.warnings.append(f"columns not imported (not understood): {ignored}")
    ctx = ImportContext(db.settings.home_area_code, name, options.dry_run, options.user_id)
    batches = _Batches(db, kind, ctx, report)
    parallel = options.parallel
    if parallel is None:
        parallel = source.expected >= PARALLEL_FROM
    pool = worker_pool(kind.validate) if parallel else None
    check = checker(kind.validate, columns, ctx.home_area_code, name)
    try:
        async for checked in checked_chunks(chunks(source.rows, options.batch_size), check, pool):
            for problems in checked.invalid:
                report.counts[Outcome.INVALID.value] += 1
                report.problems.extend(problems)
            batches.pending = checked.valid
            await batches.flush()
            if progress:
                progress(report.rows, source.expected)
    finally:
        source.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if report.rows == 0:
        report.warnings.append("the file has a header but no data rows")
    if progress:
        progress(report.rows, source.expected)
    report.seconds = time.monotonic() - started
    if options.report_path is not None:
        report.write_csv(options.report_path)
    return report

"""Row checks of one chunk, runnable in a worker process.

Checking a row (phone parsing, VIN check digit, pinyin keys of a new name) costs more than
writing it; for a large file the chunks are checked in a separate process while this one
reads the file and writes the previous batch (runner.py). The work here is pure: rows in,
rows out, nothing shared.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from crm_core.importing.kinds import ImportContext, RowInvalid, RowValues, Validator
from crm_core.importing.mapping import ColumnMap
from crm_core.importing.report import Problem

Chunk = list[tuple[int, list[str]]]
# One core stays for reading and writing; on two cores that is one worker.
WORKERS = max(1, min(3, (os.cpu_count() or 2) - 1))
AHEAD = 2 * WORKERS + 1  # chunks in flight: workers never wait, memory stays bounded


@dataclass
class Checked:
    valid: list[Any] = field(default_factory=list)
    invalid: list[list[Problem]] = field(default_factory=list)


def too_wide(line: int, cells: list[str], width: int) -> Problem | None:
    extra = [c for c in cells[width:] if c.strip()]
    if not extra:
        return None
    return Problem(
        line,
        f"column {width + 1}+",
        extra[0][:100],
        f"this row has {len(cells)} cells but the header names only {width} columns",
    )


def check_chunk(
    validate: Validator, columns: ColumnMap, area: str, source: str, chunk: Chunk
) -> Checked:
    ctx = ImportContext(area, source)
    width = len(columns.headers)
    out = Checked()
    for line, cells in chunk:
        problem = too_wide(line, cells, width)
        if problem is not None:
            out.invalid.append([problem])
            continue
        try:
            out.valid.append(validate(RowValues(line, columns.values(cells), columns), ctx))
        except RowInvalid as exc:
            out.invalid.append(exc.problems)
    return out


def chunks(rows: Iterable[tuple[int, list[str]]], size: int) -> Iterator[Chunk]:
    chunk: Chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def worker_pool(validate: Validator) -> Executor | None:
    """A one-process pool (spawned: nothing of this process's threads or loop is copied),
    or None when the validator cannot be sent to another process (a lambda, a closure)."""
    try:
        pickle.dumps(validate)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None
    return ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"))


async def checked_chunks(
    source: Iterator[Chunk], check: Callable[[Chunk], Checked], pool: Executor | None
) -> AsyncIterator[Checked]:
    """The checked chunks in file order, checked here or, a few ahead, in the pool."""
    if pool is None:
        for chunk in source:
            yield check(chunk)
        return
    loop = asyncio.get_running_loop()
    pending: deque[asyncio.Future[Checked]] = deque()
    try:
        for chunk in source:
            pending.append(loop.run_in_executor(pool, check, chunk))
            if len(pending) >= AHEAD:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for future in pending:
            future.cancel()


def checker(
    validate: Validator, columns: ColumnMap, area: str, source: str
) -> Callable[[Chunk], Checked]:
    return partial(check_chunk, validate, columns, area, source)

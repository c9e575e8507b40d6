"""The registry of import kinds: a kind is its header aliases, a row validator and a batch
writer. customers, contacts and vehicles are built in; another package registers its own
(the admin feature's `technicians`, say) with `register_kind` at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from crm_core.importing.errors import UnknownImportKind
from crm_core.importing.mapping import ColumnMap
from crm_core.importing.report import Outcome, Problem


class ValidRow(Protocol):
    line: int


@dataclass(frozen=True)
class RowValues:
    """One data row: its number as Excel shows it, and field → non-empty text."""

    line: int
    values: dict[str, str]
    columns: ColumnMap

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def header(self, name: str) -> str:
        return self.columns.header_of(name) if name in self.columns.columns else name


class RowInvalid(Exception):
    """A row that fails validation; it is reported and never written."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.reason for p in problems))
        self.problems = list(problems)


@dataclass
class ImportContext:
    """What a kind's validator and writer know about the run."""

    home_area_code: str
    source: str
    dry_run: bool = False
    user_id: int | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Keys already met earlier in this file (code, phone, VIN, ...) → the row that had them,
    # kept as 64-bit hashes: 500k keys of a 100k-row file cost 50 MB instead of 115 MB (a
    # false "duplicate" would need a hash collision: about 1 in 10^8 for such a file).
    seen: dict[int, int] = field(default_factory=dict)

    def earlier_row(self, key: str, value: str) -> int | None:
        """The row of this file that already had this key, if any."""
        return self.seen.get(hash((key, value)))

    def remember(self, key: str, value: str, line: int) -> None:
        self.seen.setdefault(hash((key, value)), line)

    @property
    def note(self) -> str:
        return f"imported from {self.source}"[:300]


RowResult = tuple[Outcome, Problem | None]
Validator = Callable[[RowValues, ImportContext], Any]
BatchWriter = Callable[[AsyncConnection, Sequence[Any], ImportContext], Awaitable[list[RowResult]]]


@dataclass(frozen=True)
class ImportKind:
    name: str
    label: str  # shown in the upload form
    aliases: Mapping[str, tuple[str, ...]]  # field → headers that mean it
    required: tuple[tuple[str, ...], ...]  # each group: at least one of these columns
    validate: Validator  # RowValues → a row object with `.line`, or raises RowInvalid
    write_batch: BatchWriter  # one result per row, in order; runs inside the batch's transaction

    @property
    def fields(self) -> list[str]:
        return list(self.aliases)


_KINDS: dict[str, ImportKind] = {}


def register_kind(kind: ImportKind, *, replace: bool = False) -> None:
    if kind.name in _KINDS and not replace:
        raise ValueError(f"import kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind


def get_kind(name: str) -> ImportKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownImportKind(
            f"unknown import kind {name!r}; known: {', '.join(kind_names())}", kind=name
        ) from None


def kind_names() -> list[str]:
    return list(_KINDS)

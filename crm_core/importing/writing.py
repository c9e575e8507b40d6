"""Bulk writes that leave rows exactly as the app's services would: the same pinyin and
initials keys, the same phone keys (e164, reversed digits), and a change-history entry
("import", with before/after snapshots as history.capture takes them) per record written.
Everything here runs inside the batch's one transaction.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, false, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_core.importing.kinds import ImportContext
from crm_core.models import ChangeRecord, PhoneNumber
from crm_core.phones import Phone, suffix_key
from crm_core.records import to_json

IN_CHUNK = 900  # parameters per IN (...) list: well under every backend's limit
HISTORY = cast(Table, ChangeRecord.__table__)
PHONES = cast(Table, PhoneNumber.__table__)


async def select_in(
    conn: AsyncConnection, table: Table, column: str, keys: Iterable[Any], *extra: Any
) -> list[Any]:
    """Rows of `table` whose `column` is one of `keys`, fetched in chunks."""
    wanted = sorted(set(keys))
    rows: list[Any] = []
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start : start + IN_CHUNK]
        query = select(table).where(table.c[column].in_(chunk), *extra)
        rows.extend((await conn.execute(query)).all())
    return rows


async def reserve_ids(conn: AsyncConnection, table: Table, count: int) -> list[int]:
    """`count` new ids for `table`, safe beside other writers.

    INSERT ... RETURNING with the rows' order kept falls back to one statement per row on
    SQLite (measured: 40% of an import's time), so ids are taken first and the rows then go
    in with one executemany. PostgreSQL hands out sequence values; SQLite has one writer at
    a time, so once this transaction holds the write lock, max(id)+1... are ours (an INTEGER
    PRIMARY KEY takes max(rowid)+1 anyway)."""
    if conn.dialect.name == "postgresql":
        query = text(
            "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
        )
        result = await conn.execute(query, {"table": table.name, "n": count})
        return sorted(int(v) for v in result.scalars())
    # A write statement takes SQLite's write lock, even one that changes no row.
    await conn.execute(update(table).where(false()).values(id=table.c.id))
    top = (await conn.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + count))


async def insert_returning_ids(
    conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert many rows (one executemany) and give their new ids in the same order."""
    if not rows:
        return []
    ids = await reserve_ids(conn, table, len(rows))
    await conn.execute(insert(table), [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
    return ids


async def update_by_id(
    conn: AsyncConnection, table: Table, changes: dict[int, dict[str, Any]]
) -> None:
    """Per-row updates, grouped by which columns change, one executemany per group."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for row_id, values in changes.items():
        params = {f"b_{k}": v for k, v in values.items()}
        groups[frozenset(values)].append({"b_id": row_id, **params})
    for keys, batch in groups.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({k: bindparam(f"b_{k}") for k in sorted(keys)})
        )
        await conn.execute(statement, batch)


def phone_row(
    customer_id: int, contact_id: int | None, label: str, raw: str, phone: Phone
) -> dict[str, Any]:
    """The row history.replace_phones writes for one number."""
    return {
        "customer_id": customer_id,
        "contact_id": contact_id,
        "label": label or "phone",
        "raw": raw.strip(),
        "e164": phone.e164,
        "digits_rev": suffix_key(phone.digits),
        "kind": phone.kind,
    }


async def insert_phones(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(PHONES), rows)


@functools.cache
def _column_keys(table: Table) -> tuple[str, ...]:
    return tuple(c.key for c in table.columns)


def snapshot_of(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """What records.snapshot gives for a row with these column values."""
    out = {}
    for key in _column_keys(table):
        value = values.get(key)
        out[key] = value if value is None or type(value) in _PLAIN else to_json(value)
    return out


_PLAIN = frozenset({str, int, bool, float})


def history_row(
    ctx: ImportContext,
    entity: str,
    entity_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    what: str,
) -> dict[str, Any]:
    return {
        "entity": entity,
        "entity_id": entity_id,
        "action": "import",
        "before": before,
        "after": after,
        "user_id": ctx.user_id,
        "at": ctx.now,
        "note": f"{what}; {ctx.note}"[:300],
    }


async def insert_history(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(HISTORY), rows)


@functools.cache
def _defaults(table: Table) -> tuple[tuple[str, Any], ...]:
    """(column, scalar default or None) for every column but id and the timestamps."""
    out = []
    for column in table.columns:
        if column.key in ("id", "created_at", "updated_at"):
            continue
        default = column.default
        scalar = default is not None and default.is_scalar
        out.append((column.key, getattr(default, "arg", None) if scalar else None))
    return tuple(out)


def full_row(table: Table, values: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Every column but id, so an executemany has one shape; model defaults filled in."""
    out = {key: values.get(key, default) for key, default in _defaults(table)}
    for key in ("created_at", "updated_at"):
        if key in table.columns:
            out[key] = values.get(key, now)
    return out


def differences(stored: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    """The wanted values that differ from the stored row (empty file cells never clear)."""
    return {k: v for k, v in wanted.items() if getattr(stored, k) != v}

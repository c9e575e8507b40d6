"""Who is calling? Ranked candidates for a caller number across customer and contact phones.

This sits on the hot path of every incoming call, so it is one indexed Core query with no
ORM object loading. An exact canonical match always outranks a suffix match, and several
matches come back as several candidates: the agent chooses, we never guess "the first".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

import aiosqlite
import asyncpg
from sqlalchemy import Dialect, Select, and_, bindparam, false, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from crm_core.db import Database, sqlite_path
from crm_core.models import Contact, Customer, PhoneNumber
from crm_core.phones import normalize, suffix_key
from crm_core.settings import Settings

# Long enough that a different number is unlikely to share it, short enough to catch a
# landline stored under another area code or a number keyed in without its prefix.
SUFFIX_DIGITS = 8
MAX_CANDIDATES = 20


@dataclass(frozen=True)
class Candidate:
    customer_id: int
    customer_code: str
    customer_name: str
    contact_id: int | None
    contact_name: str | None
    number: str
    match: Literal["exact", "suffix"]
    score: float
    vip_level: int
    blocked: bool
    owner_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """[low, high) bounds so `col >= low AND col < high` is a prefix match using a b-tree."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _lookup_query(e164: Any, with_suffix: bool) -> Select[Any]:
    p, c, ct = PhoneNumber.__table__, Customer.__table__, Contact.__table__
    matches = [p.c.e164 == e164]
    if with_suffix:
        matches.append(and_(p.c.digits_rev >= bindparam("low"), p.c.digits_rev < bindparam("high")))
    return (
        select(
            p.c.e164,
            p.c.contact_id,
            c.c.id,
            c.c.code,
            c.c.name,
            c.c.vip_level,
            c.c.blocked,
            c.c.owner_id,
            ct.c.name.label("contact_name"),
        )
        .select_from(p.join(c, c.c.id == p.c.customer_id).outerjoin(ct, ct.c.id == p.c.contact_id))
        .where(or_(*matches))
        .where(c.c.deleted == false(), c.c.merged_into_id.is_(None))
        .where(or_(p.c.contact_id.is_(None), ct.c.deleted == false()))
        .limit(MAX_CANDIDATES * 3)
    )


class _Row(NamedTuple):
    e164: str
    contact_id: int | None
    id: int
    code: str
    name: str
    vip_level: int
    blocked: bool
    owner_id: int | None
    contact_name: str | None


def _rank(rows: Iterable[Sequence[Any]], e164: str) -> list[Candidate]:
    best: dict[tuple[int, int | None], Candidate] = {}
    for raw in rows:
        row = _Row(*raw)
        exact = row.e164 == e164
        # Exact beats suffix; the customer's own number beats a contact's; VIP breaks ties.
        score = (1.0 if exact else 0.5) - (0.05 if row.contact_id else 0.0) + row.vip_level * 0.001
        candidate = Candidate(
            customer_id=row.id,
            customer_code=row.code,
            customer_name=row.name,
            contact_id=row.contact_id,
            contact_name=row.contact_name,
            number=row.e164,
            match="exact" if exact else "suffix",
            score=round(score, 4),
            vip_level=row.vip_level,
            blocked=bool(row.blocked),
            owner_id=row.owner_id,
        )
        key = (row.id, row.contact_id)
        if key not in best or best[key].score < candidate.score:
            best[key] = candidate
    ranked = sorted(best.values(), key=lambda c: (-c.score, c.customer_id, c.contact_id or 0))
    return ranked[:MAX_CANDIDATES]


@dataclass(frozen=True)
class CompiledLookup:
    """The lookup query as driver-level SQL: compiled once, executed with no ORM in between."""

    sql: str
    param_order: tuple[str, ...]
    fixed: dict[str, Any]  # parameters with values in the query itself (the LIMIT)

    def params(self, e164: str, rev_prefix: str | None) -> list[Any]:
        values = {**self.fixed, "e164": e164}
        if rev_prefix is not None:
            values["low"], values["high"] = prefix_bounds(rev_prefix)
        return [values[name] for name in self.param_order]


def compile_lookup(dialect_name: str, with_suffix: bool) -> CompiledLookup:
    dialect: Dialect = (
        sqlite.dialect(paramstyle="qmark")
        if dialect_name == "sqlite"
        else postgresql.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
    )
    compiled = _lookup_query(bindparam("e164"), with_suffix).compile(dialect=dialect)
    fixed = {k: v for k, v in compiled.params.items() if v is not None}
    return CompiledLookup(str(compiled), tuple(compiled.positiontup or ()), fixed)


async def _keep_state(_conn: asyncpg.Connection) -> None:
    """Lookups only read and change no session state, so the pool's RESET ALL round trip on
    every release is pure latency; skip it."""


class NumberLookup:
    """Caller lookup on its own long-lived driver connection, for the call hot path.

    A pooled SQLAlchemy checkout plus statement execution costs several times the query
    itself on SQLite (each step is a hop to aiosqlite's thread), so the lookup keeps one
    read connection (SQLite, WAL lets it read beside writers) or a small asyncpg pool, and
    runs SQL compiled once from the same Core query the rest of the code understands.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        dialect = "sqlite" if settings.is_sqlite else "postgresql"
        self._exact = compile_lookup(dialect, with_suffix=False)
        self._suffix = compile_lookup(dialect, with_suffix=True)
        self._sqlite: aiosqlite.Connection | None = None
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> NumberLookup:
        """Idempotent: a second open keeps the first connection rather than orphaning it."""
        if self._sqlite is not None or self._pool is not None:
            return self
        path = sqlite_path(self.settings.database_url)
        if path is not None:
            connection = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True)
            try:
                await connection.execute("PRAGMA busy_timeout=5000")
            except BaseException:
                await connection.close()
                raise
            self._sqlite = connection
        else:
            url = self.settings.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
            self._pool = await asyncpg.create_pool(url, min_size=1, max_size=4, reset=_keep_state)
        return self

    async def close(self) -> None:
        connection, self._sqlite = self._sqlite, None
        pool, self._pool = self._pool, None
        if connection is not None:
            await connection.close()
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> NumberLookup:
        return await self.open()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _fetch(self, query: CompiledLookup, params: list[str]) -> Iterable[Sequence[Any]]:
        if self._sqlite is not None:
            async with self._sqlite.execute(query.sql, params) as cursor:
                return list(await cursor.fetchall())
        if self._pool is None:
            raise RuntimeError("NumberLookup used before open()")
        rows: list[Sequence[Any]] = await self._pool.fetch(query.sql, *params)
        return rows

    async def find(self, raw_number: str | None) -> list[Candidate]:
        """Candidates for a caller ID; anonymous or garbage numbers simply find nobody."""
        phone = normalize(raw_number, home_area_code=self.settings.home_area_code)
        if phone is None:
            return []
        rev = suffix_key(phone.digits)
        rev_prefix = rev[:SUFFIX_DIGITS] if len(rev) >= SUFFIX_DIGITS else None
        query = self._suffix if rev_prefix is not None else self._exact
        rows = await self._fetch(query, query.params(phone.e164, rev_prefix))
        return _rank(rows, phone.e164)


async def lookup_by_number(db: Database, raw_number: str | None) -> list[Candidate]:
    """One-off lookup (CLI, tests). Long-running callers keep a NumberLookup open instead."""
    async with NumberLookup(db.settings) as finder:
        return await finder.find(raw_number)

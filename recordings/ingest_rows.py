"""The ingest's database side, in Core statements: claim a batch of files (new rows and
leases in one transaction) and write a batch of outcomes (one transaction).

Why Core and not the ORM: loading, tracking and flushing Recording objects cost several
milliseconds a batch on the event loop, and while the loop is busy the ingest threads'
finished files wait for it. At 40 files of two minutes each that was most of the ingest's
time (bench/recording_ingest.py). The ORM rows are read once, at the end, and only for a
caller that asks for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Table, Text, bindparam, cast, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_core.db import Database
from recordings.meta import CallMeta
from recordings.models import Recording, RecordingState
from recordings.storage import dated_name

RECORDINGS: Table = Recording.__table__  # type: ignore[assignment]
# An ingest holds its row this long at most; a crashed holder's files are retried after it.
LEASE_SECONDS = 120
DONE = frozenset(
    {RecordingState.COMPLETE.value, RecordingState.QUARANTINED.value, RecordingState.PURGED.value}
)
LINK_FIELDS = (
    "linkedid", "call_id", "customer_id", "agent_id", "queue", "service_request_id",
    "direction", "answered_at", "ended_at", "talk_seconds",
)  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """What the ingest needs of a row: which file, where it goes, and whether it is done."""

    id: int
    source_path: str
    state: str
    wav_path: str | None
    leased: bool  # we hold its lease: ours to examine

    @property
    def done(self) -> bool:
        return self.state in DONE


@dataclass(frozen=True)
class Outcome:
    """What examining one file decided, written later with others in one transaction."""

    key: str
    recording_id: int
    # None: nothing to write, only give the lease back. A complete file's "peaks" is JSON text.
    values: Mapping[str, object] | None
    attempt: bool = False


class IngestRows:
    def __init__(self, db: Database, node: str) -> None:
        self.db = db
        self.node = node  # the lease holder's name: this process

    async def claim(self, metas: Sequence[CallMeta]) -> dict[str, Claim]:
        """key -> claim, in one transaction. New rows are created holding our lease; a row
        that exists is re-linked to its call (when the call log sent it) and leased if it
        is free. Raises an integrity error if another node created one of the rows first:
        the caller tries again, and then reads theirs."""
        async with self.db.engine.begin() as conn:
            existing = await self._read(conn, [m.key for m in metas], leased=False)
            fresh = [meta for meta in metas if meta.key not in existing]
            claims: dict[str, Claim] = {}
            if fresh:  # one executemany, which also says which ids the rows got
                now = datetime.now(UTC)
                t = RECORDINGS
                added = await conn.execute(
                    insert(t).returning(t.c.id, t.c.source_path, t.c.state, t.c.wav_path),
                    [self._new_row(meta, now) for meta in fresh],
                )
                claims.update(
                    {
                        r.source_path: Claim(r.id, r.source_path, r.state, r.wav_path, True)
                        for r in added
                    }
                )
            relinks = [
                {"rid": existing[m.key].id, **{name: getattr(m, name) for name in LINK_FIELDS}}
                for m in metas
                if m.key in existing and m.from_call_log
            ]
            if relinks:
                values: dict[str, Any] = {name: bindparam(name) for name in LINK_FIELDS}
                statement = update(RECORDINGS).where(RECORDINGS.c.id == bindparam("rid"))
                await conn.execute(statement.values(values), relinks)
            for key, found in existing.items():
                leased = not found.done and await self._take_lease(conn, found.id)
                claims[key] = Claim(found.id, key, found.state, found.wav_path, leased)
        return claims

    @staticmethod
    async def _read(conn: AsyncConnection, keys: list[str], leased: bool) -> dict[str, Claim]:
        t = RECORDINGS
        query = select(t.c.id, t.c.source_path, t.c.state, t.c.wav_path)
        result = await conn.execute(query.where(t.c.source_path.in_(keys)))
        return {
            r.source_path: Claim(r.id, r.source_path, r.state, r.wav_path, leased) for r in result
        }

    async def _take_lease(self, conn: AsyncConnection, recording_id: int) -> bool:
        # A conditional UPDATE, so two nodes reading the same free row cannot both take it.
        now = datetime.now(UTC)
        expired = now - timedelta(seconds=LEASE_SECONDS)
        t = RECORDINGS
        result = await conn.execute(
            update(t)
            .where(
                t.c.id == recording_id,
                t.c.state == RecordingState.PENDING.value,
                or_(t.c.claimed_at.is_(None), t.c.claimed_at < expired),
            )
            .values(claimed_by=self.node, claimed_at=now)
        )
        return bool(result.rowcount)

    def _new_row(self, meta: CallMeta, now: datetime) -> dict[str, object]:
        """A new pending row's values, already holding our lease."""
        return {
            "server": meta.server,
            "source_path": meta.key,
            "wav_path": dated_name(meta.ended_at or now, meta.source.name),
            "claimed_by": self.node,
            "claimed_at": now,
            **{name: getattr(meta, name) for name in LINK_FIELDS},
        }

    async def write(self, outcomes: Sequence[Outcome]) -> None:
        """Every outcome in one transaction; each gives its lease back. An outcome without
        values (the file was taken from under us) only gives the lease back. One executemany
        per shape of outcome (complete, quarantined, error)."""
        t = RECORDINGS
        shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
        for outcome in outcomes:
            if outcome.values:
                shape = tuple(sorted(outcome.values))
                shapes.setdefault(shape, []).append({"rid": outcome.recording_id, **outcome.values})
        retried = [o.recording_id for o in outcomes if o.attempt]
        async with self.db.engine.begin() as conn:
            for shape, params in shapes.items():
                values: dict[str, Any] = {name: bindparam(name) for name in shape}
                if "peaks" in values:  # JSON text already (encoded in the lane)
                    values["peaks"] = _json_text("peaks", conn.dialect.name)
                statement = update(t).where(t.c.id == bindparam("rid")).values(values)
                await conn.execute(statement, params)
            if retried:
                await conn.execute(
                    update(t).where(t.c.id.in_(retried)).values(attempts=t.c.attempts + 1)
                )
            await conn.execute(
                update(t)
                .where(t.c.id.in_([o.recording_id for o in outcomes]), t.c.claimed_by == self.node)
                .values(claimed_by=None, claimed_at=None)
            )

    async def load(self, ids: Iterable[int]) -> dict[int, Recording]:
        """The rows as ORM objects, for callers that want them (the API, tests)."""
        wanted = list(ids)
        if not wanted:
            return {}
        async with self.db.transaction() as session:
            found = await session.scalars(select(Recording).where(Recording.id.in_(wanted)))
            return {row.id: row for row in found}


def _json_text(name: str, dialect_name: str) -> Any:
    """A bind for a JSON column whose value is JSON text already: bound as text, so the JSON
    type does not encode it again. PostgreSQL needs the text cast to json; SQLite keeps JSON
    as text (and a CAST to JSON there would give the value numeric affinity)."""
    text = bindparam(name, type_=Text)
    return cast(text, JSON) if dialect_name == "postgresql" else text

"""Optimistic concurrency for edits, without a version column (issue #17 §2).

A record's version token is a hash of its snapshot (the same one the change history keeps,
phones included, timestamps left out). An editor reads the token with the record and sends it
back with the change; if the record changed meanwhile the tokens differ and the edit is
refused with who changed it last and when, from the latest ChangeRecord. The check runs in
the edit's own transaction, after locking the row (SELECT … FOR UPDATE on PostgreSQL; SQLite
holds one writer at a time anyway), so two editors cannot both pass it.

The hash is keyed (HMAC) with a key derived from the deployment's secrets: a plain hash of a
snapshot would let someone who sees a masked number (139****1234) try the 10,000 possible
middle digits against the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, ClassVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import history
from crm_core.errors import HotlineError, NotFound
from crm_core.models import ChangeRecord, User
from crm_core.settings import Settings

# Left out of the token: they change without anyone editing the record's fields.
UNVERSIONED = frozenset({"updated_at", "created_at"})
ENTITY_ZH = {"customer": "客户", "contact": "联系人", "vehicle": "车辆"}


class StaleVersion(HotlineError):
    """The record changed since the editor read it; nothing was written."""

    status: ClassVar[int] = 409
    error_id: ClassVar[str] = "edit_conflict"


def _key(settings: Settings) -> bytes:
    secret = f"hotline-version-token:{settings.ami_secret}:{settings.sip_secret}"
    return hashlib.sha256(secret.encode()).digest()


def token_of(state: dict[str, Any] | None, settings: Settings) -> str:
    """The version token of a snapshot (from history.capture)."""
    kept = {k: v for k, v in (state or {}).items() if k not in UNVERSIONED}
    body = json.dumps(kept, sort_keys=True, default=str).encode()
    return hmac.new(_key(settings), body, hashlib.sha256).hexdigest()[:24]


def clean_token(raw: str | None) -> str | None:
    """Accept the token bare or as an ETag (`"abc"`, `W/"abc"`); None or empty means absent."""
    if raw is None:
        return None
    value = raw.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"').strip()
    return value or None


async def current(
    session: AsyncSession, entity: str, entity_id: int, settings: Settings
) -> str | None:
    """The record's token now, or None if it does not exist."""
    state = await history.capture(session, entity, entity_id)
    return None if state is None else token_of(state, settings)


async def lock(session: AsyncSession, entity: str, entity_id: int) -> None:
    """Lock the row for this transaction and reload it, so the check sees the latest commit."""
    model = history.model_for(entity)
    table = cast(Table, model.__table__)
    column = table.c.id
    if session.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE, and the driver only begins a transaction at the first
        # write: reads before it see no lock. A no-op write takes the database's write lock
        # now, so a second editor waits here and then reads the first one's commit.
        await session.execute(
            text(f"UPDATE {table.name} SET id = id WHERE id = :id"),  # noqa: S608 - table from our models
            {"id": entity_id},
        )
    await session.execute(
        select(model)
        .where(column == entity_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def last_change(
    session: AsyncSession, entity: str, entity_id: int
) -> tuple[str | None, datetime | None]:
    """Who made the latest recorded change of a record, and when."""
    row = (
        await session.execute(
            select(ChangeRecord.at, User.display_name)
            .outerjoin(User, User.id == ChangeRecord.user_id)
            .where(ChangeRecord.entity == entity, ChangeRecord.entity_id == entity_id)
            .order_by(ChangeRecord.id.desc())
            .limit(1)
        )
    ).first()
    return (row[1], row[0]) if row is not None else (None, None)


def conflict_messages(
    entity: str, who: str | None, at: datetime | None, timezone: str
) -> tuple[str, str]:
    """(Chinese, English) wording of a conflict, with the local time of the change."""
    hhmm = at.astimezone(ZoneInfo(timezone)).strftime("%H:%M") if at else "?"
    zh_who = who or "其他用户"
    en_who = who or "someone else"
    zh = f"此{ENTITY_ZH.get(entity, '记录')}已被 {zh_who} 于 {hhmm} 修改，请刷新后重试"
    en = f"This {entity} was changed by {en_who} at {hhmm}; reload it and try again"
    return zh, en


async def check(
    session: AsyncSession, entity: str, entity_id: int, expected: str, settings: Settings
) -> None:
    """Lock the record and refuse the edit unless it is still at version `expected`."""
    await lock(session, entity, entity_id)
    state = await history.capture(session, entity, entity_id)
    if state is None:
        raise NotFound(f"{entity} {entity_id} does not exist")
    actual = token_of(state, settings)
    if actual == clean_token(expected):
        return
    who, at = await last_change(session, entity, entity_id)
    zh, en = conflict_messages(entity, who, at, settings.timezone)
    raise StaleVersion(
        en,
        message_zh=zh,
        message_en=en,
        entity=entity,
        entity_id=entity_id,
        changed_by=who,
        changed_at=at.isoformat() if at else None,
        current_version=actual,
    )

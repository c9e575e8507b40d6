"""One change record (before/after, for the change history) and one audit row per admin change.

Both are written in the caller's transaction: a change that rolls back leaves no trace, and a
change that commits always has its record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from agent_desktop.admin.actor import Actor
from crm_core.models import AuditEntry, ChangeRecord
from crm_core.records import snapshot

# Never copied into the history: secrets, and their digests, stay out of every report.
SECRET_FIELDS = frozenset({"password_hash", "sip_digest", "token_hash"})


def admin_snapshot(row: DeclarativeBase) -> dict[str, Any]:
    data = {k: v for k, v in snapshot(row).items() if k not in SECRET_FIELDS}
    if hasattr(row, "sip_digest"):
        data["has_sip_secret"] = bool(row.sip_digest)
    return data


def changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    keys = set(before or {}) | set(after or {})
    return sorted(k for k in keys if (before or {}).get(k) != (after or {}).get(k))


async def log_change(
    session: AsyncSession,
    actor: Actor,
    entity: str,
    entity_id: int,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    note: str | None = None,
) -> None:
    fields = changed(before, after)
    session.add(
        ChangeRecord(
            entity=entity,
            entity_id=entity_id,
            action=action,
            before=before,
            after=after,
            user_id=actor.user_id,
            note=(note or f"{action} by {actor.name} via {actor.via}")[:300],
        )
    )
    session.add(
        AuditEntry(
            user_id=actor.user_id,
            action=f"admin_{entity}_{action}"[:50],
            object_type=entity,
            object_id=str(entity_id),
            ip=actor.ip,
            detail={"by": actor.name, "via": actor.via, "fields": fields},
        )
    )
    await session.flush()

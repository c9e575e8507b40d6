"""The audit log writer (crm_core.models.AuditEntry): refusals, reveals, security events."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from crm_core.db import Database
from crm_core.models import AuditEntry

if TYPE_CHECKING:
    from agent_desktop.common.sessions import SessionUser

log = logging.getLogger(__name__)


class HasDatabase(Protocol):
    @property
    def db(self) -> Database: ...


async def audit(
    ctx_or_db: HasDatabase | Database,
    user: SessionUser | None,
    action: str,
    object_type: str | None,
    object_id: str | None,
    ip: str | None,
    detail: dict[str, Any] | None,
) -> None:
    """Write one audit row in its own transaction, so it stays even when the request fails."""
    db = ctx_or_db if isinstance(ctx_or_db, Database) else ctx_or_db.db
    if user is not None and user.token_id is not None:
        detail = {**(detail or {}), "token_id": user.token_id}
    async with db.transaction() as session:
        session.add(
            AuditEntry(
                user_id=user.id if user and user.id > 0 else None,
                action=action[:50],
                object_type=object_type[:30] if object_type else None,
                object_id=str(object_id)[:64] if object_id is not None else None,
                ip=ip[:45] if ip else None,
                detail=detail,
            )
        )
    log.info(
        "audit %s user=%s %s:%s ip=%s",
        action,
        user.username if user else "-",
        object_type,
        object_id,
        ip,
    )

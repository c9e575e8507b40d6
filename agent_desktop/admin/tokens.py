"""API tokens (docs/api.md): create (the token is shown once), list, revoke.

The JSON API, the 系统管理 page and `hotline tokens` all call these functions: one validation,
one change record and one audit row per change. The token itself is never stored or shown
again: the database keeps its SHA-256 (common/api_tokens.py says why not argon2).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import agent_desktop.admin.users as users
import agent_desktop.common.api_tokens as api_tokens
from agent_desktop.admin.actor import Actor
from agent_desktop.admin.changes import admin_snapshot, log_change
from agent_desktop.admin.validation import integer, text
from agent_desktop.models import ApiToken
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationError
from crm_core.models import Office, User, utcnow

KINDS = ("personal", "service")
DEFAULT_RATE = 60  # requests a minute


def status_of(row: ApiToken) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and utcnow() >= row.expires_at:
        return "expired"
    return "active"


def view(row: ApiToken, username: str | None) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "prefix": row.prefix,
        "user_id": row.user_id,
        "username": username,
        "role": row.role,
        "region": row.region,
        "office": row.office,
        "rate_per_minute": row.rate_per_minute,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
        "status": status_of(row),
    }


async def _service_scope(session: AsyncSession, values: Mapping[str, Any]) -> dict[str, Any]:
    role = text(values, "role", 20, required=True)
    if role not in users.ROLES:
        raise ValidationError(f"role must be one of {', '.join(users.ROLES)}", field="role")
    office = text(values, "office", 100)
    if office is not None:
        found = await session.scalar(select(Office.id).where(Office.name == office))
        if found is None:
            raise ValidationError(f"no office {office!r}", field="office")
    return {"role": role, "region": text(values, "region", 100), "office": office}


async def _owner(session: AsyncSession, values: Mapping[str, Any]) -> User:
    ref = values.get("user")
    if not isinstance(ref, (str, int)) or ref == "":
        raise ValidationError("a personal token needs user (name or id)", field="user")
    for key in ("role", "region", "office"):
        if values.get(key):
            raise ValidationError(f"a personal token acts as its user: no {key}", field=key)
    user = await users.find_user(session, str(ref))
    if not user.active:
        raise ValidationError(f"user {user.username} is disabled", field="user")
    return user


async def create_token(
    db: Database, actor: Actor, values: Mapping[str, Any]
) -> tuple[dict[str, Any], str]:
    """A new token; returns its view and the token itself, which is shown this once."""
    name = text(values, "name", 100, required=True)
    kind = text(values, "kind", 10) or "personal"
    if kind not in KINDS:
        raise ValidationError("kind must be personal or service", field="kind")
    rate = integer(values, "rate_per_minute", 1, 6000) or DEFAULT_RATE
    days = integer(values, "expires_in_days", 1, 3650)
    token = api_tokens.new_token()
    async with db.transaction() as session:
        owner = await _owner(session, values) if kind == "personal" else None
        scope = await _service_scope(session, values) if kind == "service" else {}
        now = utcnow()
        row = ApiToken(
            name=name,
            kind=kind,
            token_hash=api_tokens.token_hash(token),
            prefix=token[:12],
            user_id=owner.id if owner else None,
            rate_per_minute=rate,
            created_by=actor.user_id,
            created_at=now,
            expires_at=now + timedelta(days=days) if days else None,
            **scope,
        )
        session.add(row)
        await session.flush()
        await log_change(session, actor, "api_token", row.id, "create", None, admin_snapshot(row))
        return view(row, owner.username if owner else None), token


async def list_tokens(db: Database) -> list[dict[str, Any]]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(ApiToken, User.username)
            .outerjoin(User, User.id == ApiToken.user_id)
            .order_by(ApiToken.id)
        )
        return [view(row, username) for row, username in rows]


async def revoke_token(db: Database, actor: Actor, ref: int | str) -> dict[str, Any]:
    """Revoke for good (kept for the record); revoking twice changes nothing."""
    if isinstance(ref, str) and not ref.isdigit():
        raise NotFound(f"no API token {ref}")
    async with db.transaction() as session:
        row = await session.get(ApiToken, int(ref))
        if row is None:
            raise NotFound(f"no API token {ref}")
        if row.revoked_at is None:
            before = admin_snapshot(row)
            row.revoked_at = utcnow()
            await log_change(
                session, actor, "api_token", row.id, "revoke", before, admin_snapshot(row)
            )
        owner = await session.get(User, row.user_id) if row.user_id is not None else None
        return view(row, owner.username if owner else None)

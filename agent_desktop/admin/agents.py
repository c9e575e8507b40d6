"""Agent phones: a PJSIP extension with a generated secret, queue memberships, sticky flag.

The SIP secret is shown once; only its HA1 digest (md5 of "extension:realm:secret") is kept,
which is what Asterisk's `password_digest` needs to check a phone's REGISTER.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select

from agent_desktop.admin.actor import Actor
from agent_desktop.admin.changes import log_change
from agent_desktop.admin.errors import AdminRefused
from agent_desktop.admin.users import find_user, view
from crm_core.db import Database
from crm_core.errors import DuplicateCode, ValidationError
from crm_core.models import CallQueue, QueueMember, Role

REALM = "hotline"  # pjsip.conf default_realm and each auth's realm
EXTENSION = re.compile(r"^[1-9]\d{2,5}$")
# Numbers the dialplan already uses: the technician desk and the two queue test numbers.
RESERVED = frozenset({"7000", "7001", "8000"})
PHONE_ROLES = (Role.AGENT.value, Role.SUPERVISOR.value, Role.ADMIN.value, Role.DISPATCHER.value)


def sip_digest(extension: str, secret: str) -> str:
    # MD5 because SIP digest authentication (RFC 2617) is defined over it; not a password hash.
    return hashlib.md5(f"{extension}:{REALM}:{secret}".encode(), usedforsecurity=False).hexdigest()


def _extension(value: object) -> str:
    extension = str(value or "").strip()
    if not EXTENSION.match(extension):
        raise ValidationError("an extension is 3-6 digits, not starting with 0", field="extension")
    if extension in RESERVED:
        raise ValidationError(f"{extension} is used by the dialplan", field="extension")
    return extension


async def assign_extension(
    db: Database, actor: Actor, ref: int | str, extension: object
) -> tuple[dict[str, Any], str]:
    """Give the user this extension with a fresh secret; returns the secret (shown once)."""
    number = _extension(extension)
    secret = secrets.token_urlsafe(18)
    async with db.transaction() as session:
        row = await find_user(session, ref)
        if row.role not in PHONE_ROLES:
            raise ValidationError(
                f"a {row.role} has no desk phone; technicians are reached by SMS",
                field="extension",
            )
        if not row.active:
            raise AdminRefused(f"{row.username} is disabled; enable the account first")
        interface = f"PJSIP/{number}"
        from crm_core.models import User

        holder = (
            await session.scalars(
                select(User.username).where(User.phone_interface == interface, User.id != row.id)
            )
        ).first()
        if holder is not None:
            raise DuplicateCode(f"extension {number} belongs to {holder}", field="extension")
        before = await view(session, row)
        row.phone_interface = interface
        row.sip_digest = sip_digest(number, secret)
        await session.flush()
        after = await view(session, row)
        await log_change(session, actor, "user", row.id, "extension", before, after)
        return after, secret


async def remove_extension(db: Database, actor: Actor, ref: int | str) -> dict[str, Any]:
    async with db.transaction() as session:
        row = await find_user(session, ref)
        before = await view(session, row)
        row.phone_interface = None
        row.sip_digest = None
        await session.execute(delete(QueueMember).where(QueueMember.user_id == row.id))
        await session.flush()
        after = await view(session, row)
        await log_change(session, actor, "user", row.id, "extension_removed", before, after)
        return after


def parse_memberships(items: Iterable[object]) -> list[tuple[str, int]]:
    """[{"queue": "hotline", "penalty": 0}, ...] or "hotline:0" strings, checked."""
    chosen: dict[str, int] = {}
    for item in items:
        if isinstance(item, str):
            name, _, penalty_text = item.partition(":")
            raw: dict[str, object] = {"queue": name, "penalty": penalty_text or 0}
        elif isinstance(item, dict):
            raw = item
        else:
            raise ValidationError("each queue is {queue, penalty}", field="queues")
        name = str(raw.get("queue") or "").strip()
        try:
            penalty = int(str(raw.get("penalty", 0)))
        except ValueError:
            raise ValidationError(f"penalty for {name} must be a number", field="queues") from None
        if not 0 <= penalty <= 99:
            raise ValidationError(f"penalty for {name} must be 0-99", field="queues")
        if not name:
            raise ValidationError("a queue name is missing", field="queues")
        chosen[name] = penalty
    return sorted(chosen.items())


async def set_queues(
    db: Database, actor: Actor, ref: int | str, memberships: list[tuple[str, int]]
) -> dict[str, Any]:
    """Replace the user's queue memberships (penalty: lower rings first)."""
    async with db.transaction() as session:
        row = await find_user(session, ref)
        if memberships and not row.phone_interface:
            raise ValidationError(
                f"{row.username} has no extension yet; give them one first", field="queues"
            )
        names = [name for name, _ in memberships]
        found = {
            q.name: q
            for q in (await session.scalars(select(CallQueue).where(CallQueue.name.in_(names))))
        }
        missing = sorted(set(names) - set(found))
        if missing:
            raise ValidationError(f"no queue {', '.join(missing)}", field="queues")
        before = await view(session, row)
        await session.execute(delete(QueueMember).where(QueueMember.user_id == row.id))
        for name, penalty in memberships:
            session.add(QueueMember(queue_id=found[name].id, user_id=row.id, penalty=penalty))
        await session.flush()
        after = await view(session, row)
        if after != before:
            await log_change(session, actor, "user", row.id, "queues", before, after)
        return after

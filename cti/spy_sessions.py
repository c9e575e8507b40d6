"""The spy_sessions rows and their audit trail: one row per listen/whisper/barge, written
before anything is dialled; `spy_start` and `spy_end` (with the seconds listened) go into
crm_core's audit log in the same transaction as the row change they describe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from crm_core.db import Database
from crm_core.models import AuditEntry, User
from cti.models import SpySession


@dataclass(frozen=True)
class SpyClaim:
    """The session to start: who listens to which agent's call, and how."""

    supervisor_id: int
    agent_id: int
    server: str
    linkedid: str
    mode: str
    action_id: str
    target_channel: str
    ip: str | None = None


def _at(epoch: float | None) -> datetime:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else datetime.now(UTC)


def as_dict(row: SpySession) -> dict[str, Any]:
    return {
        "id": row.id,
        "supervisor_id": row.supervisor_id,
        "agent_id": row.agent_id,
        "linkedid": row.linkedid,
        "mode": row.mode,
        "action_id": row.action_id,
        "channel": row.channel,
        "started_at": row.started_at.isoformat(),
        "answered_at": row.answered_at.isoformat() if row.answered_at else None,
        "ended_at": row.ended_at.isoformat() if row.ended_at else None,
    }


async def agent_by_interface(db: Database, interface: str) -> User | None:
    """The active user whose phone took the call."""
    async with db.transaction() as session:
        rows = await session.scalars(
            select(User).where(User.phone_interface == interface, User.active.is_(True))
        )
        return rows.first()


async def claim(db: Database, spy: SpyClaim) -> tuple[SpySession, bool]:
    """Insert the session and its `spy_start` audit row, or return the one a repeat of the
    same request made (the action id is unique): a click sent twice spies once."""
    try:
        async with db.transaction() as session:
            row = SpySession(
                supervisor_id=spy.supervisor_id,
                agent_id=spy.agent_id,
                server=spy.server,
                linkedid=spy.linkedid,
                mode=spy.mode,
                action_id=spy.action_id,
            )
            session.add(row)
            session.add(
                AuditEntry(
                    user_id=spy.supervisor_id,
                    action="spy_start",
                    object_type="call",
                    object_id=spy.linkedid[:64],
                    ip=spy.ip[:45] if spy.ip else None,
                    detail={
                        "mode": spy.mode,
                        "agent_id": spy.agent_id,
                        "server": spy.server,
                        "action_id": spy.action_id,
                        "spied_channel": spy.target_channel,
                    },
                )
            )
        return row, True
    except IntegrityError:
        async with db.transaction() as session:
            existing = (
                await session.scalars(
                    select(SpySession).where(SpySession.action_id == spy.action_id)
                )
            ).one()
        return existing, False


async def mark_answered(db: Database, action_id: str, channel: str, at: float | None) -> None:
    """The supervisor picked up: ChanSpy runs from now on."""
    async with db.transaction() as session:
        await session.execute(
            update(SpySession)
            .where(
                SpySession.action_id == action_id,
                SpySession.answered_at.is_(None),
                SpySession.ended_at.is_(None),
            )
            .values(answered_at=_at(at), channel=channel or None)
        )


async def mark_ended(
    db: Database, action_id: str, at: float | None, reason: str = ""
) -> SpySession | None:
    """End the session once (a Hangup and a resync may both report it) and audit how long
    the supervisor listened; None when it had already ended or is not ours."""
    async with db.transaction() as session:
        row = (
            await session.scalars(
                select(SpySession)
                .where(SpySession.action_id == action_id, SpySession.ended_at.is_(None))
                .with_for_update()
            )
        ).first()
        if row is None:
            return None
        ended = max(_at(at), row.started_at)
        row.ended_at = ended
        listened = (ended - row.answered_at).total_seconds() if row.answered_at else 0.0
        session.add(
            AuditEntry(
                user_id=row.supervisor_id,
                action="spy_end",
                object_type="call",
                object_id=row.linkedid[:64],
                detail={
                    "mode": row.mode,
                    "agent_id": row.agent_id,
                    "action_id": row.action_id,
                    "seconds": round(max(0.0, listened), 1),
                    "answered": row.answered_at is not None,
                    "reason": reason[:120],
                },
            )
        )
    return row

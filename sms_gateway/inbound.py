"""Received SMS: stored once per provider SID (providers retry webhooks), with an outcome."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from crm_core.db import Database
from crm_core.models import utcnow
from sms_gateway.models import SmsInbound
from sms_gateway.outbox import enqueue
from sms_gateway.templates import render


@dataclass(frozen=True)
class InboundSms:
    sid: str
    sender: str
    to: str | None
    body: str


async def store_inbound(db: Database, sms: InboundSms) -> bool:
    """Keep the message; False when this SID was stored before (a provider retry)."""
    async with db.transaction() as session:
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        result = await session.execute(
            insert(SmsInbound)
            .values(
                provider_sid=sms.sid[:64],
                from_number=sms.sender[:40],
                to_number=(sms.to or "")[:40] or None,
                body=sms.body,
                received_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["provider_sid"])
            .returning(SmsInbound.id)
        )
        return result.scalar() is not None


async def set_outcome(
    db: Database,
    sid: str,
    outcome: str,
    work_order_id: int | None = None,
    reply: tuple[str, str] | None = None,
) -> None:
    """Record what became of a message; `reply` = (template, to) queues an answer with it."""
    async with db.transaction() as session:
        await session.execute(
            update(SmsInbound)
            .where(SmsInbound.provider_sid == sid)
            .values(outcome=outcome[:50], work_order_id=work_order_id)
        )
        if reply is not None:
            template, to = reply
            await enqueue(session, to, render(template, {}), f"reply:{sid}", template=template)


async def inbound_for(db: Database, sender: str) -> list[SmsInbound]:
    async with db.transaction() as session:
        rows = await session.scalars(
            select(SmsInbound).where(SmsInbound.from_number == sender).order_by(SmsInbound.id)
        )
        return list(rows.all())

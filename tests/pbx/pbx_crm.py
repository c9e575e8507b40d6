"""A fresh SQLite CRM for a real-PBX test: the demo users (agents 1001-1003 with their
phones, a supervisor, an admin, a technician) and one customer calling from CALLER_MOBILE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pbx_harness import CALLER_MOBILE
from sqlalchemy import select

from crm_core import migrate
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.models import PhoneNumber, User
from crm_core.settings import Settings
from crm_core.users import ensure_demo_users


@asynccontextmanager
async def demo_crm(
    path: Path, owner: str | None = None, url: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Keys: db, url, customer, users (username -> id), agent (agent1001's id), phone_id
    (the customer's phone). `owner`: the username that owns the customer (sticky agent).
    `url`: a database other than the SQLite file at `path` (an empty PostgreSQL one)."""
    settings = Settings(database_url=url or f"sqlite+aiosqlite:///{path}")
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    try:
        await ensure_demo_users(db)
        async with db.transaction() as session:
            users = {u.username: u.id for u in (await session.scalars(select(User))).all()}
        values = {"name": "阜阳顺达物流有限公司", "code": "C0000001", "region": "华东"}
        if owner is not None:
            values["owner_id"] = users[owner]
        customer = await CustomerService(db).create(values, [CALLER_MOBILE])
        async with db.transaction() as session:
            phone_id = await session.scalar(
                select(PhoneNumber.id).where(PhoneNumber.customer_id == customer.id)
            )
        yield {
            "db": db,
            "url": settings.database_url,
            "customer": customer,
            "users": users,
            "agent": users["agent1001"],
            "phone_id": phone_id,
        }
    finally:
        await db.close()

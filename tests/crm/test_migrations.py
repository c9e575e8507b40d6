from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Connection

from crm_core import migrate
from crm_core.db import Database
from crm_core.models import Base, Customer


async def test_migrations_match_the_models(db: Database) -> None:
    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.current_revisions(db.settings) == migrate.head_revisions(db.settings)


async def test_upgrade_is_idempotent(db: Database) -> None:
    """A second upgrade on an up-to-date database changes nothing and keeps the data."""
    async with db.transaction() as session:
        session.add(Customer(code="IDEMP-1", name="幂等测试客户"))
    before = await migrate.current_revisions(db.settings)
    assert before == migrate.head_revisions(db.settings)
    assert await asyncio.to_thread(migrate.is_up_to_date, db.settings)
    await asyncio.to_thread(migrate.upgrade, db.settings)
    await asyncio.to_thread(migrate.upgrade, db.settings)
    assert await migrate.current_revisions(db.settings) == before
    async with db.transaction() as session:
        names = (
            await session.scalars(select(Customer.name).where(Customer.code == "IDEMP-1"))
        ).all()
    assert names == ["幂等测试客户"]

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from crm_core import migrate
from crm_core.db import Database
from crm_core.models import Base


async def test_migrations_match_the_models(db: Database) -> None:
    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.current_revisions(db.settings) == migrate.head_revisions(db.settings)


def test_upgrade_is_idempotent(db: Database) -> None:
    migrate.upgrade(db.settings)
    migrate.upgrade(db.settings)

"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when
HOTLINE_TEST_DATABASE_URL names one (`make test` does both runs)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from agent_desktop import schema
from crm_core import migrate
from crm_core.db import Database
from crm_core.models import Base
from crm_core.settings import Settings

TEST_DATABASE_URL = os.environ.get("HOTLINE_TEST_DATABASE_URL", "sqlite")
schema.prepare()


def pytest_report_header() -> str:
    return f"hotline test database: {TEST_DATABASE_URL}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Migrate once per session: a template SQLite file, or the PostgreSQL test database."""
    if TEST_DATABASE_URL == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    else:
        settings = Settings(database_url=TEST_DATABASE_URL)
        _reset_postgres(settings)
    migrate.upgrade(settings)
    yield settings


def _reset_postgres(settings: Settings) -> None:
    import asyncio

    async def drop() -> None:
        db = Database.open(settings)
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await db.close()

    asyncio.run(drop())


@pytest.fixture
def settings(migrated_template: Settings, tmp_path: Path) -> Settings:
    """Settings for one test, pointing at a fresh, migrated, empty database."""
    if migrated_template.is_sqlite:
        source = Path(migrated_template.database_url.split("///", 1)[1])
        target = tmp_path / "hotline.db"
        shutil.copyfile(source, target)
        url = f"sqlite+aiosqlite:///{target}"
    else:
        url = migrated_template.database_url
    return Settings(
        database_url=url,
        var_dir=str(tmp_path / "var"),
        recordings_dir=str(tmp_path / "var" / "recordings"),
        # An admin change reloads the PBX of this instance: never a developer's running one.
        pbx_instance="pytest-nopbx",
    )


# crm_core migrations 0003 and 0004: the two queues the dialplan routes to, the disposition codes.
MIGRATION_SEED = (
    "INSERT INTO call_queues (id, name, display_name, strategy, weight, announce_position,"
    " announce_frequency, active) VALUES (1, 'hotline', '400热线', 'ringall', 0, false, 0, true),"
    " (2, 'vip', 'VIP/专属客户', 'linear', 10, false, 0, true)",
    "SELECT setval('call_queues_id_seq', 2)",
    # crm_core migration 0004: the disposition codes the desktop offers.
    "INSERT INTO disposition_codes (code, label, sort, active) VALUES"
    " ('consultation', '咨询', 10, true), ('service_request', '报修', 20, true),"
    " ('complaint', '投诉', 30, true), ('callback', '回访', 40, true),"
    " ('resolved', '已解决', 50, true), ('wrong_number', '打错电话', 60, true),"
    " ('other', '其他', 70, true)",
)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.open(settings)
    if not settings.is_sqlite:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with database.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            # Put back the rows the migrations seed (SQLite tests get them with the copy).
            for statement in MIGRATION_SEED:
                await conn.execute(text(statement))
    yield database
    await database.close()

"""Alembic migrations, applied in code so `hotline db upgrade` needs no alembic.ini."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from crm_core.db import create_engine
from crm_core.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")


# Each package keeps its own migrations (a branch off crm_core's first revision), so
# crm_core never has to know the others; the composition root passes their folders in.
_extra_locations: list[Path] = []


def register_locations(*folders: Path) -> None:
    for folder in folders:
        if folder not in _extra_locations:
            _extra_locations.append(folder)


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    locations = [MIGRATIONS / "versions", *_extra_locations]
    config.set_main_option("version_locations", " ".join(str(p) for p in locations))
    config.set_main_option("path_separator", "space")
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "heads") -> None:
    """Apply migrations up to `revision`; safe to call on an up-to-date database."""
    command.upgrade(alembic_config(settings), revision)


def head_revisions(settings: Settings) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(settings)).get_heads())


async def current_revisions(settings: Settings) -> set[str]:
    def read(conn: Connection) -> set[str]:
        return set(MigrationContext.configure(conn).get_current_heads())

    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()


def is_up_to_date(settings: Settings) -> bool:
    return asyncio.run(current_revisions(settings)) == head_revisions(settings)

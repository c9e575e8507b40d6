from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crm_core import backup
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.errors import ValidationError
from crm_core.search import count_customers
from crm_core.seed import seed_customers


async def test_backup_while_writing_then_restore(db: Database, tmp_path: Path) -> None:
    await seed_customers(db, 200, seed=5)
    target = tmp_path / "hotline.backup"
    pages: list[tuple[int, int]] = []

    async def keep_writing() -> None:
        for i in range(20):
            await CustomerService(db).create({"name": f"并发写入客户{i}号"}, allow_duplicate=True)

    await asyncio.gather(
        backup.backup(db.settings, target, lambda d, t: pages.append((d, t))), keep_writing()
    )
    assert target.stat().st_size > 0
    assert not (tmp_path / "hotline.backup.partial").exists()
    if db.settings.is_sqlite:
        assert pages and pages[-1][0] == pages[-1][1]
    in_backup_at_least = 200
    await seed_customers(db, 100, seed=6)
    assert await count_customers(db) == 320

    await db.engine.dispose()  # as a real restore would: the server drops its pooled links
    await backup.restore(db.settings, target)
    restored = await count_customers(db)
    assert in_backup_at_least <= restored <= 220


async def test_restore_refuses_a_file_that_is_not_a_backup(db: Database, tmp_path: Path) -> None:
    await seed_customers(db, 10, seed=1)
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(Exception) as caught:
        await backup.restore(db.settings, junk)
    assert "junk.backup" in str(caught.value) or "pg_restore" in str(caught.value)
    assert await count_customers(db) == 10
    with pytest.raises(ValidationError, match="does not exist"):
        await backup.restore(db.settings, tmp_path / "missing.backup")
    with pytest.raises(ValidationError, match="directory"):
        await backup.backup(db.settings, tmp_path)

"""Admin records are named by id or by their unique name (`hotline users show zhangsan`)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.errors import NotFound

Row = TypeVar("Row")


async def find_by_ref(
    session: AsyncSession, model: type[Row], name_column: Any, ref: int | str, label: str
) -> Row:
    """The row with this id (all digits) or this name; NotFound names what was asked for."""
    if isinstance(ref, int) or ref.isdigit():
        row = await session.get(model, int(ref))
    else:
        row = (await session.scalars(select(model).where(name_column == ref))).first()
    if row is None:
        raise NotFound(f"no {label} {ref}")
    return row

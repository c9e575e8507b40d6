"""Disposition codes (处理结果) from the disposition_codes table: what an agent may pick now
(the active ones, in their order) and how every code ever used is shown."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import ValidationError
from crm_core.models import DispositionCode


@dataclass(frozen=True)
class Disposition:
    code: str
    label: str
    sort: int
    active: bool


async def all_codes(db: Database) -> list[Disposition]:
    """Every code, the deactivated ones too: old calls keep showing theirs."""
    query = select(DispositionCode).order_by(DispositionCode.sort, DispositionCode.code)
    async with db.transaction() as session:
        rows = (await session.scalars(query)).all()
    return [Disposition(r.code, r.label, r.sort, r.active) for r in rows]


async def active_codes(db: Database) -> list[Disposition]:
    return [d for d in await all_codes(db) if d.active]


async def labels(db: Database) -> dict[str, str]:
    return {d.code: d.label for d in await all_codes(db)}


async def check_active(db: Database, code: str) -> str:
    """The code if an agent may pick it now; a clear refusal naming the choices otherwise."""
    choices = [d.code for d in await active_codes(db)]
    if code not in choices:
        raise ValidationError(
            f"disposition must be one of {', '.join(choices)}", field="disposition"
        )
    return code

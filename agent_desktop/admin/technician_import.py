"""The `technicians` import kind: a company's field staff list (服务工程师) from CSV/XLSX.

One technician a row: user name, name, mobile, office, optional region and skills. A new user
name creates a technician with no password (nobody can log in as them until an admin resets
it; work orders reach them by SMS); a known technician is updated; a user name that belongs to
someone who is not a technician, a mobile that belongs to someone else, or an office that does
not exist is reported, not guessed. Registered at import time of this module (the admin
feature and `hotline import` both import it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agent_desktop.admin.validation import USERNAME
from crm_core.importing.kinds import (
    ImportContext,
    ImportKind,
    RowInvalid,
    RowResult,
    RowValues,
    register_kind,
)
from crm_core.importing.report import Outcome, Problem
from crm_core.models import ChangeRecord, Office, Role, User
from crm_core.phones import normalize
from ticketing.models import StaffMobile

USERS: Table = User.__table__  # type: ignore[assignment]
MOBILES: Table = StaffMobile.__table__  # type: ignore[assignment]
HISTORY: Table = ChangeRecord.__table__  # type: ignore[assignment]
FIELDS = ("display_name", "office", "region", "skills")

ALIASES = {
    "username": ("用户名", "账号", "登录名", "username", "login"),
    "display_name": ("姓名", "服务工程师", "技术员", "name", "display_name"),
    "mobile": ("手机", "手机号", "手机号码", "联系电话", "mobile"),
    "office": ("服务站", "网点", "所属服务站", "office"),
    "region": ("地区", "区域", "大区", "region"),
    "skills": ("技能", "车型", "擅长车型", "skills"),
}


@dataclass(frozen=True)
class TechnicianRow:
    line: int
    username: str
    mobile: str
    values: dict[str, str | None]
    headers: dict[str, str]


def validate(row: RowValues, ctx: ImportContext) -> TechnicianRow:
    problems: list[Problem] = []

    def bad(field: str, reason: str) -> None:
        problems.append(Problem(row.line, row.header(field), row.get(field), reason))

    username = row.get("username").strip().lower()
    if not USERNAME.match(username):
        bad("username", "a user name is 2-64 lower-case letters, digits, '.', '_' or '-'")
    if not row.get("display_name").strip():
        bad("display_name", "the name (姓名) is empty")
    if not row.get("office").strip():
        bad("office", "the office (服务站) is empty")
    phone = normalize(row.get("mobile"), home_area_code=ctx.home_area_code)
    if phone is None or phone.kind != "mobile":
        bad("mobile", "not a mobile number (work orders are sent by SMS)")
    for field in FIELDS:
        if len(row.get(field)) > 300:
            bad(field, "longer than 300 characters")
    if problems:
        raise RowInvalid(problems)
    assert phone is not None
    values = {f: (row.get(f).strip() or None) for f in FIELDS}
    headers = {f: row.header(f) for f in ("username", "mobile", "office")}
    return TechnicianRow(row.line, username, phone.e164, values, headers)


def _refused(row: TechnicianRow, field: str, outcome: Outcome, reason: str) -> RowResult:
    value = {"username": row.username, "mobile": row.mobile}.get(field, row.values.get(field))
    return outcome, Problem(row.line, row.headers[field], value or "", reason, outcome)


async def write_batch(
    conn: AsyncConnection, rows: Sequence[TechnicianRow], ctx: ImportContext
) -> list[RowResult]:
    offices = set((await conn.scalars(select(Office.name).where(Office.active.is_(True)))).all())
    names = [r.username for r in rows]
    users = {
        u.username: u
        for u in (await conn.execute(select(USERS).where(USERS.c.username.in_(names)))).all()
    }
    holders = {
        e164: username
        for e164, username in await conn.execute(
            select(MOBILES.c.e164, USERS.c.username)
            .join(USERS, USERS.c.id == MOBILES.c.user_id)
            .where(MOBILES.c.e164.in_([r.mobile for r in rows]))
        )
    }
    results: list[RowResult] = []
    for row in rows:
        results.append(await _write_one(conn, row, ctx, offices, users, holders))
    return results


async def _write_one(
    conn: AsyncConnection,
    row: TechnicianRow,
    ctx: ImportContext,
    offices: set[str],
    users: dict[str, Any],
    holders: dict[str, str],
) -> RowResult:
    if row.values["office"] not in offices:
        reason = f"no office {row.values['office']!r}; create it first (hotline offices add)"
        return _refused(row, "office", Outcome.INVALID, reason)
    earlier = ctx.earlier_row("technicians.username", row.username)
    if earlier is None:
        earlier = ctx.earlier_row("technicians.mobile", row.mobile)
    if earlier is not None:
        return _refused(row, "username", Outcome.DUPLICATE, f"the same person as row {earlier}")
    ctx.remember("technicians.username", row.username, row.line)
    ctx.remember("technicians.mobile", row.mobile, row.line)
    holder = holders.get(row.mobile)
    if holder is not None and holder != row.username:
        return _refused(row, "mobile", Outcome.DUPLICATE, f"mobile belongs to {holder}")
    stored = users.get(row.username)
    if stored is None:
        return await _create(conn, row, ctx)
    if stored.role != Role.TECHNICIAN.value:
        reason = f"{row.username} is a {stored.role}, not a technician"
        return _refused(row, "username", Outcome.DUPLICATE, reason)
    return await _update(conn, row, ctx, stored, holder is not None)


async def _create(conn: AsyncConnection, row: TechnicianRow, ctx: ImportContext) -> RowResult:
    values = {
        "username": row.username,
        "role": Role.TECHNICIAN.value,
        "password_hash": None,
        "must_change_password": True,
        "active": True,
        "sticky_owner": False,
        "created_at": ctx.now,
        **{k: v for k, v in row.values.items()},
    }
    values["display_name"] = values["display_name"] or row.username
    user_id = (await conn.execute(insert(USERS).values(values).returning(USERS.c.id))).scalar_one()
    await conn.execute(insert(MOBILES).values(user_id=user_id, e164=row.mobile))
    after = {**row.values, "username": row.username, "mobile": row.mobile, "role": "technician"}
    await _history(conn, ctx, user_id, None, after)
    return Outcome.NEW, None


async def _update(
    conn: AsyncConnection, row: TechnicianRow, ctx: ImportContext, stored: Any, has_mobile: bool
) -> RowResult:
    # An empty cell never clears a stored value (the other kinds' rule too).
    wanted = {k: v for k, v in row.values.items() if v is not None and getattr(stored, k) != v}
    mobile_row = (
        await conn.execute(select(MOBILES.c.e164).where(MOBILES.c.user_id == stored.id))
    ).scalar_one_or_none()
    if not wanted and mobile_row == row.mobile:
        return Outcome.UNCHANGED, None
    before = {k: getattr(stored, k) for k in wanted} | {"mobile": mobile_row}
    if wanted:
        await conn.execute(update(USERS).where(USERS.c.id == stored.id).values(wanted))
    if mobile_row is None:
        await conn.execute(insert(MOBILES).values(user_id=stored.id, e164=row.mobile))
    elif mobile_row != row.mobile:
        await conn.execute(
            update(MOBILES).where(MOBILES.c.user_id == stored.id).values(e164=row.mobile)
        )
    await _history(conn, ctx, stored.id, before, {**wanted, "mobile": row.mobile})
    return Outcome.UPDATED, None


async def _history(
    conn: AsyncConnection,
    ctx: ImportContext,
    user_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> None:
    await conn.execute(
        insert(HISTORY).values(
            entity="user",
            entity_id=user_id,
            action="import",
            before=before,
            after=after,
            user_id=ctx.user_id,
            at=ctx.now,
            note=ctx.note,
        )
    )


TECHNICIANS = ImportKind(
    name="technicians",
    label="服务工程师",
    aliases=ALIASES,
    required=(("username",), ("display_name",), ("mobile",), ("office",)),
    validate=validate,
    write_batch=write_batch,
)
register_kind(TECHNICIANS, replace=True)

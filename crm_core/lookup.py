"""Who is calling? Ranked candidates for a caller number across customer and contact phones.

This sits on the hot path of every incoming call, so it is one indexed Core query with no
ORM object loading. An exact canonical match always outranks a suffix match, and several
matches come back as several candidates: the agent chooses, we never guess "the first".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import Select, and_, false, or_, select

from crm_core.db import Database
from crm_core.models import Contact, Customer, PhoneNumber
from crm_core.phones import normalize, suffix_key

# Long enough that a different number is unlikely to share it, short enough to catch a
# landline stored under another area code or a number keyed in without its prefix.
SUFFIX_DIGITS = 8
MAX_CANDIDATES = 20


@dataclass(frozen=True)
class Candidate:
    customer_id: int
    customer_code: str
    customer_name: str
    contact_id: int | None
    contact_name: str | None
    number: str
    match: Literal["exact", "suffix"]
    score: float
    vip_level: int
    blocked: bool
    owner_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """[low, high) bounds so `col >= low AND col < high` is a prefix match using a b-tree."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _lookup_query(e164: str, rev_prefix: str | None) -> Select[Any]:
    p, c, ct = PhoneNumber.__table__, Customer.__table__, Contact.__table__
    matches = [p.c.e164 == e164]
    if rev_prefix is not None:
        low, high = prefix_bounds(rev_prefix)
        matches.append(and_(p.c.digits_rev >= low, p.c.digits_rev < high))
    return (
        select(
            p.c.e164,
            p.c.contact_id,
            c.c.id,
            c.c.code,
            c.c.name,
            c.c.vip_level,
            c.c.blocked,
            c.c.owner_id,
            ct.c.name.label("contact_name"),
        )
        .select_from(p.join(c, c.c.id == p.c.customer_id).outerjoin(ct, ct.c.id == p.c.contact_id))
        .where(or_(*matches))
        .where(c.c.deleted == false(), c.c.merged_into_id.is_(None))
        .where(or_(p.c.contact_id.is_(None), ct.c.deleted == false()))
        .limit(MAX_CANDIDATES * 3)
    )


def _rank(rows: list[Any], e164: str) -> list[Candidate]:
    best: dict[tuple[int, int | None], Candidate] = {}
    for row in rows:
        exact = row.e164 == e164
        # Exact beats suffix; the customer's own number beats a contact's; VIP breaks ties.
        score = (1.0 if exact else 0.5) - (0.05 if row.contact_id else 0.0) + row.vip_level * 0.001
        candidate = Candidate(
            customer_id=row.id,
            customer_code=row.code,
            customer_name=row.name,
            contact_id=row.contact_id,
            contact_name=row.contact_name,
            number=row.e164,
            match="exact" if exact else "suffix",
            score=round(score, 4),
            vip_level=row.vip_level,
            blocked=row.blocked,
            owner_id=row.owner_id,
        )
        key = (row.id, row.contact_id)
        if key not in best or best[key].score < candidate.score:
            best[key] = candidate
    ranked = sorted(best.values(), key=lambda c: (-c.score, c.customer_id, c.contact_id or 0))
    return ranked[:MAX_CANDIDATES]


async def lookup_by_number(db: Database, raw_number: str | None) -> list[Candidate]:
    """Candidates for a caller ID; anonymous or garbage numbers simply find nobody."""
    phone = normalize(raw_number, home_area_code=db.settings.home_area_code)
    if phone is None:
        return []
    rev = suffix_key(phone.digits)
    rev_prefix = rev[:SUFFIX_DIGITS] if len(rev) >= SUFFIX_DIGITS else None
    async with db.connect() as conn:
        rows = (await conn.execute(_lookup_query(phone.e164, rev_prefix))).all()
    return _rank(list(rows), phone.e164)

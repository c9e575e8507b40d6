"""What the IVR needs to know about a caller, from the CRM: no sockets, no AGI here.

Each query is one indexed read; the handlers put a hard time budget around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Select, false, select, true

from crm_core.db import Database
from crm_core.lookup import Candidate
from crm_core.models import Customer, User, Vehicle

CUSTOMERS = Customer.__table__
USERS = User.__table__
VEHICLES = Vehicle.__table__
MAX_MERGE_HOPS = 3


class NumberFinder(Protocol):
    async def find(self, raw_number: str | None) -> list[Candidate]: ...


@dataclass(frozen=True)
class CallerProfile:
    """The one customer a call belongs to, as routing sees it."""

    customer_id: int
    name: str
    vip_level: int
    blocked: bool
    owner_interface: str | None

    @property
    def vip(self) -> bool:
        return self.vip_level > 0 and not self.blocked


@dataclass(frozen=True)
class NumberMatch:
    candidates: int  # distinct customers the number belongs to
    profile: CallerProfile | None  # set only when exactly one customer matched


def _profile_query() -> Select[Any]:
    return select(
        CUSTOMERS.c.id,
        CUSTOMERS.c.name,
        CUSTOMERS.c.vip_level,
        CUSTOMERS.c.blocked,
        USERS.c.phone_interface,
    ).select_from(
        CUSTOMERS.outerjoin(
            USERS,
            (USERS.c.id == CUSTOMERS.c.owner_id)
            & (USERS.c.active == true())
            & (USERS.c.sticky_owner == true()),
        )
    )


def _live() -> Any:
    return (CUSTOMERS.c.deleted == false()) & CUSTOMERS.c.merged_into_id.is_(None)


def _profile(row: Any) -> CallerProfile:
    return CallerProfile(
        customer_id=int(row.id),
        name=str(row.name),
        vip_level=int(row.vip_level or 0),
        blocked=bool(row.blocked),
        owner_interface=row.phone_interface or None,
    )


class CustomerDirectory:
    def __init__(self, db: Database, finder: NumberFinder) -> None:
        self.db = db
        self.finder = finder

    async def by_number(self, raw_number: str | None) -> NumberMatch:
        candidates = await self.finder.find(raw_number)
        customers = {c.customer_id for c in candidates}
        if len(customers) != 1:
            return NumberMatch(len(customers), None)
        best = candidates[0]
        return NumberMatch(1, await self._with_owner(best))

    async def _with_owner(self, best: Candidate) -> CallerProfile:
        interface = None
        if best.owner_id is not None:
            async with self.db.connect() as conn:
                interface = (
                    await conn.execute(
                        select(USERS.c.phone_interface).where(
                            USERS.c.id == best.owner_id,
                            USERS.c.active == true(),
                            # An admin can turn off "own customers ring me first" per agent.
                            USERS.c.sticky_owner == true(),
                        )
                    )
                ).scalar_one_or_none()
        return CallerProfile(
            best.customer_id, best.customer_name, best.vip_level, best.blocked, interface
        )

    async def by_vin_tail(self, tail: str, limit: int = 5) -> list[CallerProfile]:
        """Distinct live customers owning a live vehicle whose VIN ends in `tail`."""
        query = (
            _profile_query()
            .join(VEHICLES, VEHICLES.c.customer_id == CUSTOMERS.c.id)
            .where(VEHICLES.c.vin_tail == tail.upper(), VEHICLES.c.deleted == false(), _live())
            .distinct()
            .limit(limit)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_profile(row) for row in rows]

    async def by_id(self, customer_id: int) -> CallerProfile | None:
        """A customer by id, following a merge to the surviving record."""
        async with self.db.connect() as conn:
            for _ in range(MAX_MERGE_HOPS + 1):
                row = (
                    await conn.execute(
                        select(CUSTOMERS.c.deleted, CUSTOMERS.c.merged_into_id).where(
                            CUSTOMERS.c.id == customer_id
                        )
                    )
                ).first()
                if row is None or row.deleted:
                    return None
                if row.merged_into_id is None:
                    found = (
                        await conn.execute(_profile_query().where(CUSTOMERS.c.id == customer_id))
                    ).first()
                    return None if found is None else _profile(found)
                customer_id = int(row.merged_into_id)
        return None

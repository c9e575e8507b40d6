"""Who is behind a phone: queue member names and interfaces resolved to CRM users.

Kept in memory and reloaded when an unknown interface shows up (a user added since), so a
ring never waits on more than one small query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select, true

from crm_core.db import Database
from crm_core.models import User

RELOAD_AT_MOST_EVERY = 5.0  # seconds; an unknown phone must not turn into a query storm


@dataclass(frozen=True)
class Agent:
    user_id: int
    username: str
    display_name: str
    interface: str | None


class AgentDirectory:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._by_interface: dict[str, Agent] = {}
        self._by_username: dict[str, Agent] = {}
        self._by_id: dict[int, Agent] = {}
        self._loaded_at = 0.0

    async def reload(self) -> None:
        users = User.__table__
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        users.c.id, users.c.username, users.c.display_name, users.c.phone_interface
                    ).where(users.c.active == true())
                )
            ).all()
        agents = [Agent(r.id, r.username, r.display_name, r.phone_interface) for r in rows]
        self._by_interface = {a.interface: a for a in agents if a.interface}
        self._by_username = {a.username: a for a in agents}
        self._by_id = {a.user_id: a for a in agents}
        self._loaded_at = time.monotonic()

    def _find(self, interface: str | None, member_name: str | None) -> Agent | None:
        if interface and interface in self._by_interface:
            return self._by_interface[interface]
        if member_name and member_name in self._by_username:
            return self._by_username[member_name]
        return None

    async def resolve(self, interface: str | None, member_name: str | None = None) -> Agent | None:
        found = self._find(interface, member_name)
        if found is None and time.monotonic() - self._loaded_at > RELOAD_AT_MOST_EVERY:
            await self.reload()
            found = self._find(interface, member_name)
        return found

    def by_id(self, user_id: int) -> Agent | None:
        return self._by_id.get(user_id)

"""Agent phones as the PBX sees them, read from the CRM users table.

A user is an agent endpoint when active and their ``phone_interface`` is ``PJSIP/<endpoint>``.
The endpoint name becomes the PJSIP section name and the queue member interface, so the
``Interface`` header of AMI queue events is exactly the user's ``phone_interface``.
Rendering takes a plain list of AgentEndpoint, so it is testable without a database.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from asterisk_conf.errors import PbxConfigInvalid
from crm_core.settings import Settings

log = logging.getLogger(__name__)

_ENDPOINT = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_TRAILING_DIGITS = re.compile(r"(\d{2,8})$")
# Characters that could end a value, open a section or start a comment in an Asterisk config.
_DIGEST = re.compile(r"^[0-9a-f]{32}$")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\;\[\]<>]')


@dataclass(frozen=True, order=True)
class AgentEndpoint:
    username: str
    display_name: str
    endpoint: str
    extension: str
    # (queue name, penalty) pairs; None: a member of every queue (agents files, first boot).
    queues: tuple[tuple[str, int], ...] | None = None
    # A registering phone's "md5:<HA1>"-able digest; None: a fixed test-mode phone, no auth.
    sip_digest: str | None = None

    def penalty_in(self, queue: str, index: int, tiered: bool) -> int | None:
        """This agent's penalty in `queue`, or None when not a member."""
        if self.queues is None:
            return index if tiered else 0
        return dict(self.queues).get(queue)

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.endpoint}"


def safe_text(value: str) -> str:
    """A display name or member name that cannot break out of its config line."""
    return _UNSAFE.sub("", value).strip()


def endpoint_from_interface(
    username: str,
    display_name: str,
    phone_interface: str,
    queues: tuple[tuple[str, int], ...] | None = None,
    sip_digest: str | None = None,
) -> AgentEndpoint | None:
    """Build the endpoint for one user, or None (with a logged reason) when unusable."""
    technology, _, name = phone_interface.strip().partition("/")
    if technology.upper() != "PJSIP" or not _ENDPOINT.match(name):
        log.warning("user %s: phone_interface %r is not PJSIP/<name>", username, phone_interface)
        return None
    digits = _TRAILING_DIGITS.search(name)
    if digits is None:
        log.warning("user %s: endpoint %r has no extension digits", username, name)
        return None
    display = safe_text(display_name) or username
    digest = sip_digest if sip_digest and _DIGEST.match(sip_digest) else None
    return AgentEndpoint(safe_text(username), display, name, digits.group(1), queues, digest)


def unique_agents(agents: Iterable[AgentEndpoint]) -> list[AgentEndpoint]:
    """Sorted by extension; a second user on the same endpoint or extension is refused."""
    chosen: dict[str, AgentEndpoint] = {}
    extensions: set[str] = set()
    for agent in sorted(agents, key=lambda a: (a.extension, a.username)):
        if agent.endpoint in chosen or agent.extension in extensions:
            raise PbxConfigInvalid(
                f"users {agent.username} and another user share the phone "
                f"{agent.interface} (extension {agent.extension}); give each user their own"
            )
        chosen[agent.endpoint] = agent
        extensions.add(agent.extension)
    return list(chosen.values())


async def load_agent_endpoints(settings: Settings) -> list[AgentEndpoint]:
    """Active users with a phone_interface, with their queue memberships, from the CRM."""
    from sqlalchemy import select

    from crm_core.db import create_engine, session_factory
    from crm_core.models import CallQueue, QueueMember, User

    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            query = select(
                User.id, User.username, User.display_name, User.phone_interface, User.sip_digest
            ).where(User.active.is_(True), User.phone_interface.is_not(None))
            rows = (await session.execute(query)).all()
            members = (
                await session.execute(
                    select(QueueMember.user_id, CallQueue.name, QueueMember.penalty)
                    .join(CallQueue, CallQueue.id == QueueMember.queue_id)
                    .where(CallQueue.active.is_(True))
                    .order_by(CallQueue.name)
                )
            ).all()
    finally:
        await engine.dispose()
    memberships: dict[int, list[tuple[str, int]]] = {}
    for user_id, queue, penalty in members:
        memberships.setdefault(user_id, []).append((queue, penalty))
    found = (
        endpoint_from_interface(
            r.username,
            r.display_name,
            r.phone_interface,
            tuple(memberships.get(r.id, ())),
            r.sip_digest,
        )
        for r in rows
        if r.phone_interface and r.phone_interface.strip()
    )
    return unique_agents(a for a in found if a is not None)


def read_agents_file(path: Path) -> list[AgentEndpoint]:
    """Agents from a JSON list of {username, display_name, phone_interface} objects.

    For a PBX without a CRM database yet (tests, first boot); the database is the usual source.
    """
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
        found = [
            endpoint_from_interface(
                i["username"],
                i.get("display_name", ""),
                i["phone_interface"],
                _file_queues(i.get("queues")),
                i.get("sip_digest"),
            )
            for i in items
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PbxConfigInvalid(
            f"agents file {path}: {exc}; expected a JSON list of objects with "
            "username, display_name and phone_interface"
        ) from None
    return unique_agents(a for a in found if a is not None)


def _file_queues(items: object) -> tuple[tuple[str, int], ...] | None:
    """An agents file's optional "queues": [{"queue": "hotline", "penalty": 0}, ...]."""
    if items is None:
        return None
    if not isinstance(items, list):
        raise TypeError("queues must be a list of {queue, penalty} objects")
    return tuple((str(i["queue"]), int(i.get("penalty", 0))) for i in items)


def write_agents_file(path: Path, agents: Iterable[AgentEndpoint]) -> None:
    rows: list[dict[str, object]] = []
    for a in agents:
        row: dict[str, object] = {
            "username": a.username,
            "display_name": a.display_name,
            "phone_interface": a.interface,
        }
        if a.queues is not None:
            row["queues"] = [{"queue": q, "penalty": p} for q, p in a.queues]
        if a.sip_digest:
            row["sip_digest"] = a.sip_digest
        rows.append(row)
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")


def as_dicts(agents: Iterable[AgentEndpoint]) -> list[dict[str, object]]:
    return [asdict(a) for a in agents]

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
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\;\[\]<>]')


@dataclass(frozen=True, order=True)
class AgentEndpoint:
    username: str
    display_name: str
    endpoint: str
    extension: str

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.endpoint}"


def safe_text(value: str) -> str:
    """A display name or member name that cannot break out of its config line."""
    return _UNSAFE.sub("", value).strip()


def endpoint_from_interface(
    username: str, display_name: str, phone_interface: str
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
    return AgentEndpoint(safe_text(username), display, name, digits.group(1))


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
    """Active users with a phone_interface, from the CRM database."""
    from sqlalchemy import select

    from crm_core.db import create_engine, session_factory
    from crm_core.models import User

    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            query = select(User.username, User.display_name, User.phone_interface).where(
                User.active.is_(True), User.phone_interface.is_not(None)
            )
            rows = (await session.execute(query)).all()
    finally:
        await engine.dispose()
    found = (
        endpoint_from_interface(username, display, interface)
        for username, display, interface in rows
        if interface and interface.strip()
    )
    return unique_agents(a for a in found if a is not None)


def read_agents_file(path: Path) -> list[AgentEndpoint]:
    """Agents from a JSON list of {username, display_name, phone_interface} objects.

    For a PBX without a CRM database yet (tests, first boot); the database is the usual source.
    """
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
        found = [
            endpoint_from_interface(i["username"], i.get("display_name", ""), i["phone_interface"])
            for i in items
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PbxConfigInvalid(
            f"agents file {path}: {exc}; expected a JSON list of objects with "
            "username, display_name and phone_interface"
        ) from None
    return unique_agents(a for a in found if a is not None)


def write_agents_file(path: Path, agents: Iterable[AgentEndpoint]) -> None:
    rows = [
        {"username": a.username, "display_name": a.display_name, "phone_interface": a.interface}
        for a in agents
    ]
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")


def as_dicts(agents: Iterable[AgentEndpoint]) -> list[dict[str, str]]:
    return [asdict(a) for a in agents]

"""Render the Asterisk configuration from Settings and the agent list, then swap it in.

Files are rendered in memory, written to a fresh directory beside the live one, and made live
by atomically replacing the ``etc`` symlink. A bad setting or a template error therefore never
leaves a half-written configuration: the previous one stays in place untouched.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from asterisk_conf.agents import AgentEndpoint, safe_text
from asterisk_conf.modules_list import MODULES
from asterisk_conf.paths import DATA_DIR, MODULES_DIR, PROMPT_LANGUAGE, PbxPaths
from asterisk_conf.validate import check_settings, phone_ports
from crm_core.settings import Settings

TEMPLATES = (
    "asterisk.conf",
    "modules.conf",
    "logger.conf",
    "manager.conf",
    "pjsip.conf",
    "rtp.conf",
    "queues.conf",
    "extensions.conf",
    "indications.conf",
    "features.conf",
    "cdr.conf",
    "cdr_custom.conf",
)

# Files Asterisk reads at boot and complains about when absent; their defaults suit us.
STUB_FILES = {
    "acl.conf": "",
    "ccss.conf": "[general]\n",
    "cel.conf": "[general]\nenable = no\n",
    "udptl.conf": "[general]\n",
    "pjproject.conf": "",
}


@dataclass(frozen=True)
class QueueSpec:
    name: str
    purpose: str
    strategy: str
    wrapup_seconds: int
    weight: int
    tiered: bool
    ring_seconds: int = 15
    max_wait_seconds: int = 900
    announce_position: bool = False
    announce_frequency: int = 0
    announce_holdtime: bool = False
    # Overflow (#18): Queue() gives up after wait_seconds (the overflow time, else the
    # longest wait) or refuses to join past maxlen (0: no limit), and the caller goes to
    # overflow_exten in hotline-overflow: "voicemail", "callback" or "q-<queue>".
    wait_seconds: int = 900
    maxlen: int = 0
    overflow_exten: str = "voicemail"
    callback_offer: bool = False
    hours: str | None = None

    def penalty(self, index: int) -> int:
        """Tiered queues ring the first agents first and reach later ones after a delay."""
        return index if self.tiered else 0

    def members(self, agents: list[AgentEndpoint]) -> list[tuple[AgentEndpoint, int]]:
        """(agent, penalty) of every member, in extension order."""
        chosen = []
        for index, agent in enumerate(sorted(agents, key=lambda a: a.extension)):
            penalty = agent.penalty_in(self.name, index, self.tiered)
            if penalty is not None:
                chosen.append((agent, penalty))
        return chosen


@dataclass(frozen=True)
class QueueRow:
    """A queue as the CRM stores it; empty timings take the PBX mode's defaults."""

    name: str
    display_name: str
    strategy: str
    ring_seconds: int | None = None
    wrapup_seconds: int | None = None
    max_wait_seconds: int | None = None
    weight: int = 0
    announce_position: bool = False
    announce_frequency: int = 0
    hours: str | None = None
    overflow_seconds: int | None = None
    overflow_max_waiting: int | None = None
    overflow_target: str | None = None
    callback_enabled: bool = False
    announce_holdtime: bool = False


BUILT_IN_QUEUES = (
    QueueRow("hotline", "everyone's calls; all free agents ring", "ringall"),
    QueueRow("vip", "VIP and owned customers; agents in turn", "linear", weight=10),
)
# The dialplan routes to these by name (hotline-queue); they can be edited, never removed.
ROUTED_QUEUES = frozenset(q.name for q in BUILT_IN_QUEUES)


def queue_specs(settings: Settings, rows: list[QueueRow] | None = None) -> list[QueueSpec]:
    test_mode = settings.pbx_mode == "test"
    wrapup, ring, max_wait = (2, 8, 300) if test_mode else (10, 15, 900)
    chosen = list(BUILT_IN_QUEUES) if rows is None else rows
    return [
        QueueSpec(
            name=row.name,
            purpose=safe_text(row.display_name),
            strategy=row.strategy,
            wrapup_seconds=wrapup if row.wrapup_seconds is None else row.wrapup_seconds,
            weight=row.weight,
            tiered=False,
            ring_seconds=ring if row.ring_seconds is None else row.ring_seconds,
            max_wait_seconds=max_wait if row.max_wait_seconds is None else row.max_wait_seconds,
            announce_position=row.announce_position,
            announce_frequency=row.announce_frequency,
            announce_holdtime=row.announce_holdtime,
            wait_seconds=_wait_seconds(row, max_wait),
            maxlen=row.overflow_max_waiting or 0,
            overflow_exten=overflow_exten(row.overflow_target),
            callback_offer=row.callback_enabled,
            hours=row.hours,
        )
        for row in sorted(chosen, key=lambda r: r.name)
    ]


def _wait_seconds(row: QueueRow, default_max_wait: int) -> int:
    longest = default_max_wait if row.max_wait_seconds is None else row.max_wait_seconds
    if row.overflow_seconds:
        return min(row.overflow_seconds, longest)
    return longest


def overflow_exten(target: str | None) -> str:
    """The hotline-overflow extension for a queue's overflow target (validated on save)."""
    if target and target.startswith("queue:"):
        return "q-" + target.removeprefix("queue:")
    return target if target in ("voicemail", "callback") else "voicemail"


async def load_queue_rows(settings: Settings) -> list[QueueRow]:
    """Active queues from the CRM database."""
    from sqlalchemy import select

    from crm_core.db import create_engine, session_factory
    from crm_core.models import CallQueue

    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            rows = (
                await session.scalars(select(CallQueue).where(CallQueue.active.is_(True)))
            ).all()
            return [
                QueueRow(
                    r.name,
                    r.display_name,
                    r.strategy,
                    r.ring_seconds,
                    r.wrapup_seconds,
                    r.max_wait_seconds,
                    r.weight,
                    r.announce_position,
                    r.announce_frequency,
                    r.hours,
                    r.overflow_seconds,
                    r.overflow_max_waiting,
                    r.overflow_target,
                    r.callback_enabled,
                    r.announce_holdtime,
                )
                for r in rows
            ]
    finally:
        await engine.dispose()


def agent_password(settings: Settings, endpoint: str) -> str:
    """Per-phone SIP password derived from sip_secret, so no password list is stored."""
    digest = hmac.new(settings.sip_secret.encode(), endpoint.encode(), hashlib.sha256)
    return digest.hexdigest()[:24]


def _environment() -> jinja2.Environment:
    # Config files, not HTML: escaping would corrupt them. User text is cleaned by
    # agents.safe_text and settings are validated before rendering.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("asterisk_conf", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )


def build_context(
    settings: Settings,
    paths: PbxPaths,
    agents: list[AgentEndpoint],
    queues: list[QueueRow] | None = None,
) -> dict[str, Any]:
    test_mode = settings.pbx_mode == "test"
    ports = phone_ports(settings, agents)
    carrier = settings.carrier_host
    return {
        "settings": settings,
        "instance": paths.instance,
        "inner_base": paths.inner_base,
        "modules_dir": MODULES_DIR,
        "data_dir": DATA_DIR,
        "language": PROMPT_LANGUAGE,
        "test_mode": test_mode,
        "modules": MODULES,
        "agents": sorted(agents, key=lambda a: a.extension),
        "agent_ports": ports,
        "technician_port": ports["technician"],
        "passwords": {name: agent_password(settings, name) for name in ports},
        # Test mode: the SIPp phones share the carrier's address, so the port tells them apart.
        "carrier_match": f"{carrier}:{settings.carrier_port}" if test_mode else carrier,
        "queues": queue_specs(settings, queues),
        "ring_seconds": 8 if test_mode else 15,
        "queue_max_wait": 300 if test_mode else 900,
        "callback_offer_seconds": 8 if test_mode else 45,
        "voicemail_seconds": 120,
        "callback_ring_seconds": 30,
        "agi_address": f"{settings.fastagi_host}:{settings.fastagi_port}",
        "agi_seconds": 4,
        "recordings_dir": paths.recordings_inner,
    }


def render_files(
    settings: Settings,
    paths: PbxPaths,
    agents: list[AgentEndpoint],
    queues: list[QueueRow] | None = None,
) -> dict[str, str]:
    """Every config file's text; raises PbxConfigInvalid before anything is written."""
    check_settings(settings, agents)
    environment = _environment()
    context = build_context(settings, paths, agents, queues)
    files = {name: environment.get_template(f"{name}.j2").render(context) for name in TEMPLATES}
    return {**STUB_FILES, **files}


def _drop_old_configs(paths: PbxPaths, keep: Path) -> None:
    for old in paths.etc_link.parent.glob("conf-*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def live_files(paths: PbxPaths) -> dict[str, str]:
    if not paths.etc_link.is_dir():
        return {}
    return {f.name: f.read_text(encoding="utf-8") for f in paths.etc_link.iterdir() if f.is_file()}


def write_config(paths: PbxPaths, files: dict[str, str]) -> bool:
    """Make ``files`` the live configuration; return False when it already was."""
    if live_files(paths) == files:
        return False
    base = paths.etc_link.parent
    base.mkdir(parents=True, exist_ok=True)
    fresh = base / f"conf-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns()}"
    fresh.mkdir()
    for name, text in files.items():
        (fresh / name).write_text(text, encoding="utf-8")
    if paths.etc_link.exists() and not paths.etc_link.is_symlink():
        paths.etc_link.rename(base / f"conf-previous-{time.monotonic_ns()}")
    staged = base / "etc.swap"
    staged.unlink(missing_ok=True)
    # Relative, so it resolves the same inside the chroot and from the host.
    staged.symlink_to(fresh.name)
    staged.replace(paths.etc_link)
    _drop_old_configs(paths, keep=fresh)
    return True


def render_config(
    settings: Settings,
    paths: PbxPaths,
    agents: list[AgentEndpoint],
    queues: list[QueueRow] | None = None,
) -> bool:
    return write_config(paths, render_files(settings, paths, agents, queues))

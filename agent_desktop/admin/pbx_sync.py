"""Apply an admin change to the running PBX: re-render from the CRM, reload only what changed.

Runs after the change has committed. A PBX that is stopped or not installed is not an error:
the change is saved and takes effect at the next `hotline pbx start`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from asterisk_conf import process, provision, service
from asterisk_conf.errors import PbxConfigInvalid
from asterisk_conf.paths import pbx_paths
from crm_core.settings import Settings

log = logging.getLogger(__name__)
# Two admins saving at once: one render-and-reload at a time, each from the committed state.
_one_at_a_time = threading.Lock()


@dataclass(frozen=True)
class PbxSync:
    status: str  # reloaded | unchanged | not_running | not_installed | failed
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "detail": self.detail}


def apply_to_pbx(settings: Settings) -> PbxSync:
    with _one_at_a_time:
        return _apply(settings)


def _apply(settings: Settings) -> PbxSync:
    paths = pbx_paths(settings)
    if not provision.is_installed(paths):
        return PbxSync(
            "not_installed", "saved; the PBX is not installed here (hotline pbx install)"
        )
    if not process.is_running(paths):
        return PbxSync(
            "not_running", "saved; the PBX is stopped, it applies at `hotline pbx start`"
        )
    try:
        agents = service.agents_for(settings, None)
        outcome = service.reload(settings, agents, service.queues_for(settings, None))
    except PbxConfigInvalid as exc:
        log.error("PBX reload after an admin change failed: %s", exc.message)
        return PbxSync("failed", f"saved, but the PBX refused it: {exc.message}")
    if not outcome.changed:
        return PbxSync("unchanged", "the PBX configuration was already up to date")
    return PbxSync("reloaded", "PBX reloaded (" + "; ".join(outcome.commands) + ")")


async def apply_in_background(settings: Settings) -> PbxSync:
    """The same, off the event loop (rendering reads the database and runs `asterisk -rx`)."""
    return await asyncio.to_thread(apply_to_pbx, settings)

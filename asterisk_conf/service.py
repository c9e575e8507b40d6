"""What each `hotline pbx` command does, in terms of provision, render, ports and process."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import asterisk_conf.prompts as prompts
from asterisk_conf import process, provision
from asterisk_conf.agents import AgentEndpoint, load_agent_endpoints, read_agents_file
from asterisk_conf.errors import PbxConfigInvalid, PbxNotInstalled
from asterisk_conf.paths import PbxPaths, pbx_paths
from asterisk_conf.ports import check_ports_free
from asterisk_conf.render import QueueRow, live_files, load_queue_rows, render_files, write_config
from crm_core.settings import Settings

log = logging.getLogger(__name__)

# Lines whose change a reload cannot apply: sockets are bound once, at start.
_RESTART_KEYS = {
    "pjsip.conf": ("bind =",),
    "manager.conf": ("port =", "bindaddr ="),
}


# What to reload when one file changed: only that module, so a new phone or a queue change
# does not restart the channel drivers or the bridges that carry calls in progress.
_RELOAD_COMMANDS = {
    "pjsip.conf": "module reload res_pjsip.so",
    "queues.conf": "module reload app_queue.so",
    "extensions.conf": "dialplan reload",
    "manager.conf": "manager reload",
}


@dataclass(frozen=True)
class StartOutcome:
    pid: int
    already_running: bool


@dataclass(frozen=True)
class ReloadOutcome:
    changed: bool
    restart_needed: list[str]
    commands: tuple[str, ...] = ()


def agents_for(settings: Settings, agents_file: Path | None) -> list[AgentEndpoint]:
    if agents_file is not None:
        return read_agents_file(agents_file)
    try:
        return asyncio.run(load_agent_endpoints(settings))
    except Exception as exc:  # any database failure: say where the agents were to come from
        raise PbxConfigInvalid(
            "could not read agent phones from the CRM database "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}); run `hotline db upgrade` "
            "first, or pass --agents FILE (a JSON list of users)"
        ) from exc


def queues_for(settings: Settings, agents_file: Path | None) -> list[QueueRow] | None:
    """The CRM's queues; None (the built-in two) with an agents file or an empty table."""
    if agents_file is not None:
        return None
    try:
        rows = asyncio.run(load_queue_rows(settings))
    except Exception as exc:  # same advice as for the agents
        raise PbxConfigInvalid(
            "could not read the queues from the CRM database "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}); run `hotline db upgrade` first"
        ) from exc
    return rows or None


def require_installed(paths: PbxPaths) -> None:
    if not provision.is_installed(paths):
        raise PbxNotInstalled(
            f"no Asterisk root at {paths.root}; run `hotline pbx install` first (as root)"
        )


def start(
    settings: Settings, agents: list[AgentEndpoint], queues: list[QueueRow] | None = None
) -> StartOutcome:
    paths = pbx_paths(settings)
    require_installed(paths)
    files = render_files(settings, paths, agents, queues)  # refuses bad settings before writing
    prompts.ensure_prompts(paths.prompts_host, log.info, prompts.hours_texts(queues or []))
    running = process.read_pid(paths) if process.is_running(paths) else None
    if running is not None:
        return StartOutcome(pid=running, already_running=True)
    check_ports_free(settings)
    for directory in paths.instance_dirs():
        directory.mkdir(parents=True, exist_ok=True)
    write_config(paths, files)
    return StartOutcome(pid=process.spawn(paths), already_running=False)


def _restart_needed(old: dict[str, str], new: dict[str, str]) -> list[str]:
    changed: list[str] = []
    for name, prefixes in _RESTART_KEYS.items():

        def pick(text: str, prefixes: tuple[str, ...] = prefixes) -> list[str]:
            return [line for line in text.splitlines() if line.startswith(prefixes)]

        if pick(old.get(name, "")) != pick(new.get(name, "")):
            changed.append(name)
    return changed


def reload_commands(old: dict[str, str], new: dict[str, str]) -> tuple[str, ...]:
    """The module reloads that apply the difference between two configurations."""
    changed = sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))
    if any(name not in _RELOAD_COMMANDS for name in changed):
        return ("core reload",)
    return tuple(_RELOAD_COMMANDS[name] for name in changed)


def reload(
    settings: Settings, agents: list[AgentEndpoint], queues: list[QueueRow] | None = None
) -> ReloadOutcome:
    """Re-render and reload only the modules whose files changed; calls are not touched."""
    paths = pbx_paths(settings)
    require_installed(paths)
    files = render_files(settings, paths, agents, queues)
    process.require_running(paths)
    # A queue's new hours are spoken before the dialplan can play them.
    prompts.ensure_prompts(paths.prompts_host, log.info, prompts.hours_texts(queues or []))
    old = live_files(paths)
    if not write_config(paths, files):
        return ReloadOutcome(changed=False, restart_needed=[])
    commands = reload_commands(old, files)
    for command in commands:
        result = process.run_cli(paths, command)
        if not result.ok:
            raise PbxConfigInvalid(f"Asterisk refused `{command}`: {result.output}")
    return ReloadOutcome(True, _restart_needed(old, files), commands)


def status_lines(settings: Settings) -> tuple[bool, list[str]]:
    paths = pbx_paths(settings)
    lines = [
        f"instance:   {paths.instance} ({settings.pbx_mode} mode)",
        f"root:       {paths.root} ({'installed' if provision.is_installed(paths) else 'MISSING'})",
        f"config:     {paths.etc_link}",
        f"recordings: {paths.recordings_host}",
        f"SIP:        {settings.sip_host}:{settings.sip_port}/udp",
        f"AMI:        {settings.ami_host}:{settings.ami_port}/tcp",
    ]
    if not process.is_running(paths):
        return False, ["state:      stopped", *lines]
    uptime = process.run_cli(paths, "core show uptime seconds").output.replace("\n", "; ")
    calls = process.run_cli(paths, "core show channels count").output.replace("\n", "; ")
    running = [f"state:      running, pid {process.read_pid(paths)}", f"uptime:     {uptime}"]
    return True, [*running, f"channels:   {calls}", *lines]

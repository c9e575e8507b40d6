"""`hotline pbx ...`: install, start, stop, status, reload and cli for the local Asterisk."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from asterisk_conf import process, provision, service
from asterisk_conf.errors import PbxNotRunning
from asterisk_conf.paths import pbx_paths
from asterisk_conf.render import render_config
from crm_core.settings import Settings


def _say(message: str) -> None:
    print(f"hotline pbx: {message}", flush=True)


def cmd_install(settings: Settings, args: argparse.Namespace) -> int:
    result = provision.install(pbx_paths(settings))
    _say(f"installed in {result.seconds:.1f} s" if result.built_root else "already installed")
    return 0


def cmd_start(settings: Settings, args: argparse.Namespace) -> int:
    agents = service.agents_for(settings, args.agents)
    outcome = service.start(settings, agents, service.queues_for(settings, args.agents))
    if outcome.already_running:
        _say(f"already running (pid {outcome.pid}); use `hotline pbx reload` to apply changes")
        return 0
    _say(
        f"started instance {settings.pbx_instance} (pid {outcome.pid}) with {len(agents)} agent "
        f"phone(s); SIP {settings.sip_host}:{settings.sip_port}, "
        f"AMI {settings.ami_host}:{settings.ami_port}"
    )
    return 0


def cmd_stop(settings: Settings, args: argparse.Namespace) -> int:
    stopped = process.terminate(pbx_paths(settings))
    _say("stopped" if stopped else "was not running")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    running, lines = service.status_lines(settings)
    for line in lines:
        print(line)
    return 0 if running else 3


def cmd_reload(settings: Settings, args: argparse.Namespace) -> int:
    agents = service.agents_for(settings, args.agents)
    outcome = service.reload(settings, agents, service.queues_for(settings, args.agents))
    if not outcome.changed:
        _say("configuration unchanged; nothing to reload")
    else:
        done = "; ".join(outcome.commands)
        _say(f"configuration rendered and reloaded ({done}); calls in progress continue")
    for name in outcome.restart_needed:
        _say(f"{name}: an address or port changed; it takes effect on `stop` then `start`")
    return 0


def cmd_render(settings: Settings, args: argparse.Namespace) -> int:
    paths = pbx_paths(settings)
    agents = service.agents_for(settings, args.agents)
    changed = render_config(settings, paths, agents, service.queues_for(settings, args.agents))
    _say(f"{'wrote' if changed else 'unchanged'}: {paths.etc_link.resolve()}")
    return 0


def cmd_cli(settings: Settings, args: argparse.Namespace) -> int:
    paths = pbx_paths(settings)
    process.require_running(paths)
    result = process.run_cli(paths, args.command_line)
    print(result.output)
    if not result.ok:
        raise PbxNotRunning(f"the Asterisk CLI command failed: {args.command_line}")
    return 0


def _add(
    pbx: Any, name: str, handler: Any, help_text: str, with_agents: bool = False
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = pbx.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    if with_agents:
        parser.add_argument(
            "--agents",
            type=Path,
            metavar="FILE",
            help="JSON list of {username, display_name, phone_interface}; "
            "default: active users with a phone in the CRM database",
        )
    return parser


def register(commands: Any) -> None:
    pbx_parser = commands.add_parser("pbx", help="the local Asterisk PBX")
    pbx = pbx_parser.add_subparsers(dest="pbx_command", required=True, metavar="ACTION")
    _add(pbx, "install", cmd_install, "build the Asterisk root once (debootstrap, as root)")
    _add(pbx, "start", cmd_start, "render the configuration and start Asterisk", True)
    _add(pbx, "stop", cmd_stop, "stop Asterisk")
    _add(pbx, "status", cmd_status, "is Asterisk running; exit 3 when stopped")
    _add(pbx, "reload", cmd_reload, "re-render and reload without dropping calls", True)
    _add(pbx, "render", cmd_render, "write the configuration without starting", True)
    cli = _add(pbx, "cli", cmd_cli, "run one Asterisk CLI command, e.g. 'core show channels'")
    cli.add_argument("command_line", metavar="COMMAND")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: hotline pbx ...")

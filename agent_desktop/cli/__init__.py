"""The `hotline` command: the one place where every package's commands are wired together."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent_desktop import schema
from crm_core.errors import HotlineError
from crm_core.settings import Settings, SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    # Imported here so `hotline --help` stays fast and a broken optional part names itself.
    from agent_desktop.cli import admin as cli_admin
    from agent_desktop.cli import backup as cli_backup  # backup + restore (issue #17 §4)
    from agent_desktop.cli import cluster as cli_cluster  # several nodes (issue #19)
    from agent_desktop.cli import commands as cli_commands
    from agent_desktop.cli import demo as cli_demo
    from agent_desktop.cli import dispositions as cli_dispositions
    from agent_desktop.cli import imports as cli_imports  # hotline import (issue #17 §3)
    from agent_desktop.cli import tokens as cli_tokens  # API tokens (issue #21 §3)
    from asterisk_conf import cli as pbx_cli

    parser = argparse.ArgumentParser(prog="hotline", description="400 hotline call center")
    parser.add_argument("--config", help="TOML settings file (default: ./hotline.toml if present)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_commands.register(commands)
    cli_admin.register(commands)
    cli_dispositions.register(commands)  # issue #18 §3: wrap-up disposition codes
    cli_backup.register(commands)  # issue #17 §4: database + recordings
    pbx_cli.register(commands)
    cli_demo.register(commands)
    cli_imports.register(commands)  # hotline import (customer data, issue #17 §3)
    cli_tokens.register(commands)
    cli_cluster.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    schema.prepare()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings: Settings = load_settings(args.config)
        code: int = args.handler(settings, args)
    except SettingsError as exc:
        print(f"hotline: bad settings: {exc}", file=sys.stderr)
        return 2
    except HotlineError as exc:
        print(f"hotline: {exc.message} [{exc.error_id}]", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code

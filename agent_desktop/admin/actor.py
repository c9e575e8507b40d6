"""Who makes an administration change: a logged-in admin on the web, or a shell user on the CLI."""

from __future__ import annotations

import getpass
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    name: str
    ip: str | None
    via: str  # "web" or "cli"

    @classmethod
    def shell(cls) -> Actor:
        try:
            who = getpass.getuser()
        except OSError:  # no login name in a container: still say it came from the shell
            who = "unknown"
        return cls(None, f"cli:{who}", None, "cli")

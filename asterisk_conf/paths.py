"""Where one PBX instance keeps its files, seen from the host and from inside the chroot.

One debootstrapped root is shared by every instance (dev PBX, test PBX); each instance gets
its own config, run, spool, lib and log directories under ``/srv/hotline/<instance>`` inside
the root, so two instances on different ports never share a control socket or an ASTdb.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from crm_core.settings import Settings

INSTANCES_DIR = PurePosixPath("/srv/hotline")
PROMPTS_SUBDIR = "hotline"
PROMPT_LANGUAGE = "zh"
MODULES_DIR = PurePosixPath("/usr/lib/x86_64-linux-gnu/asterisk/modules")
DATA_DIR = PurePosixPath("/usr/share/asterisk")


@dataclass(frozen=True)
class PbxPaths:
    """Paths of one instance; ``inner`` paths are as Asterisk sees them inside the chroot."""

    root: Path
    instance: str

    @property
    def inner_base(self) -> PurePosixPath:
        return INSTANCES_DIR / self.instance

    def inner(self, *parts: str) -> PurePosixPath:
        return self.inner_base.joinpath(*parts)

    def host(self, inner_path: PurePosixPath | str) -> Path:
        """The host path of a path inside the chroot, e.g. a MIXMONITOR_FILENAME value."""
        return self.root / str(inner_path).lstrip("/")

    @property
    def etc_link(self) -> Path:
        """A symlink to the active rendered config; swapped atomically on each render."""
        return self.host(self.inner("etc"))

    @property
    def asterisk_conf_inner(self) -> PurePosixPath:
        return self.inner("etc", "asterisk.conf")

    @property
    def recordings_inner(self) -> PurePosixPath:
        return self.inner("spool", "monitor")

    @property
    def recordings_host(self) -> Path:
        return self.host(self.recordings_inner)

    @property
    def log_host(self) -> Path:
        return self.host(self.inner("log"))

    @property
    def call_records(self) -> Path:
        """Asterisk's own call records (cdr_custom.conf), on the host."""
        return self.log_host / "cdr-custom" / "calls.csv"

    @property
    def console_log(self) -> Path:
        """Asterisk's own stdout/stderr when started by `hotline pbx start`."""
        return self.log_host / "console.log"

    @property
    def pid_file(self) -> Path:
        return self.host(self.inner("run", "asterisk.pid"))

    @property
    def prompts_host(self) -> Path:
        return self.host(DATA_DIR / "sounds" / PROMPT_LANGUAGE / PROMPTS_SUBDIR)

    @property
    def stamp(self) -> Path:
        """Written last by a successful debootstrap; its presence means the root is whole."""
        return self.root / ".hotline-provisioned"

    def instance_dirs(self) -> list[Path]:
        return [
            self.host(self.inner(name))
            for name in (
                "run",
                "spool",
                "spool/monitor",
                "spool/outgoing",
                "lib",
                "log",
                "log/cdr-custom",
            )
        ]


def pbx_paths(settings: Settings) -> PbxPaths:
    return PbxPaths(root=Path(settings.pbx_root), instance=settings.pbx_instance)

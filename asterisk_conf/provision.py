"""`hotline pbx install`: build the Asterisk root once with debootstrap, then keep it as is.

The root lives outside the repository (settings.pbx_root). debootstrap writes into a
``.partial`` sibling that is renamed into place only when complete, so an interrupted install
never leaves a root that looks finished. Every later step checks before it writes, which is
what makes a second run fast and change nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asterisk_conf import prompts
from asterisk_conf.errors import PbxInstallFailed, PbxPrerequisiteMissing
from asterisk_conf.mirror import debian_mirror
from asterisk_conf.paths import PbxPaths

SUITE = "sid"
PACKAGES = ("asterisk", "asterisk-modules")
# User ids inside the root do not match the host's; Asterisk runs as root and must own these.
ROOT_OWNED_DIRS = (
    "var/lib/asterisk",
    "var/spool/asterisk",
    "var/log/asterisk",
    "var/run/asterisk",
    "etc/asterisk",
)
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "chroot": "coreutils",
    "espeak-ng": "espeak-ng",
    "sox": "sox",
}

Reporter = Callable[[str], None]


@dataclass(frozen=True)
class InstallResult:
    built_root: bool
    changes: int
    seconds: float


def _stderr_report(message: str) -> None:
    print(f"[pbx install] {message}", file=sys.stderr, flush=True)


def check_prerequisites() -> None:
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append(
            "not running as root: debootstrap and chroot need root; run `sudo hotline pbx install`"
        )
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        problems.append(
            f"missing program(s) from Debian package(s) {', '.join(missing)}; "
            f"install them with `apt-get install {' '.join(missing)}`"
        )
    if problems:
        raise PbxPrerequisiteMissing("cannot install the PBX: " + "; ".join(problems))


def stamp_text() -> str:
    return f"suite={SUITE}\npackages={','.join(PACKAGES)}\n"


def is_installed(paths: PbxPaths) -> bool:
    return paths.stamp.is_file() and paths.stamp.read_text(encoding="utf-8") == stamp_text()


_NOISY = ("Retrieving", "Validating", "Extracting", "Unpacking", "Configuring")


def _progress(line: str, counts: dict[str, int], report: Reporter) -> None:
    """Pass debootstrap's milestones through; summarise its hundreds of per-package lines."""
    text = line[3:].rstrip() if line.startswith(("I: ", "W: ", "E: ")) else ""
    verb = text.split(" ", 1)[0]
    if verb in _NOISY:
        counts[verb] = counts.get(verb, 0) + 1
        if counts[verb] % 100 == 0:
            report(f"{verb.lower()} packages: {counts[verb]} so far")
    elif text:
        report(text)


def _run_debootstrap(target: Path, mirror: str, report: Reporter) -> None:
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(target),
        mirror,
    ]
    report(f"running {' '.join(command)} (about a minute, progress below)")
    log_path = target.parent / f"{target.name}.debootstrap.log"
    counts: dict[str, int] = {}
    with (
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as proc,
        log_path.open("w", encoding="utf-8") as log,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            _progress(line, counts, report)
    if proc.returncode != 0:
        raise PbxInstallFailed(
            f"debootstrap failed with exit code {proc.returncode}; its full output is in "
            f"{log_path}; a partial root was left at {target} and is removed on the next try"
        )


def _build_root(paths: PbxPaths, report: Reporter) -> None:
    mirror = debian_mirror()
    partial = paths.root.with_name(paths.root.name + ".partial")
    if partial.exists():
        report(f"removing an unfinished earlier attempt at {partial}")
        shutil.rmtree(partial)
    if paths.root.exists():
        report(f"{paths.root} exists but is not a finished root; rebuilding it")
        shutil.rmtree(paths.root)
    partial.parent.mkdir(parents=True, exist_ok=True)
    _run_debootstrap(partial, mirror, report)
    (partial / paths.stamp.name).write_text(stamp_text(), encoding="utf-8")
    partial.rename(paths.root)


def _chown_to_root(paths: PbxPaths) -> int:
    changed = 0
    for relative in ROOT_OWNED_DIRS:
        top = paths.root / relative
        if not top.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                info = os.lstat(name)
                if info.st_uid != 0 or info.st_gid != 0:
                    os.lchown(name, 0, 0)
                    changed += 1
    return changed


def _make_instance_dirs(paths: PbxPaths) -> int:
    missing = [d for d in paths.instance_dirs() if not d.is_dir()]
    for directory in missing:
        directory.mkdir(parents=True, exist_ok=True)
    return len(missing)


def install(paths: PbxPaths, report: Reporter = _stderr_report) -> InstallResult:
    """Provision the root and this instance's directories; idempotent."""
    started = time.monotonic()
    check_prerequisites()
    built = False
    if is_installed(paths):
        report(f"Asterisk root {paths.root} already built; keeping it")
    else:
        _build_root(paths, report)
        built = True
    changes = _chown_to_root(paths)
    if changes:
        report(f"gave {changes} file(s) under the Asterisk directories to root")
    changes += _make_instance_dirs(paths)
    changes += prompts.ensure_prompts(paths.prompts_host, report)
    seconds = time.monotonic() - started
    report(f"done in {seconds:.1f} s ({'built the root' if built else f'{changes} change(s)'})")
    return InstallResult(built_root=built, changes=changes, seconds=seconds)

"""Run one Asterisk instance: `chroot ROOT asterisk -f -U root -G root -C <instance conf>`.

Asterisk runs in the foreground (-f) in its own session, so it outlives the CLI command that
started it. Its control socket (inside the instance's run directory) is how every other
command talks to it, through `asterisk -rx`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from asterisk_conf.errors import PbxNotRunning, PbxStartFailed
from asterisk_conf.paths import PbxPaths

BOOT_SECONDS = 60.0
STOP_SECONDS = 20.0


@dataclass(frozen=True)
class CliResult:
    ok: bool
    output: str


def asterisk_command(paths: PbxPaths, *args: str) -> list[str]:
    return ["chroot", str(paths.root), "asterisk", "-C", str(paths.asterisk_conf_inner), *args]


def run_cli(paths: PbxPaths, command: str, timeout: float = 30.0) -> CliResult:
    """Run one CLI command on the running instance through its control socket."""
    try:
        done = subprocess.run(
            asterisk_command(paths, "-rx", command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CliResult(False, f"no answer from Asterisk within {timeout:.0f} s")
    output = (done.stdout + done.stderr).strip()
    refused = "Unable to connect to remote asterisk" in output
    return CliResult(done.returncode == 0 and not refused, output)


def read_pid(paths: PbxPaths) -> int | None:
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
    if b"asterisk" not in cmdline or state == "Z":
        return None
    return pid


def is_running(paths: PbxPaths) -> bool:
    return read_pid(paths) is not None and run_cli(paths, "core show version", 10).ok


def _console_tail(paths: PbxPaths, lines: int = 15) -> str:
    try:
        text = paths.console_log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no console output)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_booted(paths: PbxPaths, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + BOOT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PbxStartFailed(
                f"Asterisk exited with code {proc.returncode} while starting; "
                f"last lines of {paths.console_log}:\n{_console_tail(paths)}"
            )
        if run_cli(paths, "core waitfullybooted", 10).ok:
            return
        time.sleep(0.2)
    raise PbxStartFailed(
        f"Asterisk did not finish booting within {BOOT_SECONDS:.0f} s; see {paths.console_log}"
    )


def spawn(paths: PbxPaths) -> int:
    """Start Asterisk and wait until it is fully booted; return its pid."""
    paths.console_log.parent.mkdir(parents=True, exist_ok=True)
    with paths.console_log.open("ab") as console:
        proc = subprocess.Popen(
            asterisk_command(paths, "-f", "-U", "root", "-G", "root"),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait_booted(paths, proc)
    return proc.pid


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            _reap(pid)
            return True
        time.sleep(0.1)
    return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def terminate(paths: PbxPaths) -> bool:
    """Stop the instance: politely, then SIGTERM, then SIGKILL. False if it was not running."""
    pid = read_pid(paths)
    if pid is None:
        return False
    run_cli(paths, "core stop now", 10)
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
        if _wait_gone(pid, STOP_SECONDS / 2):
            break
    paths.pid_file.unlink(missing_ok=True)
    return True


def require_running(paths: PbxPaths) -> None:
    if not is_running(paths):
        raise PbxNotRunning(
            f"the PBX instance {paths.instance!r} is not running; start it with `hotline pbx start`"
        )

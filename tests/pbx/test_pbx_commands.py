"""`hotline pbx` commands against the real root: idempotent install, clear refusals."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from pbx_harness import PbxUnderTest, pbx_test_settings

pytestmark = pytest.mark.pbx


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """(mtime, size, mode, owner) of every path in the root: what "changes nothing" means."""
    facts: dict[str, tuple[int, int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            facts[path] = (info.st_mtime_ns, info.st_size, info.st_mode, info.st_uid)
    return facts


def _config_state(pbx: PbxUnderTest) -> tuple[str, dict[str, str], list[str]]:
    link = pbx.paths.etc_link
    files = {f.name: f.read_text(encoding="utf-8") for f in link.iterdir()}
    siblings = sorted(p.name for p in link.parent.iterdir())
    return os.readlink(link), files, siblings


def test_second_install_is_quick_and_changes_nothing(pbx: PbxUnderTest) -> None:
    # The root is built (the session fixture installed it); the instance is running.
    before = _snapshot(pbx.paths.root)
    began = time.monotonic()
    done = pbx.hotline("pbx", "install")
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert "already installed" in done.stdout
    assert "keeping it" in done.stderr
    after = _snapshot(pbx.paths.root)
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    # Only the running instance's own logs, ASTdb, sockets and spool move, on their own.
    running = str(pbx.paths.host(pbx.paths.inner_base))
    moving = tuple(f"{running}/{d}" for d in ("log", "lib", "run", "spool"))
    assert sorted(p for p in changed if not p.startswith(moving)) == []
    print(f"second install took {seconds:.2f} s")  # a figure for the report, not asserted


def test_bad_setting_refuses_start_and_keeps_the_config(pbx: PbxUnderTest) -> None:
    before = _config_state(pbx)
    done = pbx.hotline(
        "pbx", "start", "--agents", str(pbx.agents_file), HOTLINE_SIP_HOST="pbx.local"
    )
    assert done.returncode == 1
    assert "sip_host (HOTLINE_SIP_HOST)" in done.stderr
    assert "not an IP address" in done.stderr
    assert "[pbx_config_invalid]" in done.stderr
    assert _config_state(pbx) == before


def test_out_of_range_port_is_a_settings_error(pbx: PbxUnderTest) -> None:
    before = _config_state(pbx)
    done = pbx.hotline("pbx", "start", HOTLINE_SIP_PORT="70000")
    assert done.returncode == 2
    assert "sip_port" in done.stderr
    assert _config_state(pbx) == before


def test_port_in_use_gives_a_clear_message(pbx: PbxUnderTest, tmp_path: Path) -> None:
    other = PbxUnderTest(pbx_test_settings("pytest-busy", offset=21000), tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", other.settings.sip_port))
        done = other.hotline("pbx", "start", "--agents", str(other.agents_file))
    assert done.returncode == 1
    assert f"127.0.0.1:{other.settings.sip_port}/udp" in done.stderr
    assert "already in use" in done.stderr
    assert "[pbx_port_in_use]" in done.stderr
    assert other.hotline("pbx", "status").returncode == 3


def test_status_and_cli_of_the_running_instance(pbx: PbxUnderTest) -> None:
    status = pbx.hotline("pbx", "status")
    assert status.returncode == 0
    assert "running" in status.stdout
    assert f"127.0.0.1:{pbx.settings.sip_port}/udp" in status.stdout
    endpoints = pbx.cli("pjsip show endpoints")
    assert "carrier" in endpoints and "1001" in endpoints
    modules = pbx.cli("module show like res_pjsip_outbound_registration")
    assert "0 modules loaded" in modules


def test_start_when_running_is_a_no_op(pbx: PbxUnderTest) -> None:
    done = pbx.hotline("pbx", "start", "--agents", str(pbx.agents_file))
    assert done.returncode == 0
    assert "already running" in done.stdout

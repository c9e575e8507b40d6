"""Fixtures for the real-PBX tests: one test Asterisk per session, SIPp per test, an AMI tap.

The test instance ("pytest") has its own ports (SIP 25060, AMI 25038, carrier 25070, phones
25080+), so it never clashes with a dev PBX started by `make run` on 5060/5038.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ami_tap import AmiTap
from pbx_harness import PbxUnderTest, Sipp, missing_tools, pbx_test_settings

from asterisk_conf import provision
from asterisk_conf.paths import pbx_paths


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "real-PBX tests need root (chroot)"
    tools = missing_tools()
    if tools:
        packages = "debootstrap sip-tester espeak-ng sox"
        return f"real-PBX tests need {', '.join(tools)}: apt-get install {packages}"
    return None


@pytest.fixture(scope="session")
def pbx_provisioned() -> None:
    """`hotline pbx install`, once; cold it builds the root (about a minute)."""
    reason = _unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    provision.install(pbx_paths(pbx_test_settings()), report=lambda message: None)


@pytest.fixture(scope="session")
def pbx(pbx_provisioned: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PbxUnderTest]:
    settings = pbx_test_settings()
    # SIPp media ports above this instance's RTP range: two test runs never collide.
    Sipp.media_ports_above(max(30000, settings.rtp_end_port + 100))
    instance = PbxUnderTest(settings, tmp_path_factory.mktemp("pbx"))
    instance.stop()  # a leftover from an interrupted run
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def ami(pbx: PbxUnderTest, tmp_path: Path) -> Iterator[AmiTap]:
    tap = AmiTap(pbx.settings, tmp_path / "ami.txt")
    yield tap
    tap.close()


@pytest.fixture
def sipp_processes() -> Iterator[list[Sipp]]:
    """Every SIPp started by a test is listed here and stopped after it."""
    started: list[Sipp] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture
def calls_cleared(pbx: PbxUnderTest) -> Iterator[None]:
    """Leave no call up for the next test, even when this one failed half-way."""
    yield
    if pbx.channels():
        pbx.cli("channel request hangup all")

"""Template rendering and its guards, without a PBX."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from asterisk_conf.agents import AgentEndpoint, endpoint_from_interface, unique_agents
from asterisk_conf.errors import PbxConfigInvalid
from asterisk_conf.mirror import debian_mirror
from asterisk_conf.paths import PbxPaths
from asterisk_conf.prompts import PROMPTS
from asterisk_conf.render import live_files, render_config, render_files
from crm_core.settings import Settings

AGENTS = [
    AgentEndpoint("zhang", "张三", "1001", "1001"),
    AgentEndpoint("li", "李四", "1002", "1002"),
]


@pytest.fixture
def paths(tmp_path: Path) -> PbxPaths:
    return PbxPaths(root=tmp_path / "root", instance="unit")


def _render(paths: PbxPaths, **changes: str | int) -> dict[str, str]:
    return render_files(Settings().replace(**changes), paths, AGENTS)


def test_modules_are_explicit_and_autoload_is_off(paths: PbxPaths) -> None:
    modules = _render(paths)["modules.conf"]
    assert "autoload = no" in modules
    assert "load => chan_pjsip.so" in modules
    assert "load => app_queue.so" in modules
    assert "res_resolver_unbound" not in modules


def test_manager_is_loopback_with_least_privilege_and_noise_filters(paths: PbxPaths) -> None:
    manager = _render(paths, ami_port=6038, ami_secret="s3cret")["manager.conf"]
    assert "bindaddr = 127.0.0.1" in manager
    assert "port = 6038" in manager
    assert "secret = s3cret" in manager
    read = next(line for line in manager.splitlines() if line.startswith("read ="))
    assert set(read.split("=")[1].strip().split(",")) == {
        "system",
        "call",
        "agent",
        "user",
        "dialplan",
    }
    assert "eventfilter(action(exclude),name(TestEvent))" in manager
    assert "name(RTCPSent)" in manager


def test_test_mode_agents_have_static_loopback_contacts(paths: PbxPaths) -> None:
    pjsip = _render(paths, agent_phone_base_port=7080)["pjsip.conf"]
    assert "contact = sip:1001@127.0.0.1:7081" in pjsip
    assert "contact = sip:1002@127.0.0.1:7082" in pjsip
    assert "contact = sip:technician@127.0.0.1:7080" in pjsip
    assert 'callerid = "张三" <1001>' in pjsip
    assert "match = 127.0.0.1:5070" in pjsip
    assert "auth =" not in pjsip


def test_production_agents_register_with_derived_passwords(paths: PbxPaths) -> None:
    pjsip = _render(
        paths, pbx_mode="production", ami_secret="a-real-one", sip_secret="another-real-one"
    )["pjsip.conf"]
    assert "contact = sip:1001@" not in pjsip
    assert "max_contacts = 1" in pjsip
    assert "auth = 1001-auth" in pjsip
    assert "another-real-one" not in pjsip
    assert "match = 127.0.0.1\n" in pjsip


def test_production_refuses_development_secrets(paths: PbxPaths) -> None:
    with pytest.raises(PbxConfigInvalid, match=r"ami_secret.*development default"):
        _render(paths, pbx_mode="production")


def test_queues_have_every_agent_named_by_username(paths: PbxPaths) -> None:
    queues = _render(paths)["queues.conf"]
    assert "[hotline](queue-defaults)" in queues
    assert "[vip](queue-defaults)" in queues
    assert "strategy = ringall" in queues
    assert "wrapuptime =" in queues
    assert queues.count("member => PJSIP/1001,0,zhang,PJSIP/1001") == 2


def test_dialplan_records_looks_up_with_fallbacks_then_queues(paths: PbxPaths) -> None:
    dialplan = _render(paths, fastagi_host="127.0.0.1", fastagi_port=4999)["extensions.conf"]
    assert "exten => 4008001234,1," in dialplan
    assert "HOTLINE_AGI = agi://127.0.0.1:4999" in dialplan
    assert "AGI(${HOTLINE_AGI}/lookup)" in dialplan
    assert "exten => T,1," in dialplan
    assert "Set(AGIEXITONHANGUP=yes)" in dialplan
    assert "MixMonitor(${MIXMONITOR_FILENAME})" in dialplan
    assert "/srv/hotline/unit/spool/monitor" in dialplan
    assert "Queue(${HOTLINE_QUEUE},rc" in dialplan
    assert "[hotline-survey]" in dialplan and "[hotline-outbound]" in dialplan
    # A ';' in a dialplan line starts a comment and would cut the line short.
    code = [line for line in dialplan.splitlines() if line.startswith(("exten", " same"))]
    assert not [line for line in code if ";" in line]


def test_every_prompt_the_dialplan_plays_is_made_by_the_installer(paths: PbxPaths) -> None:
    dialplan = _render(paths)["extensions.conf"]
    played = set(re.findall(r"[(,=]hotline/([a-z0-9-]+)", dialplan))
    assert {"welcome", "survey-score", "survey-retry", "thanks"} <= played
    assert played <= set(PROMPTS), played - set(PROMPTS)


def test_bad_settings_are_all_named_and_nothing_is_written(paths: PbxPaths) -> None:
    settings = Settings().replace(sip_host="pbx.local", ami_host="10.1.2.3", fastagi_port=5060)
    with pytest.raises(PbxConfigInvalid) as caught:
        render_config(settings, paths, AGENTS)
    message = caught.value.message
    assert "sip_host (HOTLINE_SIP_HOST)" in message
    assert "ami_host (HOTLINE_AMI_HOST)" in message and "loopback" in message
    assert "fastagi_port" in message
    assert not paths.etc_link.parent.exists()


def test_render_swaps_atomically_and_is_idempotent(paths: PbxPaths) -> None:
    settings = Settings()
    assert render_config(settings, paths, AGENTS) is True
    first = os.readlink(paths.etc_link)
    assert render_config(settings, paths, AGENTS) is False
    assert os.readlink(paths.etc_link) == first
    assert render_config(settings, paths, AGENTS[:1]) is True
    assert os.readlink(paths.etc_link) != first
    assert "1002" not in live_files(paths)["pjsip.conf"]
    assert len(list(paths.etc_link.parent.glob("conf-*"))) == 1
    with pytest.raises(PbxConfigInvalid):
        render_config(settings.replace(carrier_host="carrier"), paths, AGENTS)
    assert "1001" in live_files(paths)["pjsip.conf"]


def test_agent_endpoints_from_phone_interfaces() -> None:
    agent = endpoint_from_interface("zhang", 'Zhang "Z"; [x]', "PJSIP/agent1001")
    assert agent == AgentEndpoint("zhang", "Zhang Z x", "agent1001", "1001")
    assert agent.interface == "PJSIP/agent1001"
    assert endpoint_from_interface("a", "A", "SIP/1001") is None
    assert endpoint_from_interface("a", "A", "PJSIP/10 01") is None
    assert endpoint_from_interface("a", "A", "PJSIP/front") is None
    with pytest.raises(PbxConfigInvalid, match="share the phone"):
        unique_agents([AGENTS[0], AgentEndpoint("x", "X", "1001", "1001")])


def test_mirror_comes_from_apt_configuration(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: x-security\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian/\nSuites: x\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.invalid/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://other.invalid/debian x main\n")
    assert debian_mirror(tmp_path) == "http://other.invalid/debian"
    (tmp_path / "sources.list").unlink()
    with pytest.raises(Exception, match="no Debian mirror"):
        debian_mirror(tmp_path)

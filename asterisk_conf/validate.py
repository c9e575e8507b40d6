"""Checks of the settings that Asterisk would otherwise reject late, vaguely, or unsafely.

Asterisk boots with no DNS look-ups, so every host is an IP literal. AMI stays on loopback.
All problems are reported together, each naming the setting and its environment variable.
"""

from __future__ import annotations

import ipaddress

from asterisk_conf.agents import AgentEndpoint
from asterisk_conf.errors import PbxConfigInvalid
from crm_core.settings import Settings, env_name

DEV_SECRETS = {"ami_secret": "hotline-local-dev", "sip_secret": "hotline-local-dev-sip"}


def _bad(key: str, problem: str) -> str:
    return f"{key} ({env_name(key)}): {problem}"


def _host_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    for key in ("sip_host", "ami_host", "fastagi_host", "carrier_host"):
        value = getattr(settings, key)
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            problems.append(_bad(key, f"{value!r} is not an IP address (no DNS names here)"))
            continue
        if key == "ami_host" and not address.is_loopback:
            problems.append(_bad(key, f"{value} is not loopback; AMI is only served on loopback"))
    return problems


def phone_ports(settings: Settings, agents: list[AgentEndpoint]) -> dict[str, int]:
    """Test mode: where each SIPp phone listens; the technician first, then agents by extension."""
    ports = {"technician": settings.agent_phone_base_port}
    for index, agent in enumerate(sorted(agents, key=lambda a: a.extension)):
        ports[agent.endpoint] = settings.agent_phone_base_port + 1 + index
    return ports


def _port_problems(settings: Settings, agents: list[AgentEndpoint]) -> list[str]:
    problems: list[str] = []
    if settings.rtp_start_port >= settings.rtp_end_port:
        problems.append(_bad("rtp_start_port", "must be below rtp_end_port"))
    fixed = {
        "sip_port": settings.sip_port,
        "ami_port": settings.ami_port,
        "fastagi_port": settings.fastagi_port,
    }
    if settings.carrier_host == settings.sip_host:
        fixed["carrier_port"] = settings.carrier_port
    seen: dict[int, str] = {}
    for key, port in fixed.items():
        if port in seen:
            problems.append(_bad(key, f"port {port} is already used by {seen[port]}"))
        seen[port] = key
        if settings.rtp_start_port <= port <= settings.rtp_end_port:
            problems.append(_bad(key, f"port {port} lies inside the RTP range"))
    if settings.pbx_mode == "test":
        phones = phone_ports(settings, agents)
        top = max(phones.values())
        if top > 65535:
            problems.append(_bad("agent_phone_base_port", f"agent phones would need port {top}"))
        clash = sorted(set(phones.values()) & set(seen))
        if clash:
            problems.append(_bad("agent_phone_base_port", f"phone port {clash[0]} is taken"))
    return problems


def _secret_problems(settings: Settings) -> list[str]:
    if settings.pbx_mode != "production":
        return []
    return [
        _bad(key, "still the development default; set a real secret for production")
        for key, default in DEV_SECRETS.items()
        if getattr(settings, key) == default
    ]


def check_settings(settings: Settings, agents: list[AgentEndpoint]) -> None:
    problems = [
        *_host_problems(settings),
        *_port_problems(settings, agents),
        *_secret_problems(settings),
    ]
    if problems:
        raise PbxConfigInvalid(
            "the PBX configuration was not written: " + "; ".join(problems),
            problems=problems,
        )

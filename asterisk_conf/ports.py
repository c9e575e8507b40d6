"""Is a port free? Checked before Asterisk starts, so a clash gets a clear message."""

from __future__ import annotations

import socket

from asterisk_conf.errors import PbxPortInUse
from crm_core.settings import Settings, env_name


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_is_free(host: str, port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(_family(host), kind) as probe:
        if kind == socket.SOCK_STREAM:
            # As Asterisk does: connections left in TIME_WAIT by clients do not block a server.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def required_ports(settings: Settings) -> list[tuple[str, str, int, socket.SocketKind]]:
    return [
        ("sip_port", settings.sip_host, settings.sip_port, socket.SOCK_DGRAM),
        ("ami_port", settings.ami_host, settings.ami_port, socket.SOCK_STREAM),
    ]


def check_ports_free(settings: Settings) -> None:
    busy = [
        f"{host}:{port}/{'udp' if kind == socket.SOCK_DGRAM else 'tcp'} "
        f"(setting {key}, {env_name(key)})"
        for key, host, port, kind in required_ports(settings)
        if not port_is_free(host, port, kind)
    ]
    if busy:
        raise PbxPortInUse(
            "cannot start the PBX: port(s) already in use by another program: "
            + ", ".join(busy)
            + "; stop that program (see `ss -lntup`) or choose other ports in hotline.toml",
            ports=busy,
        )

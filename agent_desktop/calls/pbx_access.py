"""What the CTI bridge may read of the PBX besides the AMI event stream: channel variables
(AMI Getvar) for calls adopted at a resync, and, for the local PBX only, its call records and
recordings spool, for calls that began and ended while the AMI link was down."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from asterisk_conf.paths import pbx_paths
from crm_core.settings import Settings
from cti.ami_client import AmiClient
from cti.bridge import CtiBridge


def give_pbx_access(bridge: CtiBridge, ami: AmiClient, settings: Settings) -> None:
    paths = pbx_paths(settings)

    async def channel_variables(server: str, channel: str, names: Sequence[str]) -> dict[str, str]:
        found = {}
        for name in names:
            reply = await ami.action(
                server, {"Action": "Getvar", "Channel": channel, "Variable": name}, timeout=2.0
            )
            value = reply.headers.get("Value", "")
            if value:
                found[name] = value
        return found

    bridge.channel_variables = channel_variables

    def call_records(server: str) -> Path | None:
        # Only the local PBX's files are on this host (other boxes: AMI only).
        return paths.call_records if server == settings.pbx_instance else None

    def recording_of(server: str, linkedid: str) -> str | None:
        if server != settings.pbx_instance:
            return None
        found = sorted(paths.recordings_host.glob(f"*-in-{linkedid}.wav"))
        return str(paths.recordings_inner / found[0].name) if found else None

    bridge.call_records = call_records
    bridge.recording_of = recording_of

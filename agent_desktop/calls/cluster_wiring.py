"""The CTI side of a cluster (docs/deploy.md): one AMI leader per Asterisk server, and the
agents' messages crossing to whatever node their desktop is connected to.

- Each Asterisk server is a lease (`ami:<server>`). Its holder takes the event stream (the
  AMI link logs in again with events on and resyncs, which adopts the calls in progress),
  writes call state under the lease's epoch (fencing), and pops. The other nodes keep an
  events-off link for actions (dial, pause, spy).
- Everything sent to an agent through the hub is relayed to the other nodes, which hand it
  to that agent's tabs there. Pop receipts go the other way, to the leader, which holds
  the pops. A desktop connecting to a node that does not lead reads its open pops from the
  pop rows.
"""

from __future__ import annotations

import logging
from typing import Any

from agent_desktop.common.ws_hub import WebSocketHub
from crm_core.cluster.fence import LOST
from crm_core.cluster.runtime import Cluster
from cti.ami_client import AmiClient
from cti.bridge import CtiBridge

log = logging.getLogger(__name__)
WS_KIND = "ws"
ACK_KIND = "pop.ack"


def lease_name(server: str) -> str:
    return f"ami:{server}"


def wire_cluster(
    cluster: Cluster, hub: WebSocketHub, bridge: CtiBridge, ami: AmiClient, servers: list[str]
) -> None:
    cluster.users = lambda: list(hub.connections)
    if not cluster.clustered:
        return
    _relay_messages(cluster, hub)
    cluster.on(ACK_KIND, _apply_receipt(bridge))
    epochs: dict[str, int] = {}
    for server in servers:
        _lead(cluster, bridge, ami, server, epochs)


async def follow_until_leading(cluster: Cluster, ami: AmiClient, servers: list[str]) -> None:
    """Before the AMI client starts: a node of a cluster leaves every event stream to the
    leader until it takes a lease itself."""
    if cluster.clustered:
        for server in servers:
            await ami.set_events(server, False)


def leads_any(cluster: Cluster, servers: list[str]) -> bool:
    return any(cluster.holds(lease_name(s)) for s in servers)


def _relay_messages(cluster: Cluster, hub: WebSocketHub) -> None:
    def relay(user_id: int | None, text: str) -> None:
        cluster.publish(WS_KIND, {"u": user_id, "m": text})

    async def deliver(body: Any) -> None:
        user_id, text = body.get("u"), str(body.get("m", ""))
        if user_id is None:
            await hub.broadcast_local(text)
        else:
            await hub.send_local(int(user_id), text)

    hub.relay = relay
    cluster.on(WS_KIND, deliver)


def _apply_receipt(bridge: CtiBridge) -> Any:
    async def apply(body: Any) -> None:
        bridge.pops.receipt(int(body["u"]), str(body["p"]), str(body["s"]))

    return apply


def forward_receipt(cluster: Cluster, user_id: int, pop_id: str, stage: str) -> bool:
    """A receipt for a pop this node does not hold goes to the leader that does."""
    if stage not in ("delivered", "displayed") or not pop_id:
        return False
    cluster.publish(ACK_KIND, {"u": user_id, "p": pop_id, "s": stage})
    return True


def _lead(
    cluster: Cluster, bridge: CtiBridge, ami: AmiClient, server: str, epochs: dict[str, int]
) -> None:
    name = lease_name(server)

    async def acquired(epoch: int) -> None:
        epochs[name] = epoch
        bridge.set_fence(epochs)
        bridge.forget(server)  # start clean: the resync at login adopts what is live
        bridge.begin_takeover(server)  # and closes what ended while nobody led
        await ami.set_events(server, True)

    async def lost() -> None:
        epochs[name] = LOST
        bridge.set_fence(epochs)
        await ami.set_events(server, False)
        bridge.forget(server)

    cluster.lease(name, acquired, lost)

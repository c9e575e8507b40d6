"""The agents' WebSocket (/ws) on the CTI side: the hello with the agent's live pops and
queue states, pop receipts (ack), ping, and queue-state pushes."""

from __future__ import annotations

from typing import Any

from agent_desktop.calls.cluster_wiring import forward_receipt, leads_any
from agent_desktop.common.ws_hub import PROTOCOL_VERSION, Connection, WebSocketHub
from crm_core.cluster.runtime import Cluster
from cti.agent_state import MemberState
from cti.bridge import CtiBridge
from cti.pop_reads import open_pops


def wire_hub(hub: WebSocketHub, bridge: CtiBridge, cluster: Cluster, servers: list[str]) -> None:
    async def hello(conn: Connection) -> list[dict[str, Any]]:
        agent = bridge.directory.by_id(conn.user_id)
        members = bridge.agents.for_interface(agent.interface or "") if agent else []
        leader = leads_any(cluster, servers)
        return [
            {
                "v": PROTOCOL_VERSION,
                "type": "hello",
                "user_id": conn.user_id,
                # A node that leads no server holds no pops: the rows have them.
                "pops": bridge.pops.active_for(conn.user_id)
                if leader or not cluster.clustered
                else await open_pops(bridge.db, conn.user_id),
                "agent_state": [m.as_dict() for m in members],
            }
        ]

    async def ack(conn: Connection, message: dict[str, Any]) -> dict[str, Any] | None:
        pop_id, stage = str(message.get("pop_id")), str(message.get("stage"))
        ok = bridge.pops.receipt(conn.user_id, pop_id, stage)
        if not ok and cluster.clustered:
            ok = forward_receipt(cluster, conn.user_id, pop_id, stage)
        return (
            None
            if ok
            else {
                "v": PROTOCOL_VERSION,
                "type": "error",
                "error_id": "bad_ack",
                "message": "unknown pop or stage (delivered|displayed)",
            }
        )

    async def ping(conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "type": "pong", "t": message.get("t")}

    async def push_state(server: str, member: MemberState) -> None:
        agent = await bridge.directory.resolve(member.interface, member.member_name)
        if agent is not None:
            await hub.send_to_user(
                agent.user_id,
                {"v": PROTOCOL_VERSION, "type": "agent.state", "member": member.as_dict()},
            )

    hub.on_connect.append(hello)
    hub.handlers.update({"ack": ack, "ping": ping})
    bridge.state_listeners.append(push_state)

"""The agents' WebSocket (/ws) on the CTI side: the hello with the agent's live pops and
queue states, pop receipts (ack), ping, and queue-state pushes."""

from __future__ import annotations

from typing import Any

from agent_desktop.common.ws_hub import PROTOCOL_VERSION, Connection, WebSocketHub
from cti.agent_state import MemberState
from cti.bridge import CtiBridge


def wire_hub(hub: WebSocketHub, bridge: CtiBridge) -> None:
    async def hello(conn: Connection) -> list[dict[str, Any]]:
        agent = bridge.directory.by_id(conn.user_id)
        members = bridge.agents.for_interface(agent.interface or "") if agent else []
        return [
            {
                "v": PROTOCOL_VERSION,
                "type": "hello",
                "user_id": conn.user_id,
                "pops": bridge.pops.active_for(conn.user_id),
                "agent_state": [m.as_dict() for m in members],
            }
        ]

    async def ack(conn: Connection, message: dict[str, Any]) -> dict[str, Any] | None:
        ok = bridge.pops.receipt(
            conn.user_id, str(message.get("pop_id")), str(message.get("stage"))
        )
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

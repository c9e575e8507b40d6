"""Queue login/logout and pause for an agent's phone.

Members written into queues.conf are static: Asterisk refuses QueueRemove for them ("Not
dynamic"). For those, logging out pauses the member with the reason LOGGED_OUT, which routes
no calls to them just the same; the reply says which mechanism was used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from crm_core.errors import HotlineError, ValidationError

LOGGED_OUT = "已签出"
DEFAULT_QUEUES = ("hotline", "vip")


class ActionSender(Protocol):
    async def action(
        self, server: str, action: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any: ...


def _check(interface: str | None) -> str:
    if not interface:
        raise ValidationError("you have no phone extension; ask an admin to set one")
    return interface


async def set_pause(
    ami: ActionSender, server: str, interface: str | None, paused: bool, reason: str = ""
) -> None:
    await ami.action(
        server,
        {
            "Action": "QueuePause",
            "Interface": _check(interface),
            "Paused": "true" if paused else "false",
            "Reason": reason[:60],
        },
    )


async def login(
    ami: ActionSender,
    server: str,
    interface: str | None,
    member_name: str,
    queues: Sequence[str] = DEFAULT_QUEUES,
) -> dict[str, str]:
    interface = _check(interface)
    result = {}
    for queue in queues:
        try:
            await ami.action(
                server,
                {
                    "Action": "QueueAdd",
                    "Queue": queue,
                    "Interface": interface,
                    "MemberName": member_name,
                    "StateInterface": interface,
                    "Paused": "false",
                },
            )
            result[queue] = "added"
        except HotlineError as exc:
            if "already there" not in exc.message.lower():
                raise
            result[queue] = "already a member"
    await set_pause(ami, server, interface, False)  # undo a pause-style logout
    return result


async def logout(
    ami: ActionSender, server: str, interface: str | None, queues: Sequence[str] = DEFAULT_QUEUES
) -> dict[str, str]:
    interface = _check(interface)
    result = {}
    for queue in queues:
        try:
            await ami.action(
                server, {"Action": "QueueRemove", "Queue": queue, "Interface": interface}
            )
            result[queue] = "removed"
        except HotlineError as exc:
            if "not dynamic" not in exc.message.lower():
                raise
            await ami.action(
                server,
                {
                    "Action": "QueuePause",
                    "Queue": queue,
                    "Interface": interface,
                    "Paused": "true",
                    "Reason": LOGGED_OUT,
                },
            )
            result[queue] = "paused (static member)"
    return result

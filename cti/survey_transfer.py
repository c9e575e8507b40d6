"""Send the customer of a live call to the IVR satisfaction survey (hotline-survey).

Inbound callers reach the survey by themselves when the agent hangs up. A follow-up call is
the agent's own outbound call, so the agent sends the customer there from the desktop at the
end: AMI Redirect of the customer's channel; the agent's leg then ends. The score comes back
as SurveyAnswered with this call's Linkedid (cti/surveys.py, ticketing's follow-ups).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from crm_core.errors import HotlineError

SURVEY_CONTEXT = "hotline-survey"


class NotOnThatCall(HotlineError):
    status = 409
    error_id = "not_on_that_call"


class ActionSender(Protocol):
    async def action(
        self, server: str, action: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any: ...


def customer_channel(
    channels: Sequence[Mapping[str, str]], linkedid: str, agent_interface: str
) -> str:
    """The call's channel that is not the agent's phone: the customer (or carrier) leg."""
    agent_prefix = agent_interface + "-"
    legs = [c for c in channels if c.get("Linkedid") == linkedid]
    if not any(c.get("Channel", "").startswith(agent_prefix) for c in legs):
        raise NotOnThatCall("you are not on that call any more")
    others = [c["Channel"] for c in legs if not c.get("Channel", "").startswith(agent_prefix)]
    if len(others) != 1:
        raise NotOnThatCall("the customer is no longer on that call")
    return others[0]


async def transfer_to_survey(
    ami: ActionSender, server: str, linkedid: str, agent_interface: str
) -> str:
    """Redirect the customer's leg of `linkedid` to the survey; returns that channel."""
    reply = await ami.action(server, {"Action": "CoreShowChannels"})
    channels = [dict(event.headers) for event in reply.events]
    channel = customer_channel(channels, linkedid, agent_interface)
    await ami.action(
        server,
        {
            "Action": "Redirect",
            "Channel": channel,
            "Context": SURVEY_CONTEXT,
            "Exten": "s",
            "Priority": "1",
        },
    )
    return channel

"""How the CTI side learns about service requests without importing ticketing: the
composition root hands it these callables (pop extras, IVR status, request number owner)."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.context import AppContext
from asterisk_conf.prompts import PROMPTS
from cti.agi_handlers import KeyedRequest
from ticketing import customer_view
from ticketing.states import RequestState

# The IVR can only play recorded prompts, so a state maps to one of the prompt sentences.
STATE_PROMPT = {
    RequestState.NEW.value: "status-received",
    RequestState.SUBMITTED.value: "status-received",
    RequestState.UNDER_REVIEW.value: "status-review",
    RequestState.COMPLAINT_REVIEW.value: "status-review",
    RequestState.COMPLAINT_HANDLING.value: "status-review",
    RequestState.DISPATCHED_TO_OFFICE.value: "status-dispatched",
    RequestState.IN_FIELD.value: "status-dispatched",
}


def setup(_app: web.Application, ctx: AppContext) -> None:
    db = ctx.db

    async def status_for(customer_id: int) -> str | None:
        found = await customer_view.latest_open_state(db, customer_id)
        if found is None:
            return None
        state, waiting_for_parts = found
        return PROMPTS[
            "status-parts" if waiting_for_parts else STATE_PROMPT.get(state, "status-open")
        ]

    async def request_owner(number: str) -> KeyedRequest | None:
        found = await customer_view.request_by_number(db, number)
        return None if found is None else KeyedRequest(*found)

    # Given the engine to read with: the pop's 360 is built in the CTI database worker
    # process, so open_requests must stay a module-level function (it is pickled by name).
    ctx.providers.update(
        status_for=status_for,
        request_owner=request_owner,
        open_requests=customer_view.open_requests,
    )

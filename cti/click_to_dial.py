"""Click-to-dial: ring the agent's own phone, then dial the customer from the outbound context.

Idempotent per request id: the browser makes one id per click and may send it again after a
reconnect; the call-log row (unique request id) is written before anything is dialled, and
the AMI client never sends the same Originate twice.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm_core.db import Database
from crm_core.errors import HotlineError, ValidationError
from crm_core.phones import parse_or_raise
from cti.models import Call

REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
OUTBOUND_CONTEXT = "hotline-outbound"


class DialFailed(HotlineError):
    status = 503
    error_id = "dial_failed"


class NoPhone(HotlineError):
    status = 409
    error_id = "no_phone"


class Originator(Protocol):
    async def originate(
        self,
        server: str,
        *,
        channel: str,
        context: str,
        exten: str,
        request_id: str,
        caller_id: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> Any: ...


def dial_string(raw: str, home_area_code: str) -> tuple[str, str]:
    """(digits to dial through the carrier, canonical number) for a number as typed."""
    phone = parse_or_raise(raw, home_area_code=home_area_code)
    if phone.e164.startswith("+86"):
        national = phone.digits if phone.kind in ("mobile", "service") else "0" + phone.digits
    else:
        national = "00" + phone.e164.lstrip("+").split(";")[0]
    return national, phone.e164


async def _claim(db: Database, request_id: str, values: dict[str, Any]) -> tuple[Call, bool]:
    """Insert the log row for this request, or return the one a previous click made."""
    try:
        async with db.transaction() as session:
            row = Call(request_id=request_id, linkedid=f"pending:{request_id}", **values)
            session.add(row)
        return row, True
    except IntegrityError:
        async with db.transaction() as session:
            existing = (
                await session.scalars(select(Call).where(Call.request_id == request_id))
            ).one()
        return existing, False


async def click_to_dial(
    db: Database,
    ami: Originator,
    *,
    server: str,
    agent_id: int,
    interface: str | None,
    number: str,
    request_id: str,
    customer_id: int | None = None,
    service_request_id: int | None = None,
) -> dict[str, Any]:
    """Ring the agent's phone, then the number. `service_request_id`: the call is placed
    from that service request (a follow-up or dispatch call) and belongs to it."""
    if not interface:
        raise NoPhone("you have no phone extension; ask an admin to set one")
    if not REQUEST_ID.match(request_id or ""):
        raise ValidationError("request_id: 8-64 letters, digits, - or _ (one per click)")
    settings = db.settings
    national, e164 = dial_string(number, settings.home_area_code)
    row, new = await _claim(
        db,
        request_id,
        {
            "server": server,
            "direction": "outbound",
            "number": national,
            "number_e164": e164,
            "agent_id": agent_id,
            "agent_interface": interface,
            "customer_id": customer_id,
            "service_request_id": service_request_id,
        },
    )
    if new:
        variables = {"HOTLINE_REQUEST_ID": request_id}
        if customer_id is not None:
            variables["HOTLINE_CUSTOMER_ID"] = str(customer_id)
        try:
            await ami.originate(
                server,
                channel=interface,
                context=OUTBOUND_CONTEXT,
                exten=national,
                request_id=request_id,
                caller_id=f"<{settings.hotline_number}>",
                variables=variables,
            )
        except HotlineError as exc:
            async with db.transaction() as session:
                failed = await session.get(Call, row.id)
                if failed is not None:
                    failed.status, failed.outcome = "ended", "failed"
            raise DialFailed(f"the call could not be placed: {exc.message}") from None
    return {"call_id": row.id, "request_id": request_id, "number": national, "new": new}

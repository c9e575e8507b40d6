"""Twilio, through the official `twilio` library (async client).

Twilio has no idempotency header. Our guarantee comes from the outbox instead: before any
re-send the worker asks `find_sent`, which lists the recent messages to that number and
matches the exact body sent since the first attempt. See docs/sms.md for what that covers.
"""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException  # type: ignore[import-untyped]
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from sms_gateway.backends import Accepted, OutgoingSms
from sms_gateway.errors import SendError

log = logging.getLogger(__name__)
# How far back a reconciliation looks, and how many recent messages to that number it reads.
CLOCK_SKEW = timedelta(minutes=5)
RECONCILE_PAGE = 50


class _HttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The library's aiohttp client, sending the basic-auth header itself: aiohttp 3.14
    deprecates the `BasicAuth` helper the library uses."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        all_headers = dict(headers or {})
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            all_headers["Authorization"] = f"Basic {token}"
        seconds = timeout or self.timeout
        async with self.session.request(
            method.upper(),
            url,
            params=params,
            data=data,
            headers=all_headers,
            timeout=aiohttp.ClientTimeout(total=seconds) if seconds else None,
            allow_redirects=allow_redirects,
        ) as response:
            text = await response.text()
            return Response(response.status, text, response.headers)


class TwilioBackend:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str = "",
        messaging_service_sid: str = "",
        status_callback: str | None = None,
        api_base_url: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("set twilio_from or twilio_messaging_service_sid")
        # Created inside the running loop: the aiohttp session binds to it.
        self._http = _HttpClient(timeout=timeout)
        self._client: Any = Client(account_sid, auth_token, http_client=self._http)
        if api_base_url:
            self._client.api.base_url = api_base_url.rstrip("/")
        self._from = from_number
        self._service = messaging_service_sid
        self._callback = status_callback

    def _sender(self) -> dict[str, str]:
        if self._service:
            return {"messaging_service_sid": self._service}
        return {"from_": self._from}

    async def send(self, message: OutgoingSms) -> Accepted:
        extra: dict[str, str] = {}
        if self._callback:
            extra["status_callback"] = self._callback
        try:
            created = await self._client.messages.create_async(
                to=message.to, body=message.body, **self._sender(), **extra
            )
        except TwilioRestException as exc:
            # 4xx other than 429 means the request itself is wrong (bad number, bad auth).
            permanent = 400 <= int(exc.status) < 500 and int(exc.status) != 429
            raise SendError(str(exc.msg), permanent=permanent, code=str(exc.code)) from exc
        except (TwilioException, OSError, TimeoutError) as exc:
            raise SendError(f"twilio unreachable: {exc!r}", permanent=False) from exc
        return Accepted(str(created.sid), str(created.status or "queued"))

    async def find_sent(self, message: OutgoingSms) -> Accepted | None:
        try:
            recent = await self._client.messages.list_async(
                to=message.to,
                limit=RECONCILE_PAGE,
                page_size=RECONCILE_PAGE,
                **({"from_": self._from} if self._from and not self._service else {}),
            )
        except (TwilioException, OSError, TimeoutError) as exc:
            # Unknown is not "absent": the caller must not re-send on a failed look-up.
            raise SendError(f"twilio look-up failed: {exc!r}", permanent=False) from exc
        since = message.first_attempt_at - CLOCK_SKEW
        for item in recent:
            created = item.date_created
            if item.body == message.body and (created is None or created >= since):
                log.info("SMS %s was already accepted by Twilio as %s", message.id, item.sid)
                return Accepted(str(item.sid), str(item.status or "queued"))
        return None

    async def close(self) -> None:
        await self._http.close()

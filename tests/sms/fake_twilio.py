"""A loopback fake of Twilio's Messages REST API (2010-04-01), for tests and the benchmark.

It checks HTTP basic auth (AccountSid/AuthToken), the required parameters (To, From or
MessagingServiceSid, Body), answers with Twilio-shaped JSON and error codes, lists messages
(for reconciliation), and sends status callbacks queued → sent → delivered signed with
X-Twilio-Signature exactly as Twilio computes it — optionally duplicated or out of order.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
from aiohttp import web

from sms_gateway.segments import count_segments
from sms_gateway.signatures import sign

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
FROM_NUMBER = "+15005550006"


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    # Callback behaviour: send each status twice, and/or in a shuffled order.
    duplicate_callbacks: bool = False
    reorder_callbacks: bool = False
    callback_statuses: tuple[str, ...] = ("queued", "sent", "delivered")
    # The next N sends answer 500 (after checking auth), to exercise retries.
    fail_next: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    callbacks_sent: list[tuple[str, str]] = field(default_factory=list)
    callback_failures: int = 0
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    base_url: str = ""
    _rng: random.Random = field(default_factory=lambda: random.Random(7))

    async def start(self) -> FakeTwilio:
        app = web.Application()
        prefix = "/2010-04-01/Accounts/{account}/Messages.json"
        app.router.add_post(prefix, self._create)
        app.router.add_get(prefix, self._list)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        await self.drain()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def drain(self) -> None:
        """Wait until every scheduled status callback has been delivered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (
            user == self.account_sid
            and secrets.compare_digest(password, self.auth_token)
            and request.match_info["account"] == self.account_sid
        )

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        form = {k: str(v) for k, v in (await request.post()).items()}
        to, body = form.get("To"), form.get("Body")
        sender, service = form.get("From"), form.get("MessagingServiceSid")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not (sender or service):
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if not (to.startswith("+") and to[1:].isdigit() and 8 <= len(to) <= 16):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if self.fail_next > 0:
            self.fail_next -= 1
            return _error(500, 20500, "Internal Server Error")
        message = self._resource(to, body, sender, service)
        self.messages.append(message)
        callback = form.get("StatusCallback")
        if callback:
            task = asyncio.create_task(self._callbacks(callback, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(message, status=201)

    def _resource(
        self, to: str, body: str, sender: str | None, service: str | None
    ) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(count_segments(body).segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not sender else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }

    async def _list(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        to, sender = request.query.get("To"), request.query.get("From")
        size = int(request.query.get("PageSize", "50"))
        rows = [
            m
            for m in reversed(self.messages)
            if (to is None or m["to"] == to) and (sender is None or m["from"] == sender)
        ][:size]
        uri = request.path_qs
        return web.json_response(
            {
                "messages": rows,
                "end": max(len(rows) - 1, 0),
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            }
        )

    def _plan(self) -> list[str]:
        plan = list(self.callback_statuses)
        if self.duplicate_callbacks:
            plan = list(itertools.chain.from_iterable((s, s) for s in plan))
        if self.reorder_callbacks:
            self._rng.shuffle(plan)
            if plan and plan[-1] == "delivered":
                plan.reverse()
        return plan

    async def _callbacks(self, url: str, message: dict[str, Any]) -> None:
        for status in self._plan():
            await self.callback(url, message, status)

    async def callback(self, url: str, message: dict[str, Any], status: str) -> int:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": message["from"] or "",
            "MessageSid": message["sid"],
            "MessageStatus": status,
            "SmsSid": message["sid"],
            "SmsStatus": status,
            "To": message["to"],
        }
        headers = {"X-Twilio-Signature": sign(self.auth_token, url, params)}
        assert self._session is not None
        try:
            async with self._session.post(url, data=params, headers=headers) as response:
                self.callbacks_sent.append((message["sid"], status))
                return response.status
        except aiohttp.ClientError:
            self.callback_failures += 1
            return 0

    def to(self, number: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["to"] == number]


async def send_inbound(
    session: aiohttp.ClientSession,
    url: str,
    sender: str,
    body: str,
    *,
    auth_token: str = AUTH_TOKEN,
    signed_url: str | None = None,
    headers: dict[str, str] | None = None,
    sid: str | None = None,
) -> aiohttp.ClientResponse:
    """POST an inbound SMS webhook the way Twilio does (signed over `signed_url or url`)."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": sender,
        "MessageSid": sid or "SM" + secrets.token_hex(16),
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": sid or "",
        "SmsStatus": "received",
        "To": FROM_NUMBER,
    }
    all_headers = {"X-Twilio-Signature": sign(auth_token, signed_url or url, params)}
    all_headers.update(headers or {})
    response = await session.post(url, data=params, headers=all_headers)
    await response.read()
    response.release()
    return response

"""The Chinese providers' callbacks: delivery receipts and technicians' replies.

Paths (public, no session): /sms/{aliyun|tencent}/{token}/{report|inbound}. Neither provider
signs its pushes, so each request is checked here (docs/sms.md, "Callbacks"):
1. the path token equals `sms_callback_token` (constant-time): only the provider's console
   and we know the URL. Otherwise 403 `sms_signature_invalid`;
2. every record's provider timestamp is within `sms_callback_max_age_seconds` (and at most
   5 minutes ahead). Otherwise 403 `sms_callback_replayed`;
3. message ids are processed once: a request whose every record was seen before is a replay,
   403 `sms_callback_replayed`.
Each refusal is logged and written to the audit log (action sms_callback_forged or
sms_callback_replayed, object the provider, with the peer address).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import agent_desktop.sms.webhook as webhook
import sms_gateway.cn_callbacks as cn_callbacks
from agent_desktop.common.guards import mark_public
from agent_desktop.context import CONTEXT_KEY, AppContext
from crm_core.events import SmsStatusChanged
from crm_core.models import AuditEntry, utcnow
from sms_gateway.errors import ForgedWebhook, MalformedCallback, ReplayedCallback
from sms_gateway.inbound import InboundSms, store_inbound
from sms_gateway.models import SmsMessage, SmsStatusEvent
from sms_gateway.status import apply_callback

log = logging.getLogger(__name__)
PROVIDERS = ("aliyun", "tencent")
OK_BODY = {"aliyun": cn_callbacks.ALIYUN_OK, "tencent": cn_callbacks.TENCENT_OK}
Handler = Callable[[web.Request, Any], Awaitable[None]]


async def _audit(request: web.Request, action: str, reason: str) -> None:
    ctx: AppContext = request.app[CONTEXT_KEY]
    provider = request.match_info.get("provider", "")
    log.warning(
        "SMS %s callback refused (%s) from %s: %s", provider, action, request.remote, reason
    )
    async with ctx.db.transaction() as session:
        session.add(
            AuditEntry(
                at=utcnow(),
                action=action,
                object_type="sms_callback",
                object_id=provider,
                ip=(request.remote or "")[:45] or None,
                detail={"path": request.path.rsplit("/", 1)[-1], "reason": reason[:200]},
            )
        )


async def _checked_body(request: web.Request) -> Any:
    settings = request.app[CONTEXT_KEY].settings
    if not cn_callbacks.token_ok(settings.sms_callback_token, request.match_info["token"]):
        await _audit(request, "sms_callback_forged", "wrong path token")
        raise ForgedWebhook("the callback token does not match")
    try:
        return json.loads(await request.read())
    except ValueError:
        raise MalformedCallback("the callback body is not JSON") from None


async def _refuse_stale(request: web.Request, times: list[Any]) -> None:
    settings = request.app[CONTEXT_KEY].settings
    max_age, now = timedelta(seconds=settings.sms_callback_max_age_seconds), utcnow()
    if any(cn_callbacks.is_stale(at, now, max_age) for at in times):
        await _audit(request, "sms_callback_replayed", "timestamp outside the window")
        raise ReplayedCallback("the callback is too old or from the future")


async def _sid_for(session: AsyncSession, receipt: cn_callbacks.Receipt) -> str:
    """Aliyun: a message found by reconciliation is recorded under its OutId."""
    if receipt.out_id is None:
        return receipt.sid
    known = await session.scalar(
        select(SmsMessage.id).where(SmsMessage.provider_sid == receipt.sid)
    )
    by_out = await session.scalar(
        select(SmsMessage.id).where(SmsMessage.provider_sid == receipt.out_id)
    )
    return receipt.out_id if known is None and by_out is not None else receipt.sid


async def receipts(request: web.Request, data: Any) -> None:
    provider = request.match_info["provider"]
    parse = cn_callbacks.aliyun_receipts if provider == "aliyun" else cn_callbacks.tencent_receipts
    items = parse(data)
    await _refuse_stale(request, [r.at for r in items])
    ctx: AppContext = request.app[CONTEXT_KEY]
    fresh, events = 0, []
    async with ctx.db.transaction() as session:
        for receipt in items:
            sid = await _sid_for(session, receipt)
            seen = await session.scalar(
                select(SmsStatusEvent.id).where(
                    SmsStatusEvent.provider_sid == sid, SmsStatusEvent.status == receipt.status
                )
            )
            fresh += seen is None
            changed = await apply_callback(
                session, sid, receipt.status, receipt.error_code, receipt.raw, utcnow()
            )
            if changed is not None:
                events.append(SmsStatusChanged(changed.id, sid, receipt.status, changed.request_id))
    if not fresh:
        await _audit(request, "sms_callback_replayed", "every receipt was seen before")
        raise ReplayedCallback("these receipts were already processed")
    for event in events:
        await ctx.bus.publish(event)


async def replies(request: web.Request, data: Any) -> None:
    provider = request.match_info["provider"]
    parse = cn_callbacks.aliyun_replies if provider == "aliyun" else cn_callbacks.tencent_replies
    items = parse(data)
    await _refuse_stale(request, [r.at for r in items])
    ctx: AppContext = request.app[CONTEXT_KEY]
    fresh = []
    for reply in items:
        sms = InboundSms(
            reply.sid, webhook.sender_e164(reply.sender, ctx.settings), None, reply.body
        )
        if await store_inbound(ctx.db, sms):
            fresh.append(sms)
    if not fresh:
        await _audit(request, "sms_callback_replayed", "every reply was seen before")
        raise ReplayedCallback("these replies were already processed")
    for sms in fresh:
        await webhook.handle_command(request.app, sms)
    worker = request.app[webhook.RUNTIME_KEY].worker
    if worker is not None:
        worker.wake.set()


def _endpoint(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def endpoint(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        if provider not in PROVIDERS:
            raise web.HTTPNotFound()
        await handler(request, await _checked_body(request))
        return web.json_response(OK_BODY[provider])

    return endpoint


def setup(app: web.Application, ctx: AppContext) -> None:
    for provider in PROVIDERS:
        mark_public(app, f"/sms/{provider}")
    app.router.add_post("/sms/{provider}/{token}/report", _endpoint(receipts))
    app.router.add_post("/sms/{provider}/{token}/inbound", _endpoint(replies))

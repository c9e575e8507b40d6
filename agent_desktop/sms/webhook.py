"""SMS edge: Twilio's inbound and status-callback webhooks, the outbox worker, and the wiring
of ticketing to the SMS outbox.

The webhook paths are public (no session): each request is authenticated by its
X-Twilio-Signature instead. A forged or tampered request gets 403, is logged, and changes
nothing. This is the composition root's side of the dependency rule: only here do
`ticketing` and `sms_gateway` meet.
"""

from __future__ import annotations

import html
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import select

import sms_gateway.provider_templates as provider_templates
from agent_desktop.common.guards import mark_public, require_roles
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.services import Ticketing, ticketing_for
from crm_core.errors import HotlineError
from crm_core.events import SmsStatusChanged, TicketTransitioned, WorkOrderDispatched
from crm_core.models import utcnow
from crm_core.phones import normalize
from crm_core.settings import Settings, SettingsError
from sms_gateway.backends import LocalBackend, SmsBackend
from sms_gateway.commands import ParsedCommand, parse
from sms_gateway.errors import CommandParseError, ForgedWebhook
from sms_gateway.inbound import InboundSms, set_outcome, store_inbound
from sms_gateway.models import SmsMessage
from sms_gateway.signatures import is_valid, public_url
from sms_gateway.status import KNOWN, apply_callback
from sms_gateway.worker import OutboxWorker
from ticketing.errors import WorkOrderAmbiguous, WorkOrderNotFound
from ticketing.notices import SmsNotice
from ticketing.states import WorkOrderAction
from ticketing.work_orders import FieldReport

log = logging.getLogger(__name__)
INBOUND_PATH = "/sms/inbound"
STATUS_PATH = "/sms/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

REFUSAL_REASONS = {
    "not_your_work_order": "不是派给您的单,未处理。",
    "work_order_not_found": "单号不存在,请核对。",
    "work_order_ambiguous": "请在指令中写明单号,如 JD 1234。",
}


@dataclass
class SmsRuntime:
    """Filled in at start-up (the app is frozen by then, so this holder is set up front)."""

    worker: OutboxWorker | None = None


RUNTIME_KEY = web.AppKey("hotline.sms_runtime", SmsRuntime)


REQUIRED = {
    "aliyun": ("aliyun_access_key_id", "aliyun_access_key_secret", "aliyun_sign_name"),
    "tencent": (
        "tencent_secret_id",
        "tencent_secret_key",
        "tencent_sms_sdk_app_id",
        "tencent_sign_name",
    ),
}


def check_settings(settings: Settings) -> None:
    """At start-up: a domestic provider needs its credentials and a template for every
    message kind we send; refuse to start otherwise, naming the setting."""
    for key in REQUIRED.get(settings.sms_backend, ()):
        if not getattr(settings, key):
            raise SettingsError(
                f"setting {key}: required when sms_backend is {settings.sms_backend!r}"
            )
    if settings.sms_backend in REQUIRED:
        provider_templates.required(settings)


def make_backend(settings: Settings) -> SmsBackend:
    """The configured provider; call it inside the running event loop."""
    if settings.sms_backend == "aliyun":
        from sms_gateway.aliyun_backend import AliyunBackend

        return AliyunBackend(
            settings.aliyun_access_key_id,
            settings.aliyun_access_key_secret,
            settings.aliyun_sign_name,
            provider_templates.required(settings),
            api_base_url=settings.aliyun_api_base_url or None,
        )
    if settings.sms_backend == "tencent":
        from sms_gateway.tencent_backend import TencentBackend

        return TencentBackend(
            settings.tencent_secret_id,
            settings.tencent_secret_key,
            settings.tencent_sms_sdk_app_id,
            settings.tencent_sign_name,
            provider_templates.required(settings),
            region=settings.tencent_region,
            api_base_url=settings.tencent_api_base_url or None,
        )
    if settings.sms_backend != "twilio":
        return LocalBackend()
    from sms_gateway.twilio_backend import TwilioBackend

    callback = (
        settings.public_base_url.rstrip("/") + STATUS_PATH if settings.public_base_url else None
    )
    return TwilioBackend(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        from_number=settings.twilio_from,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        status_callback=callback,
        api_base_url=settings.twilio_api_base_url or None,
    )


async def _signed_params(request: web.Request) -> dict[str, str]:
    """The form parameters, if the signature matches the URL Twilio called; else 403."""
    settings = request.app[CONTEXT_KEY].settings
    params = {k: str(v) for k, v in (await request.post()).items()}
    url = public_url(
        request.path_qs,
        scheme=request.scheme,
        host=request.host,
        headers=request.headers,
        public_base_url=settings.public_base_url,
    )
    signature = request.headers.get("X-Twilio-Signature", "")
    if not is_valid(settings.twilio_auth_token, url, params, signature):
        log.warning(
            "SMS webhook refused: bad signature for %s from %s (%s)",
            url,
            request.remote,
            "no signature" if not signature else "mismatch",
        )
        raise ForgedWebhook("the request signature does not match")
    return params


def sender_e164(raw: str, settings: Settings) -> str:
    phone = normalize(raw, home_area_code=settings.home_area_code)
    return phone.e164 if phone else raw


async def inbound(request: web.Request) -> web.Response:
    params = await _signed_params(request)
    ctx: AppContext = request.app[CONTEXT_KEY]
    sms = InboundSms(
        sid=params.get("MessageSid") or params.get("SmsSid") or "",
        sender=sender_e164(params.get("From", ""), ctx.settings),
        to=params.get("To"),
        body=params.get("Body", ""),
    )
    if not sms.sid or not await store_inbound(ctx.db, sms):
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")
    await handle_command(request.app, sms)
    worker = request.app[RUNTIME_KEY].worker
    if worker is not None:
        worker.wake.set()
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


async def handle_command(app: web.Application, sms: InboundSms) -> str:
    """Apply a technician's reply; every outcome is stored on the inbound row."""
    services, db = ticketing_for(app), app[CONTEXT_KEY].db
    if not await services.field.is_technician(sms.sender):
        await services.field.refuse(sms.sender, None, "unknown_sms_sender")
        await set_outcome(db, sms.sid, "unknown_sender")
        return "unknown_sender"
    try:
        parsed = parse(sms.body)
    except CommandParseError:
        await set_outcome(db, sms.sid, "unparseable", reply=("command_help", sms.sender))
        return "unparseable"
    try:
        outcome = await services.field.handle(
            sms.sender, parsed.order, _report(parsed), reply_key=f"reply:{sms.sid}"
        )
    except HotlineError as exc:
        await _refuse(services, sms, parsed, exc)
        await set_outcome(db, sms.sid, f"refused:{exc.error_id}", parsed.order)
        return f"refused:{exc.error_id}"
    await set_outcome(db, sms.sid, "applied", outcome.work_order_id)
    return "applied"


def _report(parsed: ParsedCommand) -> FieldReport:
    return FieldReport(WorkOrderAction(parsed.command.value), parsed.eta, parsed.text)


async def _refuse(
    services: Ticketing, sms: InboundSms, parsed: ParsedCommand, exc: HotlineError
) -> None:
    error_id = exc.error_id
    if isinstance(exc, WorkOrderNotFound):
        error_id = "work_order_not_found"
    elif isinstance(exc, WorkOrderAmbiguous):
        error_id = "work_order_ambiguous"
    reason = REFUSAL_REASONS.get(error_id, "当前状态不能执行此操作。")
    reply = SmsNotice(
        to=sms.sender,
        template="command_refused",
        params={"order": str(parsed.order or ""), "reason": reason},
        key=f"reply:{sms.sid}",
    )
    await services.field.refuse(sms.sender, parsed.order, error_id, reply)


async def status_callback(request: web.Request) -> web.Response:
    params = await _signed_params(request)
    ctx: AppContext = request.app[CONTEXT_KEY]
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    if not sid or status not in KNOWN:
        return web.Response(status=204)
    async with ctx.db.transaction() as session:
        changed = await apply_callback(
            session, sid, status, params.get("ErrorCode"), params, utcnow()
        )
        event = SmsStatusChanged(changed.id, sid, status, changed.request_id) if changed else None
    if event is not None:
        await ctx.bus.publish(event)
    return web.Response(status=204)


OUTBOX_PAGE = """<!doctype html><html lang="zh-CN"><meta charset="utf-8">
<title>短信发件箱</title><body style="font-family:sans-serif;margin:2em">
<h1>短信发件箱 (最近 200 条)</h1><table border="1" cellpadding="4" style="border-collapse:collapse">
<tr><th>#</th><th>时间</th><th>收信人</th><th>内容</th><th>条数</th><th>发送</th><th>回执</th></tr>
{rows}</table></body></html>"""


async def outbox_page(request: web.Request) -> web.Response:
    """Every recent outgoing SMS: with the local backend this is where messages "arrive"."""

    @require_roles("admin", "supervisor")
    async def page(request: web.Request) -> web.Response:
        ctx: AppContext = request.app[CONTEXT_KEY]
        async with ctx.db.transaction() as session:
            rows = (
                await session.scalars(select(SmsMessage).order_by(SmsMessage.id.desc()).limit(200))
            ).all()
        cells = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    m.id,
                    m.created_at.isoformat(timespec="seconds"),
                    m.to,
                    m.body,
                    m.segments,
                    m.state,
                    m.provider_status or "",
                )
            )
            + "</tr>"
            for m in rows
        )
        return web.Response(text=OUTBOX_PAGE.format(rows=cells), content_type="text/html")

    return await page(request)


def setup(app: web.Application, ctx: AppContext) -> None:
    check_settings(ctx.settings)
    app.router.add_get("/dev/sms", outbox_page)
    mark_public(app, INBOUND_PATH)
    mark_public(app, STATUS_PATH)
    ticketing_for(app)
    app[RUNTIME_KEY] = SmsRuntime()
    app.router.add_post(INBOUND_PATH, inbound)
    app.router.add_post(STATUS_PATH, status_callback)
    app.cleanup_ctx.append(_outbox_worker)


async def _outbox_worker(app: web.Application) -> AsyncIterator[None]:
    ctx: AppContext = app[CONTEXT_KEY]
    backend = make_backend(ctx.settings)
    worker = OutboxWorker(ctx.db, backend, bus=ctx.bus, max_attempts=ctx.settings.sms_max_attempts)
    app[RUNTIME_KEY].worker = worker

    def wake(_event: object) -> None:
        worker.wake.set()

    ctx.bus.subscribe(WorkOrderDispatched, wake)
    ctx.bus.subscribe(TicketTransitioned, wake)
    # On the leader only, in a cluster (crm_core/cluster/runtime.py); the outbox's claim
    # discipline makes a send cut short by a dying leader happen once, by the next one.
    ctx.cluster.singleton("sms-outbox", worker.run)
    yield
    await ctx.cluster.stop_singleton("sms-outbox")
    app[RUNTIME_KEY].worker = None
    await backend.close()

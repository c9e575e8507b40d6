"""SMS: the outbox worker, the Twilio, Aliyun and Tencent Cloud callbacks (inbound codes
and delivery status) and the local outbox page."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.context import AppContext
from agent_desktop.sms import cn_webhooks, webhook


def setup(app: web.Application, ctx: AppContext) -> None:
    webhook.setup(app, ctx)
    cn_webhooks.setup(app, ctx)

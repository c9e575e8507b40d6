"""The /m/<token> routes: the page, its state, its actions and its photo uploads.

Public to the auth middleware (no session, no password), so every handler starts with
`_claim`: the signed token is verified again (signature, expiry), and the service checks
that the order is still that technician's (or still offered to them).
"""

from __future__ import annotations

import logging
from datetime import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

import agent_desktop.field_mobile.uploads as uploads
from agent_desktop.common.audit import audit
from agent_desktop.common.guards import mark_public
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.common.pages import ENV_KEY
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.services import Ticketing, field_base_url, ticketing_for
from crm_core.errors import HotlineError, ValidationError
from crm_core.models import utcnow
from crm_core.settings import Settings, SettingsError
from ticketing.errors import UnknownFieldAction
from ticketing.field_links import PATH, LinkClaim
from ticketing.mobile import WORKING, MobileAction, MobileKind, StoredFile, check_action_id
from ticketing.mobile_view import mobile_order
from ticketing.states import LABELS_ZH, WORK_ORDER, WorkOrderState

log = logging.getLogger(__name__)
PREFIX = PATH.rstrip("/")  # "/m"
DEV_SECRET = "hotline-local-dev-field-link"  # noqa: S105 - the settings' loopback default
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_TEXT = 1000
KIND_LABELS = {"note": "备注", "parts": "配件", "decline": "拒单", "complete": "完工"}
# The page predicts the next state while it is offline, from the same machine.
MACHINE: dict[str, dict[str, str]] = {}
for (_before, _action), _after in WORK_ORDER.table.items():
    MACHINE.setdefault(_before.value, {})[_action.value] = _after.value


def check_settings(settings: Settings) -> None:
    """Links that leave this machine must not be signed with the public development secret."""
    host = urlsplit(field_base_url(settings)).hostname or ""
    if settings.field_link_secret == DEV_SECRET and host not in LOOPBACK:
        raise SettingsError(
            "setting field_link_secret: the development default only serves loopback links; "
            f"links go to {host}, so set HOTLINE_FIELD_LINK_SECRET (or field_link_secret in the "
            "settings file) to a long random value"
        )
    if len(settings.field_link_secret) < 16:
        raise SettingsError("setting field_link_secret: use at least 16 characters")


def _ctx(request: web.Request) -> AppContext:
    return request.app[CONTEXT_KEY]


def _services(request: web.Request) -> Ticketing:
    return ticketing_for(request.app)


async def _claim(request: web.Request) -> LinkClaim:
    """Verify the link of this request; a refusal is logged and audited."""
    links = _services(request).ctx.links
    assert links is not None
    try:
        return links.verify(request.match_info["token"], utcnow())
    except HotlineError as exc:
        ctx = _ctx(request)
        ip = client_ip(request, ctx.settings)
        log.warning("mobile link refused (%s) from %s", exc.error_id, ip)
        detail = {"reason": exc.error_id, "path": request.path[:80]}
        await audit(ctx, None, "field_link_refused", "work_order", None, ip, detail)
        raise


def _mobile_error(request: web.Request, exc: HotlineError) -> web.Response:
    html = (
        request.app[ENV_KEY]
        .get_template("field_mobile_error.html")
        .render(error_id=exc.error_id, status=exc.status)
    )
    return web.Response(text=html, status=exc.status, content_type="text/html", charset="utf-8")


async def page(request: web.Request) -> web.Response:
    try:
        claim = await _claim(request)
        view = await mobile_order(_ctx(request).db, claim.work_order_id, claim.technician_id)
    except HotlineError as exc:
        return _mobile_error(request, exc)
    page_json = {
        "base": f"{PREFIX}/{request.match_info['token']}",
        "state": view.as_dict(),
        "machine": MACHINE,
        "working": sorted(WORKING),
        "labels": LABELS_ZH[WorkOrderState],
    }
    html = (
        request.app[ENV_KEY]
        .get_template("field_mobile.html")
        .render(v=view, state=view.as_dict(), page_json=page_json, kind_labels=KIND_LABELS)
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def state(request: web.Request) -> web.Response:
    claim = await _claim(request)
    view = await mobile_order(_ctx(request).db, claim.work_order_id, claim.technician_id)
    return web.json_response(view.as_dict())


def _text(body: dict[str, Any]) -> str | None:
    value = body.get("text")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValidationError(f"text: at most {MAX_TEXT} characters", field="text")
    return value.strip() or None


def _eta(body: dict[str, Any]) -> time | None:
    raw = body.get("eta")
    if raw in (None, ""):
        return None
    try:
        return time.fromisoformat(str(raw)[:5])
    except ValueError:
        raise ValidationError("eta looks like 14:30", field="eta") from None


def _position(body: dict[str, Any]) -> dict[str, Any]:
    """The browser's position on arrival, when the technician allowed it."""
    raw = body.get("position")
    if not isinstance(raw, dict):
        return {}
    try:
        lat, lng = float(raw["lat"]), float(raw["lng"])
        accuracy = float(raw.get("accuracy") or 0)
    except (KeyError, TypeError, ValueError):
        raise ValidationError("position has lat and lng numbers", field="position") from None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise ValidationError("position is outside the globe", field="position")
    return {"position": {"lat": round(lat, 6), "lng": round(lng, 6), "accuracy": accuracy}}


def _kind(body: dict[str, Any]) -> MobileKind:
    try:
        kind = MobileKind(str(body.get("kind", "")))
    except ValueError:
        allowed = [k.value for k in MobileKind]
        raise UnknownFieldAction("unknown action", field="kind", allowed=allowed) from None
    if kind == MobileKind.PHOTO:
        raise ValidationError("photos go to /photos as the image itself", field="kind")
    return kind


async def _run(
    request: web.Request,
    claim: LinkClaim,
    action: MobileAction,
    created: bool,
) -> web.Response:
    """Apply the action; a file this request created is removed again if it is refused."""
    ctx = _ctx(request)
    try:
        result = await _services(request).mobile.act(
            claim.work_order_id, claim.technician_id, action
        )
    except Exception:
        if created and action.file is not None:
            await uploads.forget(ctx.settings, action.file)
        raise
    view = await mobile_order(ctx.db, claim.work_order_id, claim.technician_id)
    status = 200 if result.duplicate else 201
    return web.json_response({**view.as_dict(), "duplicate": result.duplicate}, status=status)


async def act(request: web.Request) -> web.Response:
    claim = await _claim(request)
    settings = _ctx(request).settings
    body = await uploads.read_json(request, settings.field_upload_max_bytes)
    action_id = check_action_id(body.get("action_id"))
    kind = _kind(body)
    stored: StoredFile | None = None
    created = False
    if kind == MobileKind.COMPLETE and body.get("signature"):
        data = uploads.decode_data_url(body.get("signature"), "signature")
        stored, created = await uploads.store_image(settings, data, "signature", utcnow())
    action = MobileAction(
        action_id,
        kind,
        text=_text(body),
        eta=_eta(body),
        detail=_position(body) if kind == MobileKind.ARRIVE else {},
        file=stored,
    )
    return await _run(request, claim, action, created)


async def photo(request: web.Request) -> web.Response:
    claim = await _claim(request)
    settings = _ctx(request).settings
    # A custom header: a cross-site form cannot send one without a CORS preflight.
    action_id = check_action_id(request.headers.get("X-Action-Id"))
    data = await uploads.read_limited(request, settings.field_upload_max_bytes)
    if not data:
        raise ValidationError("send the photo as the request body", field="photo")
    stored, created = await uploads.store_image(settings, data, "photo", utcnow())
    action = MobileAction(action_id, MobileKind.PHOTO, file=stored)
    return await _run(request, claim, action, created)


def setup(app: web.Application, ctx: AppContext) -> None:
    check_settings(ctx.settings)
    ticketing_for(app)
    mark_public(app, PREFIX)
    token = r"{token:[A-Za-z0-9_=-]{1,100}}"  # noqa: S105 - a route pattern
    app.router.add_get(f"{PREFIX}/{token}", page)
    app.router.add_get(f"{PREFIX}/{token}/state", state)
    app.router.add_post(f"{PREFIX}/{token}/actions", act)
    app.router.add_post(f"{PREFIX}/{token}/photos", photo)

"""Recordings on the web: the review page, the list and detail API, byte-range streaming
with object-level checks and an audit row per playback/download, QA scorecards, dispute
holds, retention runs and pause/resume of a live call's recording.

Permissions (recordings.access): admin all; agent their own calls and the calls of customers
they own now; supervisor their region. A refusal answers 403 `recording_forbidden` and writes
an `access_denied` audit row (issue 7 asks for 403 here, where customers answer 404).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from agent_desktop.common.audit import audit
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.common.pages import add_nav, locale_of, render
from agent_desktop.common.sessions import SessionUser
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.recordings.wiring import RUNTIME_KEY, build_runtime, lifecycle
from agent_desktop.services import BRIDGE_KEY
from crm_core.errors import ValidationError
from cti.call_queries import survey_scores
from recordings import qa, queries
from recordings.access import Viewer, can_hear
from recordings.errors import NoLiveCall, RecordingForbidden, RecordingUnavailable
from recordings.models import Recording

REVIEWERS = ("supervisor", "admin")
LISTENERS = ("agent", "supervisor", "admin")
MEDIA = {".opus": "audio/ogg", ".wav": "audio/wav"}


def _ctx(request: web.Request) -> AppContext:
    return request.app[CONTEXT_KEY]


def _viewer(user: SessionUser) -> Viewer:
    return Viewer(user.id, user.role, user.region)


def _int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationError(f"{name} must be a whole number", field=name) from None


def _float(value: str | None, name: str) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except ValueError:
        raise ValidationError(f"{name} must be a number", field=name) from None


def _date(value: str | None, name: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise ValidationError(f"{name} is a date like 2026-11-25", field=name) from None


def _filters(q: Any) -> queries.Filters:
    has_request = {"yes": True, "no": False}.get(q.get("has_request", ""))
    return queries.Filters(
        date_from=_date(q.get("date_from"), "date_from"),
        date_to=_date(q.get("date_to"), "date_to"),
        agent_id=_int(q.get("agent_id"), "agent_id"),
        customer=(q.get("customer") or "").strip()[:64] or None,
        queue=q.get("queue") or None,
        min_seconds=_float(q.get("min_seconds"), "min_seconds"),
        max_seconds=_float(q.get("max_seconds"), "max_seconds"),
        outcome=q.get("outcome") or None,
        qa_status=q.get("qa_status") or None,
        has_request=has_request,
    )


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("send a JSON object") from None
    if not isinstance(body, dict):
        raise ValidationError("send a JSON object")
    return body


async def _audit(request: web.Request, action: str, object_id: object, **detail: Any) -> None:
    ctx = _ctx(request)
    ip = client_ip(request, ctx.settings)
    await audit(ctx, current_user(request), action, "recording", str(object_id), ip, detail)


async def visible(request: web.Request, recording_id: int) -> Recording:
    """The recording, if this user may hear it; otherwise audit and answer 403."""
    db, user = _ctx(request).db, current_user(request)
    owners = await queries.owners(db, recording_id)
    if not can_hear(_viewer(user), owners):
        await _audit(request, "access_denied", recording_id, path=request.path)
        raise RecordingForbidden(f"recording {recording_id} is outside your data scope")
    return await queries.get_recording(db, recording_id)


def _id(request: web.Request, name: str = "id") -> int:
    value = _int(request.match_info[name], name)
    assert value is not None
    return value


@require_roles(*LISTENERS)
async def review_page(request: web.Request) -> web.Response:
    user = current_user(request)
    chinese = locale_of(request) == "zh_CN"

    def t(zh: str, en: str) -> str:
        # This page's strings live here, not in the shared catalogue.
        return zh if chinese else en

    return render(
        request,
        "recordings_review.html",
        t=t,
        can_review=user.role in REVIEWERS,
        is_admin=user.role == "admin",
        open_id=_int(request.query.get("open"), "open"),
    )


@require_roles(*LISTENERS)
async def by_call_page(request: web.Request) -> web.Response:
    row = await queries.by_call(_ctx(request).db, _id(request, "call_id"))
    await visible(request, row.id)
    raise web.HTTPSeeOther(location=f"/recordings?open={row.id}")


@require_roles(*LISTENERS)
async def list_api(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    viewer = _viewer(current_user(request))
    rows = await queries.list_recordings(
        ctx.db, viewer, _filters(request.query), ctx.settings.timezone
    )
    # The caller's IVR score sits on the call (cti); QA reads it beside its own score.
    scores = await survey_scores(ctx.db, {r["call_id"] for r in rows if r["call_id"]})
    for row in rows:
        row["survey_score"] = scores.get(row["call_id"])
    return web.json_response({"recordings": rows})


@require_roles(*LISTENERS)
async def by_call_api(request: web.Request) -> web.Response:
    row = await queries.by_call(_ctx(request).db, _id(request, "call_id"))
    await visible(request, row.id)
    return web.json_response(await queries.detail(_ctx(request).db, row.id))


@require_roles(*LISTENERS)
async def detail_api(request: web.Request) -> web.Response:
    user, db = current_user(request), _ctx(request).db
    row = await visible(request, _id(request))
    body = await queries.detail(db, row.id)
    reviews = await qa.reviews_of(db, row.id)
    if user.role not in REVIEWERS:
        reviews = [r for r in reviews if r.agent_id == user.id]  # agents see their own scores
    body["reviews"] = qa.reviews_with_history(reviews)
    body["criteria"] = [qa.criterion_dict(c) for c in await qa.list_criteria(db)]
    body["audio_url"] = f"/api/recordings/{row.id}/audio"
    return web.json_response(body)


@require_roles(*LISTENERS)
async def audio(request: web.Request) -> web.StreamResponse:
    """Byte ranges (206), If-Range and 416 come from aiohttp's FileResponse (sendfile)."""
    row = await visible(request, _id(request))
    storage = request.app[RUNTIME_KEY].storage
    wanted_wav = request.query.get("format") == "wav" or not row.opus_path
    relative = row.wav_path if wanted_wav else row.opus_path
    if row.state != "complete" or relative is None:
        raise RecordingUnavailable(f"recording {row.id} is {row.state}: nothing to play")
    path = storage.path(relative)
    download = request.query.get("download") == "1"
    await _audit(
        request,
        "recording_downloaded" if download else "recording_played",
        row.id,
        range=request.headers.get("Range"),
        file=path.name,
        call_id=row.call_id,
    )
    headers = {"Content-Type": MEDIA.get(path.suffix, "application/octet-stream")}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
    return web.FileResponse(path, headers=headers)


@require_roles(*REVIEWERS)
async def submit_review(request: web.Request) -> web.Response:
    row = await visible(request, _id(request))
    review = await qa.submit_review(
        _ctx(request).db, row, current_user(request).id, await _body(request)
    )
    await _audit(
        request, "qa_review_submitted", row.id, review_id=review.id, version=review.version
    )
    return web.json_response(qa.review_dict(review), status=201)


@require_roles(*LISTENERS)
async def my_reviews(request: web.Request) -> web.Response:
    reviews = await qa.reviews_of_agent(_ctx(request).db, current_user(request).id)
    return web.json_response({"reviews": qa.reviews_with_history(reviews)})


@require_roles(*LISTENERS)
async def criteria(request: web.Request) -> web.Response:
    every = request.query.get("all") == "1" and current_user(request).role == "admin"
    rows = await qa.list_criteria(_ctx(request).db, active_only=not every)
    return web.json_response({"criteria": [qa.criterion_dict(c) for c in rows]})


@require_roles("admin")
async def save_criterion(request: web.Request) -> web.Response:
    criterion_id = _int(request.match_info.get("id"), "id")
    row = await qa.save_criterion(_ctx(request).db, await _body(request), criterion_id)
    ctx = _ctx(request)
    detail = qa.criterion_dict(row)
    ip = client_ip(request, ctx.settings)
    await audit(
        ctx, current_user(request), "qa_criterion_saved", "qa_criterion", str(row.id), ip, detail
    )
    return web.json_response(detail, status=200 if criterion_id else 201)


@require_roles(*REVIEWERS)
async def hold(request: web.Request) -> web.Response:
    row = await visible(request, _id(request))
    reason = (await _body(request)).get("reason")
    if reason is not None and (not isinstance(reason, str) or not reason.strip()):
        raise ValidationError(
            "reason is text (a dispute), or null to lift the hold", field="reason"
        )
    async with _ctx(request).db.transaction() as session:
        fresh = await session.get(Recording, row.id)
        assert fresh is not None
        fresh.hold_reason = reason.strip()[:200] if reason else None
        fresh.hold_by = current_user(request).id if reason else None
    await _audit(
        request, "recording_hold_set" if reason else "recording_hold_cleared", row.id, reason=reason
    )
    return web.json_response({"id": row.id, "hold_reason": fresh.hold_reason})


@require_roles("admin")
async def purge_now(request: web.Request) -> web.Response:
    report = await request.app[RUNTIME_KEY].purge_now()
    await _audit(request, "recordings_purged", "retention", **report)
    return web.json_response(report)


def _live_call(request: web.Request, linkedid: str | None) -> tuple[str, str]:
    """The caller's live call: the given Linkedid if this agent's phone is connected to it,
    or else the call their phone is connected to now."""
    user = current_user(request)
    server = _ctx(request).settings.pbx_instance
    bridge = request.app[BRIDGE_KEY]
    for (call_server, call_linkedid), call in bridge.tracker.calls.items():
        mine = user.phone_interface and call.answered_by == user.phone_interface
        live = call.state == "connected"
        if call_server == server and mine and live and linkedid in (None, call_linkedid):
            return call_server, call_linkedid
    raise NoLiveCall("you have no connected call to pause or resume")


@require_roles("agent", "supervisor", "admin")
async def live_pause(request: web.Request) -> web.Response:
    body = await _body(request)
    server, linkedid = _live_call(request, body.get("linkedid") or None)
    pauses = request.app[RUNTIME_KEY].pauses
    paused = bool(body.get("paused", True))
    if paused:
        result = await pauses.pause(server, linkedid, current_user(request).id)
    else:
        result = await pauses.resume(server, linkedid, "agent")
    action = "recording_paused" if paused else "recording_resumed"
    await _audit(request, action, linkedid, server=server, already=result.get("already"))
    return web.json_response({"linkedid": linkedid, **result})


def setup(app: web.Application, ctx: AppContext) -> None:
    runtime = build_runtime(app, ctx)
    app[RUNTIME_KEY] = runtime
    app.cleanup_ctx.append(lifecycle(runtime))
    add_nav(app, "/recordings", "Recordings", LISTENERS)
    r = app.router
    r.add_get("/recordings", review_page)
    r.add_get("/recordings/call/{call_id}", by_call_page)
    r.add_get("/api/recordings", list_api)
    r.add_get("/api/recordings/by-call/{call_id}", by_call_api)
    r.add_post("/api/recordings/live/pause", live_pause)
    r.add_post("/api/recordings/purge", purge_now)
    r.add_get("/api/recordings/{id}", detail_api)
    r.add_get("/api/recordings/{id}/audio", audio)
    r.add_post("/api/recordings/{id}/reviews", submit_review)
    r.add_post("/api/recordings/{id}/hold", hold)
    r.add_get("/api/qa/criteria", criteria)
    r.add_post("/api/qa/criteria", save_criterion)
    r.add_post("/api/qa/criteria/{id}", save_criterion)
    r.add_get("/api/qa/mine", my_reviews)

"""The page framework: jinja2 templates, the zh_CN/en switch, the navigation, static files,
security headers, and HTML error pages for people (APIs keep their JSON errors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from agent_desktop import i18n
from agent_desktop.common.guards import current_session, wants_html
from agent_desktop.common.ipaccess import allowed_origins
from agent_desktop.context import CONTEXT_KEY, AppContext
from crm_core.errors import HotlineError

HERE = Path(__file__).parent.parent  # agent_desktop/: templates/ and static/ live there
LANG_COOKIE = "hotline_lang"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str  # an English msgid, translated when rendered
    roles: frozenset[str]


@dataclass
class Navigation:
    items: list[NavItem] = field(default_factory=list)


NAV_KEY = web.AppKey("hotline.navigation", Navigation)
ENV_KEY = web.AppKey("hotline.jinja", jinja2.Environment)


def add_nav(app: web.Application, path: str, label: str, roles: tuple[str, ...]) -> None:
    """Put a link in the top navigation for these roles (label: an English msgid)."""
    if NAV_KEY not in app:
        app[NAV_KEY] = Navigation()
    app[NAV_KEY].items.append(NavItem(path, label, frozenset(roles)))


# Stored codes → English msgids; templates translate them with _().
LABELS: dict[str, dict[str, str]] = {
    "ROLE_LABELS": {
        "agent": "Agent",
        "supervisor": "Supervisor",
        "technician": "Field technician",
        "admin": "Administrator",
        "dispatcher": "Dispatcher",
        "auditor": "Auditor (read-only)",
    },
    "MATCH_LABELS": {
        "name": "Customer name",
        "pinyin": "Pinyin",
        "initials": "Pinyin initials",
        "contact": "Contact",
        "phone": "Phone",
        "code": "Customer code",
        "vin": "VIN",
        "plate": "Plate",
    },
    "PHONE_LABELS": {"mobile": "Mobile", "office": "Office phone", "phone": "Phone", "fax": "Fax"},
    "ACTIVITY_LABELS": {"call": "Call", "visit": "Visit", "note": "Note"},
    "CHANGE_LABELS": {
        "create": "Created",
        "update": "Updated",
        "delete": "Deleted",
        "restore": "Restored",
        "merge": "Merged",
        "unmerge": "Merge undone",
        "import": "Imported",  # customer-data import (issue #17 §3)
    },
    "LOGIN_RESULTS": {
        "ok": "Success",
        "bad_password": "Wrong password",
        "unknown_user": "Unknown user",
        "disabled": "Account disabled",
        "locked": "Account locked",
        "throttled": "Address throttled",
        "ip_refused": "Refused by IP lock",
    },
    "LOGOUT_REASONS": {
        "logout": "Logged out",
        "expired": "Session expired",
        "replaced": "Logged in again",
        "disabled": "Account disabled",
    },
}


def _environment(timezone: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    zone = ZoneInfo(timezone)

    def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        return "" if value is None else value.astimezone(zone).strftime(fmt)

    env.filters["localtime"] = localtime
    env.globals.update(LABELS)
    return env


def locale_of(request: web.Request) -> str:
    default = request.app[CONTEXT_KEY].settings.default_locale
    return i18n.choose(request.cookies.get(LANG_COOKIE), default)


def translator(request: web.Request) -> i18n.Translate:
    return i18n.translator(locale_of(request))


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    active = current_session(request)
    user = active.user if active else None
    nav = request.app.get(NAV_KEY, Navigation()).items
    html = (
        request.app[ENV_KEY]
        .get_template(template)
        .render(
            _=translator(request),
            lang=locale_of(request),
            user=user,
            csrf_token=active.csrf_token if active else "",
            nav=[n for n in nav if user is not None and user.role in n.roles],
            path=request.path,
            path_qs=request.path_qs,
            **values,
        )
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def safe_next(target: str | None, default: str = "/desktop") -> str:
    """Only local paths: "//evil.example" and "/\\evil" are other sites to a browser."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target


async def switch_language(request: web.Request) -> web.Response:
    locale = i18n.choose(request.match_info["locale"], locale_of(request))
    response = web.HTTPSeeOther(location=safe_next(request.query.get("next")))
    response.set_cookie(LANG_COOKIE, locale, path="/", max_age=365 * 86400, samesite="Lax")
    raise response


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """People get a page in their language; programs keep the JSON from error_middleware."""
    try:
        return await handler(request)
    except HotlineError as exc:
        if not wants_html(request):
            raise
        return render(request, "error.html", status=exc.status, error_id=exc.error_id)
    except web.HTTPException as exc:
        if exc.status < 400 or not wants_html(request):
            raise
        return render(request, "error.html", status=exc.status, error_id=f"http_{exc.status}")


def _security_headers(ctx: AppContext) -> Callable[[web.Request, web.StreamResponse], Any]:
    sockets = " ".join(o.replace("http", "ws", 1) for o in sorted(allowed_origins(ctx.settings)))
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src 'self'; connect-src 'self' {sockets}; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'; object-src 'none'"
    )

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        if response.content_type == "text/html":
            headers.setdefault("Content-Security-Policy", policy)
        if not request.path.startswith("/static/"):
            # Customer data must not linger in shared browser or proxy caches.
            headers.setdefault("Cache-Control", "no-store")

    return add


def setup(app: web.Application, ctx: AppContext) -> None:
    """Must come before auth.setup in features(): its error pages wrap the auth checks."""
    app[ENV_KEY] = _environment(ctx.settings.timezone)
    app.middlewares.append(html_errors)
    app.on_response_prepare.append(_security_headers(ctx))
    app.router.add_static("/static/", HERE / "static", name="static")
    app.router.add_get("/lang/{locale}", switch_language)

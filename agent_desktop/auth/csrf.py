"""Cross-site request forgery defences.

- Logged-in requests: a synchronizer token stored with the session. Forms send it as the
  `_csrf` field, scripts as the X-CSRF-Token header; every unsafe method must carry it.
- The login form (no session yet): a double-submit token, a cookie plus the same value in
  the form, so another site cannot log a victim into the attacker's account.
- Both: an Origin header, when the browser sends one, must be one of ours.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from agent_desktop.common.errors import CsrfFailed, OriginRefused
from agent_desktop.common.ipaccess import allowed_origins, is_tls
from crm_core.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
HEADER = "X-CSRF-Token"
FIELD = "_csrf"
LOGIN_COOKIE = "hotline_login_csrf"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def is_unsafe(request: web.Request) -> bool:
    return request.method not in SAFE_METHODS


def check_origin(request: web.Request, settings: Settings) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and origin.rstrip("/") not in allowed_origins(settings):
        raise OriginRefused(f"requests from {origin} are not accepted", origin=origin)


async def submitted_token(request: web.Request) -> str:
    header = request.headers.get(HEADER)
    if header:
        return header
    if request.content_type in FORM_TYPES:
        # aiohttp caches the parsed form, so the handler can still read it.
        form = await request.post()
        value = form.get(FIELD)
        return value if isinstance(value, str) else ""
    return ""


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


async def check_session_token(request: web.Request, expected: str) -> None:
    if not _same(await submitted_token(request), expected):
        raise CsrfFailed(
            "missing or wrong CSRF token: reload the page, or send the X-CSRF-Token header"
        )


def login_form_token(request: web.Request) -> str:
    """The double-submit value for the login form: the cookie's, or a new one."""
    current = request.cookies.get(LOGIN_COOKIE, "")
    return current if 20 <= len(current) <= 100 else secrets.token_urlsafe(32)


def set_login_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE, token, path="/", httponly=True, samesite="Strict", secure=is_tls(request)
    )


async def check_login_form(request: web.Request) -> None:
    if not _same(await submitted_token(request), request.cookies.get(LOGIN_COOKIE, "")):
        raise CsrfFailed("the login form expired; reload the page and try again")

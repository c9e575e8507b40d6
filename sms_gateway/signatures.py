"""Twilio webhook signatures, checked with the library's RequestValidator.

Twilio signs the URL *it* called. Behind a reverse proxy our request URL differs (http vs
https, internal host and port), so the URL is rebuilt: from `public_base_url` when it is set,
else from X-Forwarded-Proto / X-Forwarded-Host. Trusting those headers is safe here: they
only choose which URL the signature must match, and a forger still lacks the auth token.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]


def _first(value: str | None) -> str | None:
    """A proxy chain appends ("https, http"); the first value is the client-facing one."""
    if not value:
        return None
    return value.split(",", 1)[0].strip() or None


def public_url(
    path_qs: str,
    *,
    scheme: str,
    host: str,
    headers: Mapping[str, str],
    public_base_url: str = "",
) -> str:
    """The URL Twilio requested, as it saw it."""
    if public_base_url:
        base = urlsplit(public_base_url)
        prefix = base.path.rstrip("/")
        return f"{base.scheme}://{base.netloc}{prefix}{path_qs}"
    proto = _first(headers.get("X-Forwarded-Proto")) or scheme
    forwarded_host = _first(headers.get("X-Forwarded-Host")) or host
    port = _first(headers.get("X-Forwarded-Port"))
    if port and ":" not in forwarded_host and port not in ("80", "443"):
        forwarded_host = f"{forwarded_host}:{port}"
    return f"{proto}://{forwarded_host}{path_qs}"


def is_valid(auth_token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    if not (auth_token and signature):
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send (for the fake provider and tests)."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))

"""Where a request comes from: the client address (behind trusted proxies), the seed's
"IP lock" allowlists (global and per role) and the allowed browser origins."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from aiohttp import web

from crm_core.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=64)
def parse_networks(text: str) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip()
    )


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request: web.Request, settings: Settings) -> str:
    """The peer address; X-Forwarded-For is believed only when the peer is a trusted proxy,
    and then the right-most address that is not itself a trusted proxy wins."""
    peer = request.remote or "unknown"
    proxies = parse_networks(settings.trusted_proxies)
    if not proxies or not _in(peer, proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, proxies):
            return hop if _valid(hop) else peer
    return peer


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def role_allowlist(settings: Settings, role: str) -> str:
    return {
        "agent": settings.ip_allowlist_agent,
        "supervisor": settings.ip_allowlist_supervisor,
        "technician": settings.ip_allowlist_technician,
        "admin": settings.ip_allowlist_admin,
    }.get(role, "")


def ip_allowed(
    settings: Settings, ip: str, role: str | None, user_allowlist: str | None = None
) -> bool:
    """The global list, the role's list and the user's own list (set by an admin) must all
    admit the address; an empty list admits everyone."""
    lists = [settings.ip_allowlist] + ([role_allowlist(settings, role)] if role else [])
    lists.append(user_allowlist or "")
    return all(not text.strip() or _in(ip, parse_networks(text)) for text in lists)


def allowed_origins(settings: Settings) -> frozenset[str]:
    """The configured origins, or the server's own address (plus localhost twins) by default."""
    configured = {o.strip().rstrip("/") for o in settings.allowed_origins.split(",") if o.strip()}
    if configured:
        return frozenset(configured)
    port = settings.http_port
    hosts = {settings.http_host}
    if settings.http_host in ("127.0.0.1", "localhost", "0.0.0.0", "::1"):  # noqa: S104
        hosts |= {"127.0.0.1", "localhost"}
    return frozenset(f"{scheme}://{h}:{port}" for h in hosts for scheme in ("http", "https"))


def is_tls(request: web.Request) -> bool:
    # Claiming https only makes the cookie stricter, so the header needs no proxy trust here.
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"

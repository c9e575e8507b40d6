"""Layered, validated, immutable settings: defaults, then a TOML file, then the environment.

Every key has one name. In the TOML file it is written in lower case (``database_url``); in
the environment it is upper case with the ``HOTLINE_`` prefix (``HOTLINE_AMI_PORT``), except
``DATABASE_URL`` which keeps its conventional bare name. Secrets are never defaulted to
anything but a loopback-only development value, and come from the file or the environment.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "HOTLINE_"
CONFIG_ENV = "HOTLINE_CONFIG"
DEFAULT_CONFIG_FILE = "hotline.toml"


class SettingsError(ValueError):
    """A setting is unknown or has a bad value; the message names the key and what to do."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./var/hotline.db"
    var_dir: str = "./var"
    recordings_dir: str = "./var/recordings"
    home_region: str = "CN"
    home_area_code: str = "0558"
    timezone: str = "Asia/Shanghai"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "hotline"
    # Loopback-only development secret; production sets HOTLINE_AMI_SECRET.
    ami_secret: str = "hotline-local-dev"  # noqa: S105
    fastagi_host: str = "127.0.0.1"
    fastagi_port: int = 4573
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    carrier_host: str = "127.0.0.1"
    carrier_port: int = 5070
    hotline_number: str = "4008001234"
    pbx_root: str = "/var/cache/hotline/asterisk-root"
    pbx_mode: str = "test"
    # More Asterisk boxes (about 300 channels each): name=user:secret@host:port, comma-separated.
    ami_servers: str = ""
    # After the AMI link drops, reconnect attempts back off up to this many seconds.
    ami_reconnect_max_seconds: int = 10
    # Queue callback (#18): tries per caller, and the wait between unanswered tries.
    callback_attempts: int = 3
    callback_retry_seconds: int = 600
    # Several nodes on one PostgreSQL (docs/deploy.md): this node's name; empty runs alone.
    node_name: str = ""
    # The address other nodes and operators see this node at (cluster status), if not the
    # http_host:http_port it listens on (behind NAT or a proxy).
    node_url: str = ""
    log_level: str = "INFO"
    # PBX instance: several (dev, tests) share one pbx_root, each with its own ports and dirs.
    pbx_instance: str = "main"
    rtp_start_port: int = 10000
    rtp_end_port: int = 10999
    # Test mode: agent N (sorted by extension) has a static contact at this port + N.
    agent_phone_base_port: int = 5080
    # Production mode: agent phones register with a password derived from this secret.
    sip_secret: str = "hotline-local-dev-sip"  # noqa: S105
    # --- Login and access (agent_desktop; see docs/security.md) ---
    # A session ends after this long without a request, and in any case after session_max_hours.
    session_idle_minutes: int = 120
    session_max_hours: int = 12
    # The seed (§5.5.4): three wrong passwords in a row lock the account for lockout_minutes.
    lockout_failures: int = 3
    lockout_minutes: int = 15
    # Per-IP throttle: this many failed logins from one address within the window refuse it.
    ip_throttle_failures: int = 10
    ip_throttle_minutes: int = 15
    # An address a user logged in from successfully within this many days is "known": a lock
    # caused by failures from elsewhere does not block it.
    known_ip_days: int = 30
    # Comma-separated origins allowed for WebSocket handshakes and unsafe requests; empty means
    # derived from http_host/http_port (see agent_desktop.auth.api.allowed_origins).
    allowed_origins: str = ""
    # Comma-separated proxy addresses/networks whose X-Forwarded-For is believed.
    trusted_proxies: str = ""
    # The seed's "IP lock" (§3.15): comma-separated addresses/networks; empty means any.
    ip_allowlist: str = ""
    ip_allowlist_agent: str = ""
    ip_allowlist_supervisor: str = ""
    ip_allowlist_technician: str = ""
    ip_allowlist_admin: str = ""
    # Roles that see customers' phone numbers in full; every other role sees them masked and
    # may reveal one at a time, audited.
    phone_unmasked_roles: str = ""
    default_locale: str = "zh_CN"

    # --- Ticketing and SMS (issue 6; see docs/sms.md, docs/ticketing.md) ---
    # "local" keeps every SMS in the outbox, logs it and marks it delivered (development);
    # "twilio" sends through Twilio with the credentials below.
    sms_backend: str = "local"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_messaging_service_sid: str = ""
    # Empty means Twilio's own API; tests point it at a loopback fake.
    twilio_api_base_url: str = ""
    # The public URL Twilio calls (e.g. https://hotline.example.com); empty means rebuilt
    # from X-Forwarded-Proto/X-Forwarded-Host, or from the request itself.
    public_base_url: str = ""
    sms_max_attempts: int = 8
    # Outbound webhooks (issue #21 §3; docs/webhooks.md).
    webhook_poll_seconds: int = 1
    webhook_max_attempts: int = 10
    webhook_timeout_seconds: int = 10
    # Chinese providers (issue 21; docs/sms.md): sms_backend "aliyun" or "tencent".
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: str = ""
    aliyun_sign_name: str = ""
    aliyun_api_base_url: str = ""
    tencent_secret_id: str = ""
    tencent_secret_key: str = ""
    tencent_sms_sdk_app_id: str = ""
    tencent_sign_name: str = ""
    tencent_region: str = "ap-guangzhou"
    tencent_api_base_url: str = ""
    # Message kind -> approved template: "kind=CODE:param,param; kind=CODE" (docs/sms.md).
    sms_templates: str = ""
    # Secret path segment of the providers' callback URLs; callbacks older than this refused.
    sms_callback_token: str = ""
    sms_callback_max_age_seconds: int = 900
    follow_up_max_attempts: int = 3
    follow_up_due_hours: int = 48
    follow_up_retry_hours: int = 4
    # Comma-separated usernames of the follow-up representatives; empty means every active
    # user with role agent (in follow_up_office when that is set).
    follow_up_pool: str = ""
    follow_up_office: str = ""
    dispatch_accept_minutes: int = 60
    sla_check_seconds: int = 60
    # --- The technician's mobile page (issue 21 §2; docs/field.md) ---
    # Signs the link in every work-order SMS. Loopback-only development value: a server
    # whose links leave the machine refuses to start with it (set HOTLINE_FIELD_LINK_SECRET).
    field_link_secret: str = "hotline-local-dev-field-link"  # noqa: S105
    field_link_hours: int = 72
    # Where phones open the link (https://hotline.example.com); empty means public_base_url,
    # else http://http_host:http_port.
    field_link_base_url: str = ""
    # Photos and signatures; empty means <var_dir>/field_files.
    field_files_dir: str = ""
    field_upload_max_bytes: int = 8 * 1024 * 1024
    field_photo_max_side: int = 1600

    # --- Recordings (issue 7; see docs/recordings.md) ---
    # Host path of the PBX's MixMonitor spool, re-scanned at start-up; empty means the
    # composition root derives it from pbx_root and pbx_instance.
    recordings_spool_dir: str = ""
    # Days a recording is kept; 0 keeps it for ever. Per queue: "hotline=180,vip=730".
    recordings_retention_days: int = 0
    recordings_retention_by_queue: str = ""
    # A paused recording resumes on its own after this long (the agent is warned first).
    recordings_pause_auto_resume_seconds: int = 60
    # Recording files examined at once: hashing and the waveform run in threads that
    # release the GIL, so one per core.
    recordings_ingest_workers: int = 2

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def replace(self, **changes: Any) -> Settings:
        merged = {**dataclasses.asdict(self), **changes}
        return _validated(merged, source="override")


def env_name(key: str) -> str:
    return "DATABASE_URL" if key == "database_url" else ENV_PREFIX + key.upper()


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise ValueError("a port is a whole number from 1 to 65535")
    return port


def _area_code(value: str) -> str:
    if not (value.startswith("0") and value.isdigit() and 3 <= len(value) <= 4):
        raise ValueError("an area code is 3-4 digits starting with 0, e.g. 0558")
    return value


def _region(value: str) -> str:
    if not (len(value) == 2 and value.isalpha() and value.isupper()):
        raise ValueError("a region is a two-letter upper-case code, e.g. CN")
    return value


def _database_url(value: str) -> str:
    if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ValueError("use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB")
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError("must be one of " + ", ".join(allowed))
        return value

    return check


def _digits(value: str) -> str:
    if not value.isdigit():
        raise ValueError("must be digits only")
    return value


def _nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _instance_name(value: str) -> str:
    if not (value and value.replace("-", "").isalnum() and value.isascii() and value.islower()):
        raise ValueError("an instance name is lower-case letters, digits and dashes, e.g. main")
    return value


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def _networks(value: str) -> str:
    import ipaddress

    for item in (v.strip() for v in value.split(",")):
        if item:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an address or network, e.g. 10.0.0.0/8,192.168.1.20"
                ) from None
    return value


def _origins(value: str) -> str:
    for item in (v.strip() for v in value.split(",")):
        if item and (
            not item.startswith(("http://", "https://"))
            or item.endswith("/")
            or "/" in item.split("://", 1)[1]
        ):
            raise ValueError(f"{item!r} is not an origin like https://hotline.example.com:8443")
    return value


def _node_name(value: str) -> str:
    if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,59}", value):
        raise ValueError("a node name is 1-60 letters, digits, '.', '_' or '-', e.g. node-1")
    return value


def _roles(value: str) -> str:
    allowed = {"agent", "supervisor", "technician", "admin"}
    for item in (v.strip() for v in value.split(",")):
        if item and item not in allowed:
            raise ValueError(f"{item!r} is not a role; roles are " + ", ".join(sorted(allowed)))
    return value


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "database_url": _database_url,
    "home_region": _region,
    "home_area_code": _area_code,
    "pbx_mode": _choice("test", "production"),
    "log_level": _choice("DEBUG", "INFO", "WARNING", "ERROR"),
    "hotline_number": _digits,
    "ami_secret": _nonempty,
    "ami_username": _nonempty,
    "ami_reconnect_max_seconds": _positive,
    "callback_attempts": _positive,
    "callback_retry_seconds": _positive,
    "sip_secret": _nonempty,
    "pbx_instance": _instance_name,
    "node_name": _node_name,
    "session_idle_minutes": _positive,
    "session_max_hours": _positive,
    "lockout_failures": _positive,
    "lockout_minutes": _positive,
    "ip_throttle_failures": _positive,
    "ip_throttle_minutes": _positive,
    "known_ip_days": _positive,
    "allowed_origins": _origins,
    "trusted_proxies": _networks,
    "ip_allowlist": _networks,
    "ip_allowlist_agent": _networks,
    "ip_allowlist_supervisor": _networks,
    "ip_allowlist_technician": _networks,
    "ip_allowlist_admin": _networks,
    "phone_unmasked_roles": _roles,
    "default_locale": _choice("zh_CN", "en"),
}


def _at_least_one(value: int) -> int:
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def _base_url(value: str) -> str:
    if value and (not value.startswith(("http://", "https://")) or value.endswith("/")):
        raise ValueError("a base URL looks like https://hotline.example.com (no trailing /)")
    return value


def _template_map(value: str) -> str:
    for item in (v.strip() for v in value.split(";")):
        kind, _, rest = item.partition("=")
        if item and not (kind.strip() and rest.partition(":")[0].strip()):
            raise ValueError(f"{item!r} is not kind=TEMPLATE_CODE:param,param")
    return value


_VALIDATORS.update(
    {
        "sms_backend": _choice("local", "twilio", "aliyun", "tencent"),
        "sms_max_attempts": _at_least_one,
        "webhook_max_attempts": _at_least_one,
        "webhook_poll_seconds": _at_least_one,
        "webhook_timeout_seconds": _at_least_one,
        "sms_templates": _template_map,
        "sms_callback_max_age_seconds": _at_least_one,
        "follow_up_max_attempts": _at_least_one,
        "follow_up_due_hours": _at_least_one,
        "follow_up_retry_hours": _at_least_one,
        "dispatch_accept_minutes": _at_least_one,
        "sla_check_seconds": _at_least_one,
        "field_link_secret": _nonempty,
        "field_link_hours": _at_least_one,
        "field_link_base_url": _base_url,
        "field_upload_max_bytes": _at_least_one,
        "field_photo_max_side": _at_least_one,
    }
)


def _queue_days(value: str) -> str:
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        queue, _, days = item.partition("=")
        if not queue.strip() or not days.strip().isdigit():
            raise ValueError(f"{item!r} is not queue=days, e.g. hotline=180,vip=730")
    return value


_VALIDATORS.update(
    {
        "recordings_retention_by_queue": _queue_days,
        "recordings_pause_auto_resume_seconds": _at_least_one,
        "recordings_ingest_workers": _at_least_one,
    }
)


def _convert(key: str, raw: Any, kind: type, source: str) -> Any:
    try:
        if kind is int:
            if isinstance(raw, bool):
                raise ValueError("must be a whole number")
            if not str(raw).strip().isdigit():
                raise ValueError("must be a whole number")
            value: Any = _port(str(raw)) if key.endswith("_port") else int(raw)
        else:
            if not isinstance(raw, str):
                raise ValueError("must be a string")
            value = raw
        check = _VALIDATORS.get(key)
        return check(value) if check else value
    except ValueError as exc:
        raise SettingsError(f"setting {key} (from {source}): {exc}; got {raw!r}") from None


def _validated(values: Mapping[str, Any], source: str) -> Settings:
    defaults = Settings()
    clean = {k: _convert(k, v, type(getattr(defaults, k)), source) for k, v in values.items()}
    return Settings(**clean)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path}: not valid TOML: {exc}") from None
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(
            f"settings file {path}: unknown key(s) {', '.join(unknown)}; "
            f"known keys are: {', '.join(sorted(known))}"
        )
    return data


def load_settings(
    config_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings once at start-up; raise SettingsError naming the first bad key."""
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = dataclasses.asdict(Settings())
    sources = dict.fromkeys(merged, "defaults")
    path = Path(config_file or env.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)
    if (config_file is not None or CONFIG_ENV in env) and not path.is_file():
        raise SettingsError(f"settings file {path} does not exist")
    if path.is_file():
        for key, value in _read_toml(path).items():
            merged[key], sources[key] = value, str(path)
    for key in merged:
        name = env_name(key)
        if name in env:
            merged[key], sources[key] = env[name], f"environment {name}"
    defaults = Settings()
    clean = {k: _convert(k, v, type(getattr(defaults, k)), sources[k]) for k, v in merged.items()}
    return Settings(**clean)

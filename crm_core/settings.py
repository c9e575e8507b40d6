"""Layered, validated, immutable settings: defaults, then a TOML file, then the environment.

Every key has one name. In the TOML file it is written in lower case (``database_url``); in
the environment it is upper case with the ``HOTLINE_`` prefix (``HOTLINE_AMI_PORT``), except
``DATABASE_URL`` which keeps its conventional bare name. Secrets are never defaulted to
anything but a loopback-only development value, and come from the file or the environment.
"""

from __future__ import annotations

import dataclasses
import os
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
    log_level: str = "INFO"
    # PBX instance: several (dev, tests) share one pbx_root, each with its own ports and dirs.
    pbx_instance: str = "main"
    rtp_start_port: int = 10000
    rtp_end_port: int = 10999
    # Test mode: agent N (sorted by extension) has a static contact at this port + N.
    agent_phone_base_port: int = 5080
    # Production mode: agent phones register with a password derived from this secret.
    sip_secret: str = "hotline-local-dev-sip"  # noqa: S105

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


_VALIDATORS: dict[str, Callable[[str], Any]] = {
    "database_url": _database_url,
    "home_region": _region,
    "home_area_code": _area_code,
    "pbx_mode": _choice("test", "production"),
    "log_level": _choice("DEBUG", "INFO", "WARNING", "ERROR"),
    "hotline_number": _digits,
    "ami_secret": _nonempty,
    "ami_username": _nonempty,
    "sip_secret": _nonempty,
    "pbx_instance": _instance_name,
}


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

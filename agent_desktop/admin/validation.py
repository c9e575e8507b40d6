"""Checks shared by the admin services: names, numbers, networks, passwords."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from crm_core.errors import ValidationError
from crm_core.users import check_password_policy as check_password

__all__ = ["check_password"]

USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")


def text(values: Mapping[str, Any], key: str, limit: int, *, required: bool = False) -> str | None:
    value = values.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(f"{key} is required", field=key)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{key} must be text", field=key)
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(f"{key} is longer than {limit} characters", field=key)
    if any(ord(c) < 32 for c in value):
        raise ValidationError(f"{key} contains control characters", field=key)
    return value


def integer(values: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = values.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{key} must be a whole number", field=key)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{key} must be a whole number", field=key) from None
    if not low <= number <= high:
        raise ValidationError(f"{key} must be between {low} and {high}", field=key)
    return number


def flag(values: Mapping[str, Any], key: str) -> bool | None:
    value = values.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"yes", "true", "1", "on", "no", "false", "0"}:
        return value.lower() in {"yes", "true", "1", "on"}
    raise ValidationError(f"{key} must be yes or no", field=key)


def networks(value: str | None) -> str | None:
    """A comma-separated allowlist, normalised; every entry must parse."""
    if value is None or not value.strip():
        return None
    parsed = []
    for item in value.split(","):
        if not item.strip():
            continue
        try:
            parsed.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise ValidationError(
                f"{item.strip()!r} is not an IP address or network (e.g. 10.1.0.0/16)",
                field="ip_allowlist",
            ) from None
    return ",".join(parsed) or None

"""Field-level validation and JSON snapshots of model rows, shared by every CRM service."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Integer, String
from sqlalchemy.orm import DeclarativeBase

from crm_core.errors import FieldTooLong, RequiredFieldMissing, ValidationError

# Columns the system owns; a caller can never set them directly.
SYSTEM_FIELDS = frozenset(
    {"id", "created_at", "updated_at", "merged_into_id", "deleted", "name_pinyin", "name_initials"}
)


def editable_fields(model: type[DeclarativeBase], extra_excluded: Iterable[str] = ()) -> list[str]:
    excluded = SYSTEM_FIELDS | set(extra_excluded)
    return [c.key for c in model.__table__.columns if c.key not in excluded]


def _coerce(model_name: str, key: str, column_type: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column_type, Boolean):
        if isinstance(value, bool):
            return value
        raise ValidationError(f"{model_name}.{key} must be true or false", field=key)
    if isinstance(column_type, Integer):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError(f"{model_name}.{key} must be a whole number", field=key)
        try:
            return int(value)
        except ValueError:
            raise ValidationError(f"{model_name}.{key} must be a whole number", field=key) from None
    if isinstance(column_type, Date):
        return _as_date(model_name, key, value)
    if isinstance(column_type, String):
        if not isinstance(value, str):
            raise ValidationError(f"{model_name}.{key} must be text", field=key)
        value = value.strip()
        limit = column_type.length
        if limit is not None and len(value) > limit:
            raise FieldTooLong(
                f"{model_name}.{key} is {len(value)} characters; at most {limit} allowed",
                field=key,
                limit=limit,
            )
        return value or None
    return value


def _as_date(model_name: str, key: str, value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError(f"{model_name}.{key} must be a date like 2024-03-15", field=key)


def validate_fields(
    model: type[DeclarativeBase],
    values: Mapping[str, Any],
    *,
    allowed: Iterable[str],
    required: Iterable[str] = (),
) -> dict[str, Any]:
    """Check names, types and lengths; return the cleaned values. Raises on the first problem."""
    name = model.__name__.lower()
    allowed_set = set(allowed)
    unknown = sorted(set(values) - allowed_set)
    if unknown:
        raise ValidationError(
            f"unknown {name} field(s): {', '.join(unknown)}; "
            f"known fields: {', '.join(sorted(allowed_set))}",
            fields=unknown,
        )
    columns = model.__table__.columns
    clean = {k: _coerce(name, k, columns[k].type, v) for k, v in values.items()}
    for key in required:
        if key in values and clean.get(key) in (None, ""):
            raise RequiredFieldMissing(f"{name}.{key} is required", field=key)
    return clean


def require(model: type[DeclarativeBase], values: Mapping[str, Any], keys: Iterable[str]) -> None:
    for key in keys:
        if values.get(key) in (None, ""):
            raise RequiredFieldMissing(f"{model.__name__.lower()}.{key} is required", field=key)


def to_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def snapshot(row: DeclarativeBase) -> dict[str, Any]:
    """Every column of a row as JSON-safe values, for the change history."""
    return {c.key: to_json(getattr(row, c.key)) for c in row.__table__.columns}


def from_snapshot(model: type[DeclarativeBase], data: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a snapshot back into column values (dates parsed), skipping system timestamps."""
    columns = model.__table__.columns
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in columns or key in ("id", "created_at", "updated_at"):
            continue
        if value is not None and isinstance(columns[key].type, Date):
            value = date.fromisoformat(value)
        out[key] = value
    return out

"""Reading what the mobile page sends, within field_upload_max_bytes, and turning pictures
into stored files (Pillow and the disk run in a thread, never on the event loop)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from crm_core.errors import ValidationError
from crm_core.settings import Settings
from ticketing.errors import InvalidImage, UploadTooLarge
from ticketing.field_files import FileStore, prepare
from ticketing.mobile import StoredFile

CHUNK = 64 * 1024
DATA_URL_PREFIXES = ("data:image/png;base64,", "data:image/jpeg;base64,")


def store_for(settings: Settings) -> FileStore:
    root = settings.field_files_dir or str(Path(settings.var_dir) / "field_files")
    return FileStore(Path(root))


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (before reading it when the length is
    declared). The app's client_max_size is for forms; uploads have their own cap."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise UploadTooLarge(f"at most {limit} bytes", limit=limit)
    body = bytearray()
    while chunk := await request.content.read(CHUNK):
        body += chunk
        if len(body) > limit:
            raise UploadTooLarge(f"at most {limit} bytes", limit=limit)
    return bytes(body)


async def read_json(request: web.Request, limit: int) -> dict[str, Any]:
    # JSON only: a cross-site form cannot send application/json without a CORS preflight.
    if request.content_type != "application/json":
        raise ValidationError("send the action as application/json")
    try:
        data = json.loads(await read_limited(request, limit))
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationError("send a JSON object")
    return data


def decode_data_url(value: object, field: str) -> bytes:
    """A canvas's toDataURL() (PNG or JPEG) as bytes."""
    if not isinstance(value, str) or not value.startswith(DATA_URL_PREFIXES):
        raise InvalidImage(f"{field}: send a PNG or JPEG data URL", field=field)
    try:
        return base64.b64decode(value.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage(f"{field}: the data URL is damaged", field=field) from None


async def store_image(
    settings: Settings, data: bytes, kind: str, now: datetime
) -> tuple[StoredFile, bool]:
    """Check, resize and store; (the file, whether this call created it)."""
    prepared = await asyncio.to_thread(prepare, data, kind, settings.field_photo_max_side)
    relative, created = await asyncio.to_thread(store_for(settings).put, prepared, kind, now)
    stored = StoredFile(
        relative,
        prepared.sha256,
        len(prepared.data),
        prepared.width,
        prepared.height,
        prepared.content_type,
    )
    return stored, created


async def forget(settings: Settings, stored: StoredFile) -> None:
    """Remove a file this request created when its action was refused."""
    await asyncio.to_thread(store_for(settings).remove, stored.path)

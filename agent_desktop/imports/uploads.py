"""Uploaded import files: streamed to a private temp dir with a size limit, never trusted
by name, deleted when the import is done. And where the results of a run are kept."""

from __future__ import annotations

import json
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.web_request import FileField

from crm_core.errors import HotlineError, ValidationError

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
CHUNK = 1 << 16
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SUFFIXES = (".csv", ".xlsx", ".txt")
CSRF_HEADER = "X-CSRF-Token"  # what auth/csrf.py accepts from scripts (features don't import auth)


class UploadTooLarge(HotlineError):
    status = 413
    error_id = "upload_too_large"


class ImportBusy(HotlineError):
    status = 409
    error_id = "import_running"


@dataclass
class Upload:
    path: Path
    filename: str
    fields: dict[str, str]


def _too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"the file is larger than {limit // (1024 * 1024)} MB; split it into smaller files",
        limit_bytes=limit,
    )


def _safe_name(name: str | None) -> str:
    base = Path(name or "upload").name.strip() or "upload"
    return base[:120]


def _suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValidationError(
            f"{filename}: choose a .csv or .xlsx file", field="file", filename=filename
        )
    return suffix


async def receive(request: web.Request, workdir: Path, limit: int) -> Upload:
    """The upload's file (in `workdir`) and its other form fields.

    Scripts (the page's own, the API's users) send the CSRF token as a header, so the body is
    streamed here and the size limit holds at any size. A plain form sends it in the body,
    which the CSRF check has already read (within the app's request size limit)."""
    if request.headers.get(CSRF_HEADER):
        return await _stream(request, workdir, limit)
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    part = form.get("file")
    if not isinstance(part, FileField):
        raise ValidationError("choose a file to import", field="file")
    filename = _safe_name(part.filename)
    path = workdir / ("upload" + _suffix(filename))
    data = part.file.read()
    if len(data) > limit:
        raise _too_large(limit)
    path.write_bytes(data)
    return Upload(path, filename, fields)


async def _stream(request: web.Request, workdir: Path, limit: int) -> Upload:
    if not request.content_type.startswith("multipart/"):
        raise ValidationError("send the file as multipart/form-data (field 'file')")
    if request.content_length is not None and request.content_length > limit + CHUNK:
        raise _too_large(limit)
    reader = await request.multipart()
    fields: dict[str, str] = {}
    upload: Upload | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file" and part.filename is not None:
            filename = _safe_name(part.filename)
            path = workdir / ("upload" + _suffix(filename))
            size = 0
            with path.open("wb") as handle:
                while chunk := await part.read_chunk(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    handle.write(chunk)
            upload = Upload(path, filename, fields)
        elif part.name:
            fields[part.name] = (await part.text())[:200]
    if upload is None:
        raise ValidationError("choose a file to import", field="file")
    return upload


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="hotline-import-")


class Results:
    """Each run's summary (JSON) and error report (CSV), under var/imports/web/."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def new_token(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        return secrets.token_urlsafe(18)

    def report_path(self, token: str) -> Path:
        return self.root / f"{self._checked(token)}.csv"

    def save(self, token: str, summary: dict[str, Any]) -> None:
        path = self.root / f"{self._checked(token)}.json"
        path.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")

    def load(self, token: str) -> dict[str, Any]:
        path = self.root / f"{self._checked(token)}.json"
        if not path.is_file():
            raise web.HTTPNotFound(reason="no such import result")
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    @staticmethod
    def _checked(token: str) -> str:
        if not TOKEN.match(token):
            raise web.HTTPNotFound(reason="no such import result")
        return token

"""Photos and signatures from the field: checked, resized and re-encoded server-side (never
stored as sent: that drops EXIF, GPS tags included, and anything hidden in the file), then
written under field_files_dir by content, with their sha256.

Blocking (Pillow, disk): callers run `prepare` and `FileStore.put` in a thread.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ticketing.errors import InvalidImage

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# A phone photo is about 12-50 megapixels; more is a decompression bomb, not a photo.
MAX_PIXELS = 60_000_000
SIGNATURE_MAX_SIDE = 1200


@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    sha256: str
    width: int
    height: int
    content_type: str
    suffix: str


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            probe.verify()
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise InvalidImage(f"send a JPEG, PNG or WebP image, not {image.format}")
            if image.width * image.height > MAX_PIXELS:
                raise InvalidImage("the image has too many pixels")
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage("this is not an image we can read") from None
    except (OSError, SyntaxError, ValueError):
        raise InvalidImage("the image is damaged or cut short") from None
    return image


def prepare(data: bytes, kind: str, max_side: int) -> PreparedImage:
    """A photo becomes a JPEG of at most max_side pixels; a signature a PNG on white."""
    image = ImageOps.exif_transpose(_open(data))
    if kind == "signature":
        image.thumbnail((SIGNATURE_MAX_SIDE, SIGNATURE_MAX_SIDE))
        flat = Image.new("RGB", image.size, "white")
        rgba = image.convert("RGBA")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        out, fmt, content_type, suffix = flat, "PNG", "image/png", ".png"
    else:
        image.thumbnail((max_side, max_side))
        out, fmt, content_type, suffix = image.convert("RGB"), "JPEG", "image/jpeg", ".jpg"
    buffer = io.BytesIO()
    out.save(buffer, fmt, **({"quality": 85, "optimize": True} if fmt == "JPEG" else {}))
    encoded = buffer.getvalue()
    return PreparedImage(
        encoded,
        hashlib.sha256(encoded).hexdigest(),
        out.width,
        out.height,
        content_type,
        suffix,
    )


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, relative: str) -> Path:
        """Absolute path of a stored file; `..` cannot leave the store."""
        root = self.root.resolve()
        normal = Path(os.path.normpath(root / relative))
        if not normal.is_relative_to(root):
            raise ValueError(f"{relative!r} is outside the field files directory")
        return normal

    def put(self, image: PreparedImage, kind: str, now: datetime) -> tuple[str, bool]:
        """Store by content: (relative path, True if this call created the file). The same
        bytes sent again land on the same file, so a resent upload leaves no orphan."""
        relative = f"{kind}/{now:%Y/%m}/{image.sha256}{image.suffix}"
        target = self.path(relative)
        if target.exists():
            return relative, False
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with temporary.open("wb") as handle:
                handle.write(image.data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return relative, True

    def remove(self, relative: str) -> None:
        self.path(relative).unlink(missing_ok=True)

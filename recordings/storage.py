"""Managed storage: a dated layout under settings.recordings_dir, moves that never lose a
file, a quarantine for broken ones, and the Opus streaming copy.

A move is a rename on the same filesystem; across filesystems it is copy, fsync, rename into
place, and only then the source is removed. A full disk leaves the source where it was and
removes only our own half-written temporary file.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from datetime import datetime
from pathlib import Path, PurePosixPath

from recordings.errors import DiskFull

QUARANTINE = "quarantine"


def dated_name(ended_at: datetime, source_name: str) -> str:
    """recordings_dir-relative path: YYYY/MM/DD/<file name as Asterisk wrote it>."""
    return f"{ended_at:%Y/%m/%d}/{source_name}"


def _is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._resolved_root: Path | None = None

    @property
    def resolved_root(self) -> Path:
        # Resolved once: resolve() is an lstat per path component in Python, and the
        # ingest asks for paths several times per file.
        if self._resolved_root is None:
            self._resolved_root = self.root.resolve()
        return self._resolved_root

    def path(self, relative: str) -> Path:
        """The absolute path of a stored file. `..` cannot leave the recordings directory;
        the names come from our own rows, and a symlink inside it would be the admin's."""
        normal = Path(os.path.normpath(self.resolved_root / relative))
        if not normal.is_relative_to(self.resolved_root):
            raise ValueError(f"{relative!r} is outside the recordings directory")
        return normal

    def quarantine_name(self, source_name: str) -> str:
        return str(PurePosixPath(QUARANTINE) / source_name)

    def move_in(self, source: Path, relative: str) -> Path:
        """Blocking. Idempotent: a target already in place (a crash after the move) is kept.
        The usual case is one rename: the checks and the directory are made only when it
        fails, since every extra system call gives the GIL up to a busy ingest thread."""
        target = self.path(relative)
        try:
            try:
                os.replace(source, target)
            except FileNotFoundError:
                if not source.exists():
                    if target.exists():
                        return target
                    raise
                target.parent.mkdir(parents=True, exist_ok=True)  # a new day's directory
                os.replace(source, target)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return self._move_across(source, target)
            if _is_disk_full(exc):
                raise DiskFull(f"no room in {self.root} for {source.name}: {exc}") from exc
            raise
        return target

    def _move_across(self, source: Path, target: Path) -> Path:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._copy_across(source, target)
            source.unlink()
        except OSError as exc:
            if _is_disk_full(exc):
                raise DiskFull(f"no room in {self.root} for {source.name}: {exc}") from exc
            raise
        return target

    def _copy_across(self, source: Path, target: Path) -> None:
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with source.open("rb") as reader, temporary.open("wb") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def write_beside(self, relative: str, suffix: str) -> tuple[Path, Path]:
        """(temporary, final) paths for a derived file such as the Opus copy."""
        final = self.path(relative).with_suffix(suffix)
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(f".{final.name}.{uuid.uuid4().hex}.part"), final

    def relative(self, path: Path) -> str:
        return str(PurePosixPath(path.resolve().relative_to(self.resolved_root).as_posix()))

    def delete(self, relative: str | None) -> bool:
        if not relative:
            return False
        target = self.path(relative)
        existed = target.exists()
        target.unlink(missing_ok=True)
        return existed

"""Copying the recording files into a backup and back, each one checked against its sha256.

The database is the source of truth: every `complete` recording row names its WAV (with the
sha256 taken at ingest) and its Opus streaming copy. A copy is read once, hashed while it is
written to a temporary name in the target directory, and renamed into place only when the
hash matches the row: a file at its final name is therefore always whole and verified, and a
crash leaves at most a dot-named `.part` file, which the next run deletes. The Opus copy has
no checksum in the database; the backup records the one it measured while copying, and the
restore checks against that.

Incremental: a file is skipped when the backup's manifest already lists it with the same
sha256 as the row and the file there has that size. A file that is present but not in the
manifest (the run that copied it crashed before writing the manifest) is hashed before it is
trusted. `verify` re-hashes everything instead.

Blocking: the composition root runs these in a thread. The manifest itself belongs to the
caller (it also describes the database); here it is only the `known` mapping of entries.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from crm_core.db import Database
from recordings.models import Recording, RecordingState
from recordings.storage import Storage

CHUNK = 1 << 20
# Copies run on a few threads: each one's open, fsync and rename wait on the disk, and
# hashing releases the GIL, so the waits overlap (see docs/backup.md for the figures).
COPY_THREADS = 4
PART_SUFFIX = ".part"

Entry = dict[str, Any]  # one manifest entry: sha256, size, recording_id, kind
Tick = Callable[[int], None]  # files done since the last call


@dataclass(frozen=True)
class StoredFile:
    """One file a complete recording row points at."""

    relative: str  # to recordings_dir, with forward slashes, as in the row
    recording_id: int
    kind: str  # "wav" | "opus"
    sha256: str | None  # the row's (WAV); None for the Opus copy
    size: int | None


@dataclass(frozen=True)
class Problem:
    relative: str
    recording_id: int
    reason: str

    def line(self) -> str:
        return f"recording #{self.recording_id} {self.relative}: {self.reason}"


@dataclass
class CopyReport:
    total: int = 0
    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0
    bytes_total: int = 0
    removed: int = 0
    copied_ids: set[int] = field(default_factory=set)  # recordings with a file copied
    unreferenced: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    entries: dict[str, Entry] = field(default_factory=dict)  # what is good in the target


async def stored_files(db: Database) -> list[StoredFile]:
    """Every file of every complete recording, in id order."""
    r = Recording
    query = (
        select(r.id, r.wav_path, r.sha256, r.size_bytes, r.opus_path)
        .where(r.state == RecordingState.COMPLETE.value)
        .order_by(r.id)
    )
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    files = []
    for rid, wav, sha, size, opus in rows:
        if wav:
            files.append(StoredFile(wav, rid, "wav", sha, size))
        if opus:
            files.append(StoredFile(opus, rid, "opus", None, None))
    return files


class Mismatch(Exception):
    def __init__(self, found: str, size: int) -> None:
        super().__init__(found)
        self.found, self.size = found, size


def _hash(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def copy_verified(source: Path, target: Path, expected: str | None) -> tuple[str, int]:
    """Copy through a temporary name, fsync, and rename only if the content hashes to
    `expected` (when given). Returns (sha256, size); raises Mismatch, leaving no file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}{PART_SUFFIX}")
    digest = hashlib.sha256()
    size = 0
    try:
        with source.open("rb") as reader, temporary.open("wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
            found = digest.hexdigest()
            if expected is not None and found != expected:
                raise Mismatch(found, size)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return found, size


def _mismatch_reason(file: StoredFile, where: str, found: str, expected: str) -> str:
    # A WAV's checksum is the row's, taken at ingest; an Opus copy's is the backup's own.
    if file.sha256 is not None:
        return (
            f"{where} does not match the sha256 stored at ingest "
            f"(file {found[:12]}…, database {expected[:12]}…)"
        )
    return (
        f"{where} does not match the sha256 in the backup's manifest "
        f"(file {found[:12]}…, manifest {expected[:12]}…)"
    )


@dataclass(frozen=True)
class _Result:
    file: StoredFile
    outcome: str  # copied | skipped | failed
    entry: Entry | None = None
    problem: Problem | None = None
    copied_bytes: int = 0


def _entry(file: StoredFile, sha: str, size: int) -> Entry:
    return {"sha256": sha, "size": size, "recording_id": file.recording_id, "kind": file.kind}


class _Run:
    """One direction of copying, source root → target root. `known` is the backup's
    manifest: what the target holds when backing up, what the source holds when restoring.
    Only a backup trusts it for the target (`trust_known`); a restore hashes what it finds."""

    def __init__(
        self,
        source: Path,
        target: Path,
        known: Mapping[str, Entry],
        *,
        source_name: str,
        trust_known: bool,
        verify_source: bool,
    ) -> None:
        self.source, self.target = Storage(source), Storage(target)
        self.known = known
        self.source_name = source_name
        self.trust_known = trust_known
        self.verify_source = verify_source

    def one(self, file: StoredFile) -> _Result:
        expected = file.sha256 or self._known_sha(file)
        try:
            source = self.source.path(file.relative)
            target = self.target.path(file.relative)
        except ValueError as exc:
            return _Result(
                file, "failed", problem=Problem(file.relative, file.recording_id, str(exc))
            )
        present = self._present(file, target, expected)
        if present is not None:
            problem = self._check_source(file, source, expected) if self.verify_source else None
            return _Result(file, "skipped", present, problem)
        try:
            sha, size = copy_verified(source, target, expected)
        except FileNotFoundError:
            reason = f"missing from {self.source_name}"
            return _Result(
                file, "failed", problem=Problem(file.relative, file.recording_id, reason)
            )
        except Mismatch as bad:
            assert expected is not None
            reason = _mismatch_reason(file, f"the file in {self.source_name}", bad.found, expected)
            problem = Problem(file.relative, file.recording_id, reason + "; not copied")
            return _Result(file, "failed", problem=problem)
        return _Result(file, "copied", _entry(file, sha, size), copied_bytes=size)

    def _known_sha(self, file: StoredFile) -> str | None:
        known = self.known.get(file.relative)
        return str(known["sha256"]) if known and known.get("sha256") else None

    def _present(self, file: StoredFile, target: Path, expected: str | None) -> Entry | None:
        """The target's entry when the file there is already good, else None."""
        try:
            size = target.stat().st_size
        except FileNotFoundError:
            return None
        if file.size is not None and size != file.size:
            return None
        known = self.known.get(file.relative)
        if (
            self.trust_known
            and known is not None
            and known.get("size") == size
            and (expected is None or known.get("sha256") == expected)
        ):
            return _entry(file, str(known["sha256"]), size)
        if expected is None:
            return None  # nothing to check it against: copy it again
        sha, size = _hash(target)
        return _entry(file, sha, size) if sha == expected else None

    def _check_source(self, file: StoredFile, source: Path, expected: str | None) -> Problem | None:
        try:
            sha, _size = _hash(source)
        except FileNotFoundError:
            reason = f"missing from {self.source_name} (the copy in the backup is good)"
            return Problem(file.relative, file.recording_id, reason)
        if expected is not None and sha != expected:
            reason = _mismatch_reason(file, f"the file in {self.source_name}", sha, expected)
            return Problem(file.relative, file.recording_id, reason + " (the backup's is good)")
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_all(run: _Run, files: list[StoredFile], tick: Tick | None) -> CopyReport:
    report = CopyReport(total=len(files))
    directories: set[Path] = set()
    with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="backup-copy") as pool:
        for result in pool.map(run.one, files):
            if result.outcome == "copied":
                report.copied += 1
                report.bytes_copied += result.copied_bytes
                report.copied_ids.add(result.file.recording_id)
                directories.add(run.target.path(result.file.relative).parent)
            elif result.outcome == "skipped":
                report.skipped += 1
            if result.entry is not None:
                report.entries[result.file.relative] = result.entry
                report.bytes_total += int(result.entry["size"])
            if result.problem is not None:
                report.problems.append(result.problem)
            if tick:
                tick(1)
    # The renames are durable only once their directories are: before the caller writes a
    # manifest that vouches for these files.
    for directory in directories:
        _fsync_dir(directory)
    return report


def _walk_files(root: Path) -> Iterable[tuple[Path, str]]:
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            yield path, path.relative_to(root).as_posix()


def _is_leftover(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(PART_SUFFIX)


def back_up(
    files: list[StoredFile],
    live_root: Path,
    backup_root: Path,
    known: Mapping[str, Entry],
    *,
    verify: bool = False,
    prune: bool = False,
    tick: Tick | None = None,
) -> CopyReport:
    """Copy what the backup lacks. Files in the backup that no complete row names any more
    (purged since) are listed, and deleted only with `prune`."""
    backup_root.mkdir(parents=True, exist_ok=True)
    for path, _relative in list(_walk_files(backup_root)):
        if _is_leftover(path):
            path.unlink(missing_ok=True)  # a crashed copy's: never a whole file
    run = _Run(
        live_root,
        backup_root,
        known,
        source_name="recordings_dir",
        trust_known=not verify,
        verify_source=verify,
    )
    report = _copy_all(run, files, tick)
    wanted = {file.relative for file in files}
    for path, relative in list(_walk_files(backup_root)):
        if relative in wanted:
            continue
        if prune:
            path.unlink(missing_ok=True)
            report.removed += 1
        else:
            report.unreferenced.append(relative)
            if relative in known:  # still there, still described
                report.entries[relative] = dict(known[relative])
    return report


def restore(
    files: list[StoredFile],
    backup_root: Path,
    live_root: Path,
    known: Mapping[str, Entry],
    *,
    tick: Tick | None = None,
) -> CopyReport:
    """Copy every file the restored rows name from the backup into `live_root`; a file
    already there is hashed and kept when it is right. WAVs are checked against the
    restored rows, Opus copies against the backup's manifest."""
    live_root.mkdir(parents=True, exist_ok=True)
    run = _Run(
        backup_root,
        live_root,
        known,
        source_name="the backup",
        trust_known=False,
        verify_source=False,
    )
    report = _copy_all(run, files, tick)
    wanted = {file.relative for file in files}
    report.unreferenced = sorted(set(known) - wanted)
    return report

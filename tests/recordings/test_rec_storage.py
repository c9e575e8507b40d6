"""Managed storage's move: one rename in the usual case, and every other case (a new day's
directory, a crash after the move, another filesystem, a full disk) still loses nothing."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from recordings.errors import DiskFull
from recordings.storage import Storage

SHM = Path("/dev/shm")


def spool_file(folder: Path, name: str = "call.wav", body: bytes = b"RIFF-audio") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(body)
    return path


def test_the_first_file_of_a_day_gets_its_directory(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "store")
    source = spool_file(tmp_path / "spool")
    target = storage.move_in(source, "2026/12/01/call.wav")
    assert target == (tmp_path / "store" / "2026/12/01/call.wav").resolve()
    assert target.read_bytes() == b"RIFF-audio"
    assert not source.exists()


def test_a_second_move_after_a_crash_keeps_the_file_in_place(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "store")
    source = spool_file(tmp_path / "spool")
    first = storage.move_in(source, "2026/12/01/call.wav")
    again = storage.move_in(source, "2026/12/01/call.wav")  # source is gone by now
    assert again == first
    assert first.read_bytes() == b"RIFF-audio"


def test_a_file_that_is_nowhere_is_an_error_not_a_success(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "store")
    with pytest.raises(FileNotFoundError):
        storage.move_in(tmp_path / "spool" / "never.wav", "2026/12/01/never.wav")
    assert not (tmp_path / "store" / "2026/12/01/never.wav").exists()


@pytest.mark.skipif(
    not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(Path.cwd()).st_dev,
    reason="needs /dev/shm on a filesystem of its own",
)
def test_a_spool_on_another_filesystem_is_copied_then_removed(tmp_path: Path) -> None:
    spool = SHM / f"hotline-test-{os.getpid()}"
    try:
        source = spool_file(spool, body=b"x" * 300_000)
        storage = Storage(tmp_path / "store")
        target = storage.move_in(source, "2026/12/01/call.wav")
        assert target.read_bytes() == b"x" * 300_000
        assert not source.exists()
        assert [p.name for p in target.parent.iterdir()] == ["call.wav"]  # no .part left
    finally:
        for leftover in spool.glob("*"):
            leftover.unlink()
        spool.rmdir()


def test_a_full_disk_keeps_the_source_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage(tmp_path / "store")
    source = spool_file(tmp_path / "spool")

    def no_room(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_room)
    with pytest.raises(DiskFull, match="no room"):
        storage.move_in(source, "2026/12/01/call.wav")
    assert source.read_bytes() == b"RIFF-audio"

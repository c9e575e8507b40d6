"""Synthetic MixMonitor-like WAVs for the recordings tests (8 kHz, 16-bit mono)."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 8000


def tone(seconds: float, amplitude: int = 8000, hz: float = 440.0) -> bytes:
    count = int(seconds * RATE)
    return b"".join(
        struct.pack("<h", int(amplitude * math.sin(2 * math.pi * hz * i / RATE)))
        for i in range(count)
    )


def write_wav(path: Path, seconds: float = 3.0, amplitude: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(tone(seconds, amplitude))
    return path


def truncate(path: Path, keep_bytes: int) -> Path:
    """A file cut short: the header still promises the full data size."""
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes])
    return path


def open_header(path: Path) -> Path:
    """What MixMonitor leaves while recording (or when it died): sizes still zero."""
    data = bytearray(path.read_bytes())
    data[4:8] = b"\0\0\0\0"
    data[40:44] = b"\0\0\0\0"
    path.write_bytes(bytes(data))
    return path

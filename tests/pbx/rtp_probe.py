"""A tiny RTP endpoint for real-PBX tests: sends a pure tone as G.711 A-law and keeps what it
receives, so a test can tell by frequency whose voice reached whom.

SIPp still does the signalling; its SDP names this probe's port (see test_supervise_live.py).
The PBX has rtp_symmetric and no strict RTP in test mode, so the probe starts talking to the
address the first packet came from and follows it when a new leg of the PBX takes over.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np

RATE = 8000
FRAME = 160  # 20 ms
PCMA = 8


def _alaw_decode_table() -> np.ndarray:
    values = []
    for code in range(256):
        a = code ^ 0x55
        magnitude = (a & 0x0F) << 4
        segment = (a & 0x70) >> 4
        if segment == 0:
            magnitude += 8
        else:
            magnitude = (magnitude + 0x108) << (segment - 1)
        values.append(magnitude if a & 0x80 else -magnitude)
    return np.array(values, dtype=np.int32)


DECODE = _alaw_decode_table()
_ORDER = np.argsort(DECODE)
_SORTED = DECODE[_ORDER]


def alaw_encode(samples: np.ndarray) -> bytes:
    """Nearest A-law code for each 16-bit sample (exact enough for a test tone)."""
    index = np.clip(np.searchsorted(_SORTED, samples), 1, len(_SORTED) - 1)
    left, right = _SORTED[index - 1], _SORTED[index]
    index = np.where(samples - left < right - samples, index - 1, index)
    return bytes(_ORDER[index].astype(np.uint8))


def tone_level(samples: np.ndarray, hz: float) -> float:
    """The amplitude (16-bit scale) of the `hz` component, from a Hann-windowed spectrum."""
    if len(samples) < FRAME * 10:
        return 0.0
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples * window))
    k = round(hz * len(samples) / RATE)
    return float(2 * spectrum[max(0, k - 2) : k + 3].max() / window.sum())


class RtpProbe:
    def __init__(self, port: int, tone_hz: float, amplitude: float = 6000.0) -> None:
        self.port = port
        self.tone_hz = tone_hz
        self.amplitude = amplitude
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.received: list[tuple[float, bytes]] = []
        self.sent = 0
        self.peer: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rtp-{port}", daemon=True)
        self._thread.start()

    def _payload(self, n: int) -> bytes:
        t = (np.arange(FRAME) + n * FRAME) / RATE
        return alaw_encode(self.amplitude * np.sin(2 * np.pi * self.tone_hz * t))

    def _run(self) -> None:
        ssrc, seq, next_send = 0x5EED0000 + self.port, 0, time.monotonic()
        while not self._stop.is_set():
            self.sock.settimeout(max(0.001, next_send - time.monotonic()))
            try:
                packet, source = self.sock.recvfrom(2048)
                self._keep(packet, source)
            except (TimeoutError, OSError):
                pass
            if time.monotonic() < next_send:
                continue
            next_send += FRAME / RATE
            if self.peer is not None:
                header = struct.pack("!BBHII", 0x80, PCMA, seq & 0xFFFF, seq * FRAME, ssrc)
                self.sock.sendto(header + self._payload(seq), self.peer)
                seq, self.sent = seq + 1, self.sent + 1

    def _keep(self, packet: bytes, source: tuple[str, int]) -> None:
        if len(packet) < 12 or packet[0] >> 6 != 2 or packet[1] & 0x7F != PCMA:
            return
        offset = 12 + 4 * (packet[0] & 0x0F)
        if packet[0] & 0x10 and len(packet) >= offset + 4:  # header extension
            offset += 4 + 4 * struct.unpack("!H", packet[offset + 2 : offset + 4])[0]
        with self._lock:
            self.peer = source
            self.received.append((time.monotonic(), packet[offset:]))

    def packets_since(self, since: float) -> int:
        with self._lock:
            return sum(1 for at, _ in self.received if at >= since)

    def heard_since(self, since: float) -> np.ndarray:
        """The audio received since `since` (time.monotonic()), as 16-bit samples."""
        with self._lock:
            payload = b"".join(p for at, p in self.received if at >= since)
        return DECODE[np.frombuffer(payload, dtype=np.uint8)].astype(np.float64)

    def level_since(self, since: float, hz: float) -> float:
        return tone_level(self.heard_since(since), hz)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def free_probe_port(start: int) -> int:
    """A free even UDP port from `start` (RTP ports are even by custom)."""
    for port in range(start - start % 2, start + 2000, 2):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free UDP port from {start}")

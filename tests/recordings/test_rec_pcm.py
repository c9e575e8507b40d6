"""recordings._pcm, the C loudness and peaks the ingest stores, against a plain Python
reading of the same samples: the waveform a supervisor sees and the "not silent" figure
must not depend on how fast they were computed."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rec_audio import write_wav

from recordings import _pcm, wavfile

INT16 = st.integers(min_value=-32768, max_value=32767)


def reference(samples: list[int], buckets: int) -> tuple[int, list[int]]:
    """Sum of squares, and the largest |sample| per bucket; the remainder joins the last."""
    count = min(buckets, len(samples))
    if not count:
        return 0, []
    width = len(samples) // count
    spans = [samples[b * width : (b + 1) * width] for b in range(count)]
    spans[-1] = samples[(count - 1) * width :]
    return sum(s * s for s in samples), [max(abs(s) for s in span) for span in spans]


def pcm(samples: list[int]) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


@settings(max_examples=300, deadline=None)
@given(samples=st.lists(INT16, max_size=200), buckets=st.integers(min_value=1, max_value=40))
def test_matches_the_plain_reading_for_any_samples(samples: list[int], buckets: int) -> None:
    assert _pcm.measure(pcm(samples), buckets) == reference(samples, buckets)


def test_full_scale_samples_do_not_overflow() -> None:
    """Eight samples of -32768 fill one SSE2 step: each pair of squares is exactly 2^31."""
    loudest = [-32768] * 1000 + [32767] * 3
    squares, peaks = _pcm.measure(pcm(loudest), 7)
    assert squares == 1000 * 32768**2 + 3 * 32767**2
    assert peaks == reference(loudest, 7)[1] and max(peaks) == 32768


def test_long_spans_and_unaligned_buffers() -> None:
    """Two minutes at 8 kHz into the 600 buckets the ingest stores, read from a view that
    starts at an odd address (a WAV's data follows its header at any offset)."""
    samples = [((i * 7919) % 65536) - 32768 for i in range(960_001)]
    raw = bytearray(1) + bytearray(pcm(samples))
    assert _pcm.measure(memoryview(raw)[1:], 600) == reference(samples, 600)


def test_bad_arguments_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        _pcm.measure(b"\x01\x02\x03", 1)
    with pytest.raises(ValueError, match="at least 1"):
        _pcm.measure(b"\x01\x02", 0)
    with pytest.raises(TypeError):
        _pcm.measure("not bytes", 1)  # type: ignore[arg-type]
    assert _pcm.measure(b"", 600) == (0, [])


def test_a_tone_has_the_loudness_and_peaks_of_its_amplitude(tmp_path: Path) -> None:
    """End to end through the WAV reader: a sine of amplitude A has RMS A/sqrt(2) and
    every bucket peaks near A."""
    path = write_wav(tmp_path / "tone.wav", seconds=3.0, amplitude=8000)
    facts = wavfile.wav_facts(path, wavfile.inspect_header(path))
    assert math.isclose(facts.rms, 8000 / math.sqrt(2), rel_tol=0.01)
    assert len(facts.peaks) == wavfile.PEAK_BUCKETS
    assert all(7500 <= peak <= 8000 for peak in facts.peaks)

"""The decoders fuzzed (figure 7 of docs/reliability.md; hypothesis in place of atheris, which needs a
clang build): real files of every container with bytes flipped, cut, repeated or spliced, fed to
`decode` with tight caps. Each either decodes within the caps or is refused with an SttError; no
other exception, no hang past the caps, no temp file left."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.audio import DecodeLimits, decode
from app.core.errors import SttError, UnsupportedMedia
from app.core.types import AudioInput
from tests.audio_tools import encode, read_pcm, wav_bytes

SPEECH = read_pcm("ps_goforward.wav")[:16000].reshape(-1, 1)
SEEDS = {
    "wav": wav_bytes(SPEECH[:, 0]),
    "flac": encode(SPEECH, "flac", "flac"),
    "mp3": encode(SPEECH, "mp3", "libmp3lame"),
    "ogg": encode(SPEECH, "ogg", "libopus", rate=48000),
    "webm": encode(SPEECH, "webm", "libopus", rate=48000),
    "m4a": encode(SPEECH, "ipod", "aac"),
}
LIMITS = DecodeLimits(max_seconds=30, max_decoded_bytes=8 * 1024**2, max_channels=8, max_sample_rate=192000)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "repeat", "splice", "header"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 4096))]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 512))] * draw(st.integers(1, 20))
        elif kind == "splice":
            other = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
            data[at:at] = other[: draw(st.integers(1, len(other)))]
        else:  # the first 64 bytes, where lengths, rates and counts live
            data[draw(st.integers(0, 63)) % max(1, len(data))] = draw(st.integers(0, 255))
        if not data:
            data = bytearray(b"\x00")
    return bytes(data)


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-decode")


@settings(
    max_examples=1000, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=mutated())
def test_mutated_files_decode_or_are_refused(spool: Path, data: bytes) -> None:
    try:
        pcm = decode(AudioInput(data=data), replace(LIMITS), keep_channels=False, tmp_dir=spool)
    except SttError:
        pass
    else:
        assert pcm.frames <= LIMITS.max_seconds * 16000
        pcm.close()
    assert list(spool.iterdir()) == []


def test_a_wav_of_zero_bit_samples_is_refused(spool: Path) -> None:
    # Found by the fuzzer: PyAV opens it with no codec, and every stream attribute then raises.
    data = bytearray(SEEDS["wav"])
    assert data[34:36] == (16).to_bytes(2, "little")  # bits per sample
    data[34:36] = bytes(2)
    with pytest.raises(UnsupportedMedia):
        decode(AudioInput(data=bytes(data)), LIMITS, keep_channels=False, tmp_dir=spool)
    assert list(spool.iterdir()) == []

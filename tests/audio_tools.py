"""Test and benchmark audio: the clips in tests/data, their references, and format conversions."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import av
import numpy as np

DATA = Path(__file__).parent / "data"
ENGLISH = [
    "jfk.wav", "moonshine_beckett.wav", "moonshine_two_cities.wav", "ps_goforward.wav",
    "ps_librivox_0870.wav", "ps_librivox_0880.wav", "ps_librivox_0890.wav", "ps_librivox_0920.wav",
    "ps_librivox_0930.wav", "ps_forever_2.wav",
]  # fmt: skip


def references() -> dict[str, str]:
    with (DATA / "transcripts.tsv").open(encoding="utf-8") as f:
        return {row["file"]: row["reference"] for row in csv.DictReader(f, delimiter="\t")}


def tts_references() -> dict[str, tuple[str, str]]:
    with (DATA / "tts_transcripts.tsv").open(encoding="utf-8") as f:
        return {row["file"]: (row["language"], row["text"]) for row in csv.DictReader(f, delimiter="\t")}


def read_pcm(name: str) -> np.ndarray:
    """16 kHz mono float32 samples of a clip in tests/data."""
    with av.open(str(DATA / name)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        chunks = [o.to_ndarray()[0] for f in container.decode(audio=0) for o in resampler.resample(f)]
        chunks += [o.to_ndarray()[0] for o in resampler.resample(None)]
    return np.concatenate(chunks)


def wav_bytes(pcm: np.ndarray, rate: int = 16000) -> bytes:
    """16-bit WAV of float samples shaped (n,) or (n, channels)."""
    frames = pcm if pcm.ndim == 2 else pcm[:, None]
    return encode(frames, "wav", "pcm_s16le", rate)


def encode(frames: np.ndarray, container: str, codec: str, rate: int = 16000, bit_rate: int | None = None) -> bytes:
    """Encode float samples shaped (n, channels) with PyAV into an in-memory file."""
    channels = frames.shape[1]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(
            codec, rate=rate, layout="mono" if channels == 1 else f"{channels}c" if channels > 2 else "stereo"
        )
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(frames.reshape(1, -1), dtype=np.float32), format="flt", layout=stream.layout
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def long_clip() -> tuple[np.ndarray, str]:
    """The 201 s benchmark clip: the ten English clips, 0.5 s of silence after each, twice."""
    refs = references()
    silence = np.zeros(8000, np.float32)
    pieces = [p for name in ENGLISH for p in (read_pcm(name), silence)]
    text = " ".join(refs[name] for name in ENGLISH)
    return np.concatenate(pieces * 2), f"{text} {text}"

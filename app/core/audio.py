"""Bounded audio decoding with PyAV: any container FFmpeg reads, or headerless PCM, to 16 kHz float32.

Runs in the worker processes. Limits are counted inside the decode loop, never trusted from headers,
and the PCM goes to a temporary file so memory stays bounded whatever the length.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from app.core.errors import AudioTooLong, Cancelled, InvalidArgument, UnsupportedMedia
from app.core.types import AudioInput

SAMPLE_RATE = 16_000
# Demuxers we accept: a playlist or image format never reaches a decoder.
FORMAT_WHITELIST = "wav,w64,flac,mp3,ogg,matroska,mov,aiff,aac,au,caf,wv,s16le,s24le,s32le,f32le,mulaw,alaw"
UNDECODABLE = "The audio file could not be decoded or its format is not supported."


@dataclass(frozen=True)
class DecodeLimits:
    max_seconds: float
    max_decoded_bytes: int
    max_channels: int
    max_sample_rate: int


class DecodedAudio:
    """16 kHz float32 PCM on disk, interleaved when channels are kept apart."""

    def __init__(self, path: Path, channels: int) -> None:
        self.path = path
        self.channels = channels
        frames = path.stat().st_size // (4 * channels)
        self._pcm = (
            np.memmap(path, dtype=np.float32, mode="r", shape=(frames, channels))
            if frames
            else np.zeros((0, channels), np.float32)
        )
        self.frames = frames

    @property
    def duration(self) -> float:
        return self.frames / SAMPLE_RATE

    def samples(self, channel: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        return np.ascontiguousarray(self._pcm[start:stop, channel])

    def blocks(self, channel: int, block_seconds: float) -> Iterator[tuple[float, np.ndarray]]:
        """Consecutive pieces of about `block_seconds`, each cut at the quietest 100 ms near its end."""
        block = int(block_seconds * SAMPLE_RATE)
        start = 0
        while start < self.frames:
            stop = self.frames if self.frames - start <= block * 1.2 else self._quiet_cut(channel, start + block)
            yield start / SAMPLE_RATE, self.samples(channel, start, stop)
            start = stop

    def _quiet_cut(self, channel: int, around: int) -> int:
        frame = SAMPLE_RATE // 10
        lo = max(0, around - 10 * SAMPLE_RATE)
        window = self.samples(channel, lo, around)
        usable = len(window) // frame * frame
        energy = np.square(window[:usable].reshape(-1, frame)).mean(axis=1)
        return lo + int(np.argmin(energy)) * frame + frame // 2

    def close(self) -> None:
        self._pcm = np.zeros((0, self.channels), np.float32)
        self.frames = 0
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> DecodedAudio:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()


def _open(audio: AudioInput) -> av.container.InputContainer:
    source: str | io.BytesIO = audio.path if audio.path is not None else io.BytesIO(audio.data or b"")
    options = {"format_whitelist": FORMAT_WHITELIST}
    fmt = None
    if audio.raw is not None:
        fmt = audio.raw.encoding.value
        # FFmpeg 7+ has no "channels" option for raw PCM: the count goes in "ch_layout".
        layout = f"{audio.raw.channels}c"
        options |= {"sample_rate": str(audio.raw.sample_rate), "ch_layout": layout}
    try:
        return av.open(source, mode="r", format=fmt, options=options)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise UnsupportedMedia(UNDECODABLE, param="file") from exc


def decode(
    audio: AudioInput,
    limits: DecodeLimits,
    *,
    keep_channels: bool,
    tmp_dir: Path,
    spool: Path | None = None,
    should_abort: Callable[[], bool] = bool,
) -> DecodedAudio:
    """Decode and resample to 16 kHz float32; mono mix unless `keep_channels`. `spool` names the PCM
    file (so its owner can remove it whatever happens to this process); else a fresh temp file."""
    with _open(audio) as container:
        if not container.streams.audio:
            raise UnsupportedMedia("The file has no audio stream.", param="file")
        stream = container.streams.audio[0]
        if stream.codec_context is None:  # no decoder for what the header declares (a WAV of 0-bit samples)
            raise UnsupportedMedia(UNDECODABLE, param="file")
        channels = stream.channels or 1
        if channels > limits.max_channels:
            raise InvalidArgument(f"{channels} channels is more than the limit of {limits.max_channels}", param="file")
        if stream.rate and stream.rate > limits.max_sample_rate:
            raise InvalidArgument(
                f"sample rate {stream.rate} Hz is above the limit of {limits.max_sample_rate}", param="file"
            )
        _check_declared_length(container, stream, limits)
        out_channels = channels if keep_channels else 1
        tmp_dir.mkdir(parents=True, exist_ok=True)
        if spool is None:
            fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="pcm-", suffix=".f32")
        else:
            fd, name = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), str(spool)
        try:
            with os.fdopen(fd, "wb") as sink:
                _pump(container, stream, out_channels, limits, sink, should_abort)
        except BaseException:
            os.unlink(name)
            raise
    decoded = DecodedAudio(Path(name), out_channels)
    if decoded.frames == 0:
        decoded.close()
        raise UnsupportedMedia("The audio file contains no samples.", param="file")
    return decoded


def _check_declared_length(
    container: av.container.InputContainer, stream: av.AudioStream, limits: DecodeLimits
) -> None:
    """A compressed file that declares more than the cap is refused before any decoding (a small Ogg
    Opus can hold hours, which cost a worker a minute to decode). PCM is not judged by its header:
    piped WAV declares a huge size by convention, and PCM costs nothing to count while decoding."""
    if stream.codec_context.name.startswith("pcm_"):
        return
    if stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        declared = container.duration / av.time_base
    else:
        return
    if declared > limits.max_seconds + 1:
        raise AudioTooLong(
            f"the file declares {declared:.0f} s of audio, more than the limit of {limits.max_seconds:g} seconds",
            param="file",
        )


def _pump(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    out_channels: int,
    limits: DecodeLimits,
    sink: io.BufferedWriter,
    should_abort: Callable[[], bool],
) -> None:
    layout = "mono" if out_channels == 1 else f"{out_channels}c"
    resampler = av.AudioResampler(format="flt", layout=layout, rate=SAMPLE_RATE)
    max_frames = int(limits.max_seconds * SAMPLE_RATE)
    written = 0
    decoded_bytes = 0
    try:
        for frame in container.decode(stream):
            if frame.sample_rate and frame.sample_rate > limits.max_sample_rate:
                raise InvalidArgument(f"sample rate {frame.sample_rate} Hz is above the limit", param="file")
            decoded_bytes += frame.samples * max(len(frame.layout.channels), 1) * 4
            if decoded_bytes > limits.max_decoded_bytes:
                raise AudioTooLong(f"decoded audio exceeds the limit of {limits.max_decoded_bytes} bytes", param="file")
            written += _write(resampler.resample(frame), sink)
            if should_abort():
                raise Cancelled("the request was cancelled while its audio was decoded")
            if written > max_frames:
                raise AudioTooLong(f"audio is longer than the limit of {limits.max_seconds:g} seconds", param="file")
        written += _write(resampler.resample(None), sink)
    except (av.error.FFmpegError, ValueError) as exc:
        if written == 0:
            raise UnsupportedMedia(UNDECODABLE, param="file") from exc
        # A truncated tail: keep what decoded cleanly, as ffmpeg itself does.
    if written > max_frames:
        raise AudioTooLong(f"audio is longer than the limit of {limits.max_seconds:g} seconds", param="file")


def _write(frames: list[av.AudioFrame], sink: io.BufferedWriter) -> int:
    count = 0
    for out in frames:
        pcm = out.to_ndarray()  # packed float: shape (1, samples * channels)
        sink.write(np.ascontiguousarray(pcm, dtype=np.float32).tobytes())
        count += out.samples
    return count

"""Decoding a container (Ogg or WebM Opus) while its bytes still arrive.

PyAV reads from a blocking file object fed by the event loop, in a thread of its own, and hands
16 kHz mono float32 back as it decodes. Headerless PCM needs none of this (see `pcm_to_float`).
"""

from __future__ import annotations

import asyncio
import io
import queue
import threading

import av
import numpy as np

from app.core.audio import FORMAT_WHITELIST, SAMPLE_RATE, UNDECODABLE
from app.core.errors import UnsupportedMedia
from app.core.types import RawEncoding

_END = b""


class _Feed(io.RawIOBase):
    """A non-seekable byte stream whose reads wait for the next chunk."""

    def __init__(self) -> None:
        self.chunks: queue.Queue[bytes] = queue.Queue()
        self._rest = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._rest and not self._ended:
            chunk = self.chunks.get()
            self._ended = chunk == _END
            self._rest = chunk
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


class ContainerStreamDecoder:
    """feed(bytes) from the loop; `pcm` yields float32 arrays; None marks the end."""

    def __init__(self, container_format: str) -> None:
        self._feed = _Feed()
        self._format = container_format
        self._loop = asyncio.get_running_loop()
        self.pcm: asyncio.Queue[np.ndarray | BaseException | None] = asyncio.Queue()
        self._thread = threading.Thread(target=self._run, name="stream-decode", daemon=True)
        self._thread.start()

    def feed(self, data: bytes) -> None:
        if data:
            self._feed.chunks.put(data)

    def end(self) -> None:
        self._feed.chunks.put(_END)

    def _emit(self, item: np.ndarray | BaseException | None) -> None:
        self._loop.call_soon_threadsafe(self.pcm.put_nowait, item)

    def _run(self) -> None:
        try:
            options = {"format_whitelist": FORMAT_WHITELIST}
            with av.open(self._feed, mode="r", format=self._format, options=options) as container:
                resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
                for frame in container.decode(audio=0):
                    for out in resampler.resample(frame):
                        self._emit(out.to_ndarray()[0].copy())
                for out in resampler.resample(None):
                    self._emit(out.to_ndarray()[0].copy())
            self._emit(None)
        except (av.error.FFmpegError, ValueError, IndexError) as exc:
            self._emit(UnsupportedMedia(UNDECODABLE, param="file").with_traceback(exc.__traceback__))
        finally:
            while not self._feed._ended:  # let the feeder's puts go nowhere once we stop reading
                if self._feed.chunks.get() == _END:
                    break


# A-law to linear, as G.711 defines it (13-bit magnitude scaled to 16-bit).
def _alaw_table() -> np.ndarray:
    values = np.arange(256, dtype=np.int32) ^ 0x55
    sign = values & 0x80
    exponent = (values >> 4) & 0x07
    mantissa = values & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    return (np.where(sign, magnitude, -magnitude) / 32768.0).astype(np.float32)


ALAW = _alaw_table()


# mu-law to linear, as G.711 defines it.
def _mulaw_table() -> np.ndarray:
    values = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = values & 0x80
    exponent = (values >> 4) & 0x07
    mantissa = values & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return (np.where(sign, -magnitude, magnitude) / 32768.0).astype(np.float32)


MULAW = _mulaw_table()


def pcm_to_float(data: bytes, encoding: RawEncoding) -> np.ndarray:
    """Whole samples of headerless 16-bit PCM or A-law to float32."""
    if encoding is RawEncoding.LINEAR16:
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if encoding is RawEncoding.ALAW:
        return ALAW[np.frombuffer(data, dtype=np.uint8)]
    raise ValueError(f"no streaming conversion for {encoding}")


class StreamResampler:
    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def __call__(self, pcm: np.ndarray | None) -> np.ndarray:
        if self.rate == SAMPLE_RATE:
            return pcm if pcm is not None else np.zeros(0, np.float32)
        if pcm is not None and len(pcm) == 0:
            return np.zeros(0, np.float32)
        frame = None
        if pcm is not None:
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = self.rate
        pieces = [out.to_ndarray()[0] for out in self._resampler.resample(frame)]
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

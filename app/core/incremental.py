"""Recognition while audio still arrives: pause-delimited windows decoded on the shared pool.

Audio (16 kHz mono float32) is fed as it comes. Once the undecoded part is long enough, it is cut at
the latest pause and that window goes to the pool at once, so by the time the last byte arrives
only the short tail after the last pause is left to decode. Each window is decoded once; its text
is final (committed) as soon as it comes back. Live-streaming endpoints reuse this class.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from app.core.audio import SAMPLE_RATE
from app.core.errors import AudioTooLong, Cancelled, Overloaded
from app.core.service import SpeechService
from app.core.types import AudioInput, Lane, RawEncoding, RawFormat, Segment, Transcript, TranscriptionRequest

FRAME = SAMPLE_RATE // 20  # 50 ms energy frames
FLOAT_PCM = RawFormat(RawEncoding.FLOAT32, SAMPLE_RATE, 1)


@dataclass(frozen=True)
class StreamConfig:
    min_seconds: float = 4.0
    """A window is cut at the latest pause once this much undecoded audio has arrived."""
    max_seconds: float = 20.0
    """Without any pause, cut at the quietest point once this much has arrived."""
    pause_seconds: float = 0.15
    """How long a quiet stretch must be to count as a pause."""
    max_total_seconds: float = 7200.0
    """Longest stream accepted."""
    max_backlog: int = 4
    """Windows decoding or waiting at once; past it the reader waits (`room`), which slows the client."""
    overload_wait_seconds: float = 30.0
    """How long a window may wait for a place in the live lane before the stream fails Overloaded."""
    min_tail_seconds: float = 0.1
    """A last piece shorter than this (the pipeline's minimum audio) is dropped, not decoded."""
    live_burst_seconds: float = 10.0
    """How far ahead of real time a stream's audio may run and still be live. Past it (a file sent
    as fast as the network allows) its windows go on the interactive lane: the live lane is for
    audio spoken now, and a fast upload must not hold every decoder against everyone else."""


class IncrementalTranscriber:
    def __init__(
        self,
        service: SpeechService,
        template: TranscriptionRequest,
        config: StreamConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.template = template
        self.config = config
        self._clock = clock
        self._started = clock()
        self._pending = np.zeros(0, np.float32)
        self._offset = 0.0  # seconds of audio before `_pending`
        self._windows: list[tuple[float, asyncio.Task[Transcript]]] = []
        self._cancelled = False

    @property
    def seconds_received(self) -> float:
        return self._offset + len(self._pending) / SAMPLE_RATE

    @property
    def windows_started(self) -> int:
        return len(self._windows)

    async def room(self) -> None:
        """Wait until fewer than `max_backlog` windows are unfinished: a client that outruns the
        decoders is slowed (its body is not read meanwhile) instead of costing unbounded memory."""
        while len(busy := [task for _, task in self._windows if not task.done()]) >= self.config.max_backlog:
            await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)

    def feed(self, pcm: np.ndarray) -> None:
        if self._cancelled:
            raise Cancelled("the stream was cancelled")
        self._pending = np.concatenate([self._pending, pcm.astype(np.float32, copy=False)])
        if self.seconds_received > self.config.max_total_seconds:
            raise AudioTooLong(f"audio is longer than the limit of {self.config.max_total_seconds:g} seconds")
        while (cut := self._find_cut()) is not None:
            self._start_window(cut)

    async def finish(self) -> Transcript:
        """Decode what is left and return the whole transcript."""
        tail = len(self._pending)
        if tail > 0 and (tail >= self.config.min_tail_seconds * SAMPLE_RATE or not self._windows):
            self._start_window(tail)
        try:
            parts = [(offset, await task) for offset, task in self._windows]
        except BaseException:
            self.cancel()
            raise
        return self._merge(parts)

    def cancel(self) -> None:
        """Cancel every window; later feeds are refused, so nothing new starts."""
        self._cancelled = True
        for _, task in self._windows:
            task.cancel()

    def _find_cut(self) -> int | None:
        samples = len(self._pending)
        low = int(self.config.min_seconds * SAMPLE_RATE)
        if samples < low + FRAME * 4:
            return None
        frames = samples // FRAME
        energy = np.sqrt(np.square(self._pending[: frames * FRAME].reshape(frames, FRAME)).mean(axis=1))
        quiet = energy < max(1e-4, 0.15 * float(np.median(energy)))
        run = max(1, int(self.config.pause_seconds * 20))
        first = low // FRAME
        # The latest pause after min_seconds, leaving its own last frame out (more may follow).
        for end in range(frames - 1, first + run - 1, -1):
            if quiet[end - run + 1 : end + 1].all():
                return (end - run // 2) * FRAME
        if samples >= self.config.max_seconds * SAMPLE_RATE:
            return (first + int(np.argmin(energy[first:]))) * FRAME
        return None

    def _start_window(self, cut: int) -> None:
        window, self._pending = self._pending[:cut], self._pending[cut:]
        offset = self._offset
        self._offset += cut / SAMPLE_RATE
        request = replace(self.template, audio=AudioInput(data=window.tobytes(), raw=FLOAT_PCM))
        self._windows.append((offset, asyncio.ensure_future(self._decode(request, self._lane()))))

    def _lane(self) -> Lane:
        ahead = self.seconds_received - (self._clock() - self._started)
        return Lane.LIVE if ahead <= self.config.live_burst_seconds else Lane.INTERACTIVE

    async def _decode(self, request: TranscriptionRequest, lane: Lane) -> Transcript:
        delay = 0.05
        give_up = asyncio.get_running_loop().time() + self.config.overload_wait_seconds
        while True:
            try:
                return await self.service.transcribe(request, lane=lane)
            except Overloaded:
                # A streamed window must not be lost: wait a while for a place in the live lane.
                if asyncio.get_running_loop().time() + delay > give_up:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _merge(self, parts: list[tuple[float, Transcript]]) -> Transcript:
        segments: list[Segment] = []
        for offset, transcript in parts:
            end = offset + transcript.duration
            segments += [s.placed(offset, s.channel, end) for s in transcript.segments]
        first = parts[0][1] if parts else None
        return Transcript(
            segments=tuple(segments),
            language=first.language if first else (self.template.language or ""),
            language_probability=first.language_probability if first else 0.0,
            duration=self.seconds_received,
            model=first.model if first else self.template.model,
            task=self.template.task,
            processing_seconds=sum(t.processing_seconds for _, t in parts),
        )

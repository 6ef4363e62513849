"""A live transcription session: audio in as it is spoken, events out. No wire format inside.

Audio (16 kHz mono float32, see app/core/stream_decode.py for the wire formats) is appended as it
arrives. Utterances end where the server VAD hears `silence_duration_ms` of silence, at a client's
commit (manual turns), or at `max_utterance_seconds`. While one is open its interim text is
re-decoded on the live lane at most every `partial_interval_ms` (one partial decode at a time;
the final cancels a stale one). Each committed utterance is decoded once more for its final,
with the latest final's text as context (the previous utterance's, unless the stream is ahead of
the decoders and `parallel_finals` run at once) and, once detected, the first utterance's
language. Finals come out in order.

Every task of a session belongs to one TaskGroup (`async with session`): leaving it, by the end,
an error or a disconnect, cancels them all, so no decode outlives its client. Undecoded audio is
bounded: past `max_backlog_seconds` an append waits (the reader stops reading, which slows the
client), and past `backlog_wait_seconds` of waiting it fails with Overloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from app.core.audio import SAMPLE_RATE
from app.core.errors import InvalidArgument, Overloaded, SttError
from app.core.live_audio import LiveConverter, LiveFormat
from app.core.live_decode import LiveDecoder
from app.core.live_events import (
    Cleared,
    Committed,
    Done,
    Event,
    Failed,
    Final,
    LiveConfig,
    Partial,
    SpeechStarted,
    SpeechStopped,
    TurnDetection,
)
from app.core.service import SpeechService
from app.core.stream_decode import ContainerStreamDecoder
from app.core.types import Transcript, TranscriptionRequest
from app.core.vad import FRAME, StreamingVad

__all__ = [
    "Cleared", "Committed", "Done", "Event", "Failed", "Final", "LiveConfig", "LiveSession", "Partial",
    "SpeechStarted", "SpeechStopped", "TurnDetection",
]  # fmt: skip

T = TypeVar("T")


@dataclass
class _EarlyFinal:
    """A final decoded before its commit, on the utterance's audio up to `end`."""

    end: int
    lead: int
    task: asyncio.Task[Transcript | SttError]


@dataclass
class _Utterance:
    start: int
    """Stream sample where its audio begins (speech start minus the prefix padding)."""
    speech: int = 0
    """Samples of speech heard in it."""
    last_speech: int = 0
    first_speech: int = -1
    """Stream sample where its speech was first heard (-1: not heard, a manual commit)."""
    item: int = -1
    """Its number once it holds `min_speech_ms` of speech (or is committed by hand); -1 before."""
    partial_at: float = 0.0
    partials: int = 0
    probabilities: list[float] = field(default_factory=list)
    early: _EarlyFinal | None = None


class LiveSession:
    def __init__(
        self,
        service: SpeechService,
        template: TranscriptionRequest,
        config: LiveConfig,
        turn: TurnDetection | None,
        clock: Callable[[], float] = time.monotonic,
        audio_format: LiveFormat | None = None,
        spare: Callable[[], bool] = lambda: True,
        partials: bool = True,
    ) -> None:
        self.config = config
        self.turn = turn
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._clock = clock
        # Partials (if the client wants them) and early finals are guesses: decoded only on spare
        # capacity, never ahead of finals.
        self._spare = spare
        self._partials = partials
        self._started = clock()
        self._vad = StreamingVad() if turn is not None else None
        self.audio_format = audio_format or LiveFormat()
        self._convert = LiveConverter(self.audio_format)
        self._container: ContainerStreamDecoder | None = None
        self._audio = np.zeros(0, np.float32)
        self._base = 0  # stream sample of _audio[0]
        self._received = 0
        self._floor = 0  # audio before this sample belongs to committed utterances
        self._open: _Utterance | None = None
        self._items = 0
        self._decoder = LiveDecoder(
            service, template, config, lambda: self.seconds_received - (clock() - self._started), clock
        )
        self._last_final: asyncio.Task[None] | None = None
        self._partial: asyncio.Task[None] | None = None
        self._pending_seconds = 0.0  # committed, final not out yet
        self._drained = asyncio.Event()
        self._frames = 0  # VAD frames seen
        self._group = asyncio.TaskGroup()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.early_finals_dropped = 0  # decoded before a silence that speech then broke

    async def __aenter__(self) -> LiveSession:
        await self._group.__aenter__()
        if self.audio_format.container is not None:
            self._container = ContainerStreamDecoder(self.audio_format.container)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._container is not None:
            self._container.end()  # its thread stops reading
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._group.__aexit__(None, None, None)

    def _spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = self._group.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def finals_without_lead(self) -> int:
        """Finals decoded again alone: with the lead, Whisper stopped before them."""
        return self._decoder.finals_without_lead

    @property
    def finals_unprompted(self) -> int:
        """Finals decoded again without the words before their lead: with them, Whisper looped."""
        return self._decoder.finals_unprompted

    @property
    def seconds_received(self) -> float:
        return self._received / SAMPLE_RATE

    @property
    def backlog_seconds(self) -> float:
        open_seconds = (self._received - self._open.start) / SAMPLE_RATE if self._open and self.turn else 0.0
        manual = (self._received - self._floor) / SAMPLE_RATE if self.turn is None else 0.0
        return self._pending_seconds + open_seconds + manual

    async def feed(self, data: bytes) -> None:
        """Audio bytes in the session's declared format (`audio_format`)."""
        if self._container is not None:
            self._container.feed(data)
            await self._decoded(until_end=False)
        else:
            await self._take(lambda: self._convert(data))

    async def _decoded(self, *, until_end: bool) -> None:
        """Take what the container's thread has decoded so far (all of it, to its end, at the end).
        It decodes only bytes already fed, and feeding waits here, so this is bounded too."""
        assert self._container is not None
        pcm = self._container.pcm
        while until_end or not pcm.empty():
            item = await pcm.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            await self.append(item)

    async def append(self, pcm: np.ndarray) -> None:
        """Take 16 kHz float audio; waits while the decoders are `max_backlog_seconds` behind."""
        await self._take(lambda: pcm.astype(np.float32, copy=False))

    async def _take(self, samples: Callable[[], np.ndarray]) -> None:
        if self.backlog_seconds > self.config.max_backlog_seconds:
            await self._wait_for_room()
        vad = self._vad

        def prepare() -> tuple[np.ndarray, np.ndarray | None]:  # one thread hop: conversion and VAD
            pcm = samples()
            return pcm, vad.probabilities(pcm) if vad is not None else None

        pcm, probabilities = await asyncio.to_thread(prepare)
        self._audio = np.concatenate([self._audio, pcm])
        self._received += len(pcm)
        if probabilities is not None:
            self._follow(probabilities)
            self._trim()
        elif self.config.manual_partials and self._open is None and self._received > self._floor:
            # Manual turns have no utterance until the commit; one is opened here so that partials
            # of what is spoken so far can be decoded before it.
            self._open = _Utterance(self._floor, item=self._new_item(), partial_at=self._clock())
        self._maybe_partial()

    def commit(self) -> Committed:
        """End the current utterance here (manual turns). InvalidArgument if it is too short."""
        start = self._open.start if self._open is not None else self._floor
        have_ms = (self._received - start) * 1000 // SAMPLE_RATE
        if have_ms < self.config.min_commit_ms:
            raise InvalidArgument(
                f"Error committing input audio buffer: buffer too small. Expected at least "
                f"{self.config.min_commit_ms}ms of audio, but buffer only has {have_ms:.2f}ms of audio.",
                param="input_audio_buffer",
            )
        if self._open is None:
            self._open = _Utterance(start)
        return self._commit(self._received)

    def clear(self) -> None:
        """Drop audio not yet committed."""
        if self._partial is not None:
            self._partial.cancel()
        if self._open is not None:
            self._drop_early(self._open)
        self._open = None
        self._floor = self._received
        self._trim()
        self.events.put_nowait(Cleared())

    async def finish(self) -> None:
        """The audio has ended: commit what holds speech, wait for every final, then Done."""
        if self._container is not None:
            self._container.end()
            await self._decoded(until_end=True)
        if self._partial is not None:
            self._partial.cancel()
        if self.turn is not None and self._open is not None and self._open.item >= 0:
            self.events.put_nowait(SpeechStopped(self._open.item, _ms(self._open.last_speech)))
            self._commit(self._received)
        elif self.turn is None and self._received - self._floor >= self.config.min_commit_ms * SAMPLE_RATE // 1000:
            self._open = self._open or _Utterance(self._floor)
            self._commit(self._received)
        if self._last_final is not None:
            await asyncio.shield(self._last_final)
        self.events.put_nowait(Done())

    # -- turn detection ---------------------------------------------------------------------------

    @property
    def _min_speech(self) -> int:
        return self.config.min_speech_ms * SAMPLE_RATE // 1000

    def _follow(self, probabilities: np.ndarray) -> None:
        assert self.turn is not None
        turn = self.turn
        quiet_below = max(0.01, turn.threshold - 0.15)  # hysteresis, as Silero's own segmenter
        silence = turn.silence_duration_ms * SAMPLE_RATE // 1000
        head_start = self.config.final_head_start_ms * SAMPLE_RATE // 1000
        early_at = max(FRAME, silence - head_start)
        for probability in probabilities.tolist():
            self._frames += 1
            end = self._frames * FRAME
            utterance = self._open
            if utterance is None:
                if probability >= turn.threshold:
                    padding = turn.prefix_padding_ms * SAMPLE_RATE // 1000
                    start = max(self._floor, end - FRAME - padding)
                    self._open = _Utterance(start, FRAME, end, first_speech=end - FRAME, partial_at=self._clock())
                continue
            utterance.probabilities.append(probability)
            if probability >= turn.threshold:
                utterance.speech += FRAME
                utterance.last_speech = end
                self._drop_early(utterance)  # not the end after all
                if utterance.item < 0 and utterance.speech >= self._min_speech:
                    utterance.item = self._new_item()
                    self.events.put_nowait(SpeechStarted(utterance.item, _ms(utterance.start)))
            elif probability < quiet_below and end - utterance.last_speech >= silence:
                if utterance.item >= 0:
                    self.events.put_nowait(SpeechStopped(utterance.item, _ms(utterance.last_speech)))
                    self._commit(end)
                else:  # too little speech: a noise, not an utterance
                    self._open = None
                    self._floor = max(self._floor, end - silence)
                continue
            elif head_start and probability < quiet_below and end - utterance.last_speech >= early_at:
                self._start_early(utterance, end)
            if utterance.item >= 0 and end - utterance.start >= self.config.max_utterance_seconds * SAMPLE_RATE:
                self._cut_long(utterance, end)

    def _cut_long(self, utterance: _Utterance, end: int) -> None:
        """Cut a long utterance at its quietest frame of the last 3 s and go on in a new one."""
        recent = utterance.probabilities[-int(3 * SAMPLE_RATE / FRAME) :]
        back = len(recent) - int(np.argmin(recent)) - 1
        cut = end - back * FRAME
        self.events.put_nowait(SpeechStopped(utterance.item, _ms(cut)))
        self._commit(cut)
        follower = _Utterance(cut, speech=back * FRAME, last_speech=end, first_speech=cut, partial_at=self._clock())
        follower.item = self._new_item()
        follower.probabilities = recent[len(recent) - back :]
        self._open = follower
        self.events.put_nowait(SpeechStarted(follower.item, _ms(cut)))

    def _new_item(self) -> int:
        self._items += 1
        return self._items - 1

    # -- decoding ---------------------------------------------------------------------------------

    def _commit(self, end: int) -> Committed:
        utterance = self._open
        assert utterance is not None
        if utterance.item < 0:
            utterance.item = self._new_item()
        self._open = None
        if self._partial is not None:
            self._partial.cancel()  # the final supersedes it
        early = utterance.early
        if early is not None and early.end > end:  # cut before the audio it heard
            self._drop_early(utterance)
            early = None
        lead = early.lead if early is not None else self._lead(utterance, end)
        pcm = self._slice(utterance.start - lead, end)
        # The lead's words are dropped: those that end before the VAD heard this speech begin (a
        # word after a pause is often timed from inside the pause, so its start cannot tell; its
        # end can, and the last utterance's words ended a whole silence earlier). A manual commit
        # has no VAD times: there a word belongs where its middle is.
        heard = utterance.first_speech >= 0
        # Halfway into the prefix padding: the VAD hears a soft first word ("and") late.
        boundary = (utterance.start + utterance.first_speech) // 2 if heard else utterance.start
        self._floor = end
        self._trim()
        committed = Committed(utterance.item, _ms(utterance.start), _ms(end))
        self.events.put_nowait(committed)
        seconds = (end - utterance.start) / SAMPLE_RATE
        self._pending_seconds += seconds
        previous = self._last_final
        decoded = early.task if early is not None else None
        work = self._final(utterance.item, pcm, utterance.start, lead, (boundary, heard), previous, decoded)
        self._last_final = self._spawn(work)
        return committed

    async def _final(
        self,
        item: int,
        pcm: np.ndarray,
        start: int,
        lead: int,
        boundary: tuple[int, bool],
        previous: asyncio.Task[None] | None,
        decoded: asyncio.Task[Transcript | SttError] | None,
    ) -> None:
        seconds = (len(pcm) - lead) / SAMPLE_RATE
        try:
            transcript = await self._decoder.finished(pcm, start, lead, decoded)
            if previous is not None:
                await asyncio.shield(previous)  # finals come out in order
            transcript = await self._decoder.text(transcript, pcm, start, lead, boundary)
            self.events.put_nowait(Final(item, transcript, seconds))
        except SttError as exc:
            self.events.put_nowait(Failed(item, exc))
        finally:
            self._pending_seconds -= seconds
            self._drained.set()

    def _lead(self, utterance: _Utterance, end: int) -> int:
        if (end - utterance.start) >= self.config.short_utterance_seconds * SAMPLE_RATE:
            return 0
        return min(int(self.config.lead_seconds * SAMPLE_RATE), utterance.start - self._base)

    def _start_early(self, utterance: _Utterance, end: int) -> None:
        """The silence may be the end: decode the final now, if the decoders have room for a
        guess (a spare worker, no final of this stream still running)."""
        if utterance.early is not None or utterance.item < 0 or not self._room_for_a_guess():
            return
        if self._partial is not None:
            self._partial.cancel()  # the final supersedes it
        lead = self._lead(utterance, end)
        work = self._decoder.final(self._slice(utterance.start - lead, end), utterance.start, lead)
        utterance.early = _EarlyFinal(end, lead, self._spawn(work))

    def _room_for_a_guess(self) -> bool:
        """A spare worker, and no final of this stream still decoding."""
        return (self._last_final is None or self._last_final.done()) and self._spare()

    def _drop_early(self, utterance: _Utterance) -> None:
        if utterance.early is not None:
            utterance.early.task.cancel()
            utterance.early = None
            self.early_finals_dropped += 1

    def _maybe_partial(self) -> None:
        utterance = self._open
        if utterance is None or utterance.item < 0 or (self._partial and not self._partial.done()):
            return
        if utterance.early is not None:  # its final is being decoded
            return
        if not self._partials or not self._room_for_a_guess():
            return
        now = self._clock()
        # The first partial is due half an interval after the speech began, once the utterance holds
        # a second of audio: the first words show soonest, and less audio mostly decodes to nothing.
        due = self.config.partial_interval_ms / (2000 if utterance.partials == 0 else 1000)
        if now - utterance.partial_at < due:
            return
        if utterance.partials == 0 and self._received - utterance.start < SAMPLE_RATE:
            return
        utterance.partials += 1
        utterance.partial_at = now
        pcm = self._slice(utterance.start, self._received)
        self._partial = self._spawn(self._interim(utterance, pcm))

    async def _interim(self, utterance: _Utterance, pcm: np.ndarray) -> None:
        try:
            transcript = await self._decoder.partial(pcm, utterance.start)
        except SttError:
            return  # a partial is only a preview; the final will say what went wrong
        if self._open is utterance and transcript.text:
            self.events.put_nowait(Partial(utterance.item, transcript.text))
        elif self._open is utterance and utterance.partials == 1:
            utterance.partials = 0  # nothing heard yet: the first partial is still to come

    # -- buffers ----------------------------------------------------------------------------------

    def _slice(self, start: int, end: int) -> np.ndarray:
        return self._audio[max(0, start - self._base) : max(0, end - self._base)].copy()

    def _trim(self) -> None:
        """Keep only what an utterance may still need: the open one, or the prefix padding, and
        `lead_seconds` before that for a short utterance's final."""
        if self._open is not None:
            keep = self._open.start
        elif self.turn is not None:
            # From the last frame the VAD has seen: the next speech may start a padding before it.
            keep = max(self._floor, self._frames * FRAME - self.turn.prefix_padding_ms * SAMPLE_RATE // 1000)
        else:
            keep = self._floor
        keep -= int(self.config.lead_seconds * SAMPLE_RATE)
        if keep > self._base:
            self._audio = self._audio[keep - self._base :]
            self._base = keep

    async def _wait_for_room(self) -> None:
        deadline = self._clock() + self.config.backlog_wait_seconds
        while self.backlog_seconds > self.config.max_backlog_seconds:
            left = deadline - self._clock()
            if left <= 0:
                raise Overloaded(
                    f"this stream is {self.backlog_seconds:.0f} s of audio ahead of the decoders "
                    f"(the most is {self.config.max_backlog_seconds:g} s); send audio at real-time pace",
                    retry_after=5,
                )
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), left)


def _ms(sample: int) -> int:
    return sample * 1000 // SAMPLE_RATE

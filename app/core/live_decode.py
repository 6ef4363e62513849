"""The decodes of a live session: its finals' text, with context and the pinned language, and its
partials' previews, on the live lane while the stream keeps real-time pace. No turn-taking here:
app/core/live.py decides what to decode and when.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from app.core.audio import SAMPLE_RATE
from app.core.errors import Overloaded, SttError
from app.core.live_events import LiveConfig
from app.core.live_text import without_repeats, words_after
from app.core.service import SpeechService
from app.core.types import AudioInput, Lane, RawEncoding, RawFormat, Segment, Transcript, TranscriptionRequest

FLOAT_PCM = RawFormat(RawEncoding.FLOAT32, SAMPLE_RATE, 1)
CONTEXT_WORDS = 40
STOPPED_EARLY_SECONDS = 1.0  # a final's audio ends with the VAD's silence (500 ms) or less


class LiveDecoder:
    def __init__(
        self,
        service: SpeechService,
        template: TranscriptionRequest,
        config: LiveConfig,
        ahead: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.template = template
        self.config = config
        self._ahead = ahead  # seconds of audio received beyond real-time pace
        self._clock = clock
        self._context = ""
        self._heard: list[tuple[float, str]] = []  # (end, word) in stream seconds, of recent finals
        self._language = template.language
        self.slots = asyncio.Semaphore(config.parallel_finals)
        self.finals_without_lead = 0  # decoded again: with the lead, Whisper stopped before them
        self.finals_unprompted = 0  # decoded again: with the words before the lead, Whisper looped

    async def final(self, pcm: np.ndarray, start: int, lead: int) -> Transcript | SttError:
        """A final's decode of `pcm`, whose first `lead` samples come before the utterance (at
        stream sample `start`). An error is returned, not raised: it runs as a task of the session's
        group, which must not fail, and its final reports it."""
        # The context is the latest finals out by now: the previous one's at real-time pace; an
        # older one while finals run side by side (a stream ahead of the decoders). Without lead
        # audio it is read: the previous final's last words are the prompt. With it, the words the
        # lead holds are heard, not read (read as well, Whisper copied them: "we were all going
        # direct to heaven" three times more): only words before the lead are read.
        if not lead:
            request = self._request(pcm, self.template.beam_size, self._context)
            return await self._final(request, start)
        request = replace(self._request(pcm, self.template.beam_size, ""), word_timestamps=True)
        context = self._words_before(start - lead)
        if context:
            # A prompt can make Whisper loop, and each fallback temperature is one more decode
            # (finals 4.3 s late at four streams, measured): one bounded try, then none.
            tried_request = replace(request, prompt=self._prompt(context), bounded=True, stop_near_end=True)
            tried = await self._final(tried_request, start - lead)
            if isinstance(tried, SttError) or not _fails(tried, (start - lead + len(pcm)) / SAMPLE_RATE):
                return tried
            self.finals_unprompted += 1
        return await self._final(request, start - lead)

    async def _final(self, request: TranscriptionRequest, start: int) -> Transcript | SttError:
        try:
            return await self._decode(request, start, self.config.overload_wait_seconds)
        except SttError as exc:
            return exc

    async def finished(
        self, pcm: np.ndarray, start: int, lead: int, early: asyncio.Task[Transcript | SttError] | None = None
    ) -> Transcript:
        """A final's decode in one of the session's slots (`early`: that decode, started before the
        commit): its transcript, as long as `pcm` (an early one heard less silence), or its error
        raised."""
        async with self.slots:
            result = await (early if early is not None else self.final(pcm, start, lead))
        if isinstance(result, SttError):
            raise result
        return without_repeats(replace(result, duration=len(pcm) / SAMPLE_RATE))

    async def text(
        self, transcript: Transcript, pcm: np.ndarray, start: int, lead: int, boundary: tuple[int, bool]
    ) -> Transcript:
        """A final's own words, once the finals before it are out: its context comes from them."""
        if lead:
            at, by_end = boundary
            heard = transcript.text
            transcript = words_after(transcript, at / SAMPLE_RATE, by_end=by_end, keep_words=True)
            self._remember(transcript)
            if not self.template.word_timestamps:
                transcript = replace(transcript, segments=tuple(replace(s, words=()) for s in transcript.segments))
            transcript = replace(transcript, duration=(len(pcm) - lead) / SAMPLE_RATE)
            if heard and not transcript.text:
                # Whisper ended its output with the lead's last words (seen at the end of a
                # sentence: an end-of-text where the next segment began): decoded again, alone.
                self.finals_without_lead += 1
                transcript = await self.finished(pcm[lead:], start, 0)
                self._remember(transcript)
        else:
            self._remember(transcript)
        if self._language is None:
            self._language = transcript.language  # pinned after the first utterance
        if transcript.text:
            # Whisper reads at most 223 prompt tokens: the last words are the useful context.
            self._context = " ".join(transcript.text.split()[-CONTEXT_WORDS:])
        return transcript

    def _remember(self, transcript: Transcript) -> None:
        """A final's words with their ends: the context of a later final is what its lead did not hear."""
        heard = [(w.end, w.text.strip()) for s in transcript.segments for w in s.words]
        heard = heard or [(s.end, s.text) for s in transcript.segments]
        self._heard = [*self._heard, *heard][-2 * CONTEXT_WORDS :]

    async def partial(self, pcm: np.ndarray, start: int) -> Transcript:
        """A preview: greedy, the encoder on the audio plus a little padding, never retried (it is
        redone soon, and the final says what went wrong)."""
        padding = self.config.partial_encoder_padding_seconds
        request = replace(self._request(pcm, 1, self._context), encoder_padding_seconds=padding, bounded=True)
        return await self._decode(request, start, 0.0)

    def _words_before(self, sample: int) -> str:
        """The last `lead_prompt_words` words of the finals so far that end before stream `sample`."""
        count, before = self.config.lead_prompt_words, sample / SAMPLE_RATE
        return " ".join([word for end, word in self._heard if end <= before][-count:]) if count else ""

    def _prompt(self, context: str) -> str | None:
        return " ".join(p for p in (self.template.prompt, context) if p) or None

    def _request(self, pcm: np.ndarray, beam_size: int | None, context: str) -> TranscriptionRequest:
        prompt = self._prompt(context)
        return replace(
            self.template,
            audio=AudioInput(data=pcm.tobytes(), raw=FLOAT_PCM),
            language=self._language,
            prompt=prompt,
            beam_size=beam_size,
        )

    async def _decode(self, request: TranscriptionRequest, start: int, overload_wait: float) -> Transcript:
        lane = Lane.LIVE if self._ahead() <= self.config.live_burst_seconds else Lane.INTERACTIVE
        delay, give_up = 0.05, self._clock() + overload_wait
        while True:
            try:
                transcript = await self.service.transcribe(request, lane=lane)
                break
            except Overloaded:
                if self._clock() + delay > give_up:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        offset = start / SAMPLE_RATE
        end = offset + transcript.duration
        segments: tuple[Segment, ...] = tuple(s.placed(offset, s.channel, end) for s in transcript.segments)
        return replace(transcript, segments=segments)


def _fails(transcript: Transcript, end: float) -> bool:
    """Whisper's own quality gates failed, no text, or text that stops more than
    `STOPPED_EARLY_SECONDS` before the audio's `end` (stream seconds)."""
    segments = transcript.segments
    if not segments or segments[-1].end < end - STOPPED_EARLY_SECONDS:
        return True
    return any(s.fails_quality_gates for s in segments)

"""The engine contract and the engine-agnostic pipeline a worker runs for one request.

An engine turns 16 kHz mono float32 PCM into segments. Everything around it (decoding, channels,
blocks of long audio, text post-processing, abort checks) lives here, so a fake engine exercises it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from app.core.audio import SAMPLE_RATE, DecodedAudio, DecodeLimits, decode
from app.core.errors import Cancelled
from app.core.text import postprocess
from app.core.types import Alternative, Segment, Transcript, TranscriptionRequest


@dataclass(frozen=True)
class LanguageGuess:
    language: str
    probability: float


class Engine(Protocol):
    def transcribe(
        self, pcm: np.ndarray, request: TranscriptionRequest, language: str | None
    ) -> tuple[LanguageGuess, Iterator[Segment]]:
        """Decode one mono block; segment times are relative to the block start."""
        ...


class EngineFactory(Protocol):
    """A picklable recipe that builds the engine inside a worker process (models load there)."""

    def __call__(self) -> Engine: ...


@dataclass(frozen=True)
class PipelineConfig:
    limits: DecodeLimits
    tmp_dir: Path
    block_seconds: float


Emit = Callable[[Segment, float, float], None]


def run_request(
    engine: Engine,
    request: TranscriptionRequest,
    config: PipelineConfig,
    emit: Emit,
    should_abort: Callable[[], bool],
) -> Transcript:
    started = time.monotonic()
    limits = config.limits
    if request.max_seconds is not None:
        limits = replace(limits, max_seconds=min(limits.max_seconds, request.max_seconds))
    segments: list[Segment] = []
    first: LanguageGuess | None = None
    with decode(request.audio, limits, keep_channels=request.separate_channels, tmp_dir=config.tmp_dir) as pcm:
        total = pcm.duration * pcm.channels
        for channel in range(pcm.channels):
            language = request.language
            for offset, block in _pieces(pcm, channel, request, config.block_seconds):
                guess, produced = engine.transcribe(block, request, language)
                first = first or guess
                language = guess.language
                for raw in produced:
                    if should_abort():
                        raise Cancelled("the request was cancelled while decoding")
                    segment = _finish(raw.placed(offset, channel, offset + len(block) / SAMPLE_RATE), request)
                    segments.append(segment)
                    emit(segment, channel * pcm.duration + min(segment.end, pcm.duration), total)
                if should_abort():
                    raise Cancelled("the request was cancelled while decoding")
        duration, channels = pcm.duration, pcm.channels
    guess = first or LanguageGuess(request.language or "en", 1.0 if request.language else 0.0)
    return Transcript(
        segments=tuple(segments),
        language=guess.language,
        language_probability=guess.probability,
        duration=duration,
        channels=channels,
        model=request.model,
        task=request.task,
        processing_seconds=time.monotonic() - started,
    )


def _pieces(
    pcm: DecodedAudio, channel: int, request: TranscriptionRequest, block_seconds: float
) -> Iterator[tuple[float, np.ndarray]]:
    """Blocks of the whole audio, or only the intervals the client asked for."""
    if not request.intervals:
        yield from pcm.blocks(channel, block_seconds)
        return
    for start, end in request.intervals:
        first, last = int(start * SAMPLE_RATE), min(int(end * SAMPLE_RATE), pcm.frames)
        if last > first:
            yield first / SAMPLE_RATE, pcm.samples(channel, first, last)


def _finish(segment: Segment, request: TranscriptionRequest) -> Segment:
    def clean(text: str) -> str:
        return postprocess(text, punctuation=request.punctuation, profanity_filter=request.profanity_filter)

    words = tuple(replace(w, text=clean(w.text)) for w in segment.words)
    return replace(
        segment,
        text=clean(segment.text),
        words=tuple(w for w in words if w.text),
        alternatives=tuple(Alternative(clean(a.text), a.confidence) for a in segment.alternatives),
    )

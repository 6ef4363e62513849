"""What a worker does with a request: plan it (decode, find speech, cut windows, pin the language)
and decode its windows; and how the server merges the windows' results back into one transcript.

The decoded PCM stays in one spooled file (16 kHz float32, interleaved channels) from planning to
the last window; windows are offsets into it, so audio crosses the pipe once, not once per window.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.core.audio import SAMPLE_RATE, DecodedAudio, decode
from app.core.engine import BatchItem, Engine, LanguageGuess, PipelineConfig
from app.core.errors import Cancelled, Internal, InvalidArgument
from app.core.text import postprocess
from app.core.types import (
    Alternative,
    AudioInput,
    RawEncoding,
    RawFormat,
    Segment,
    Transcript,
    TranscriptionRequest,
)
from app.core.windows import Span, Window, windows_for_intervals, windows_for_regions


@dataclass(frozen=True)
class Plan:
    path: str
    """The spooled PCM; the server deletes it when the request ends."""
    channels: int
    frames: int
    windows: tuple[Window, ...]
    languages: tuple[LanguageGuess | None, ...]
    """Per channel, detected once when it has several windows; None: the window detects."""

    @property
    def duration(self) -> float:
        return self.frames / SAMPLE_RATE


@dataclass(frozen=True)
class WindowWork:
    """One window to decode: where its samples are and how to decode them (no audio bytes)."""

    task: int
    window: Window
    path: str
    channels: int
    request: TranscriptionRequest
    language: str | None

    @property
    def signature(self) -> tuple[object, ...]:
        """Windows with equal signatures may share one batched decode."""
        r = self.request
        return (
            r.model,
            r.task,
            r.beam_size,
            r.temperature,
            r.word_timestamps,
            r.word_confidence,
            r.alternatives,
            r.prompt,
            r.phrases,
        )


@dataclass(frozen=True)
class WindowResult:
    index: int
    segments: tuple[Segment, ...]
    guess: LanguageGuess
    seconds: float


def window_work(task: int, plan: Plan, request: TranscriptionRequest, window: Window) -> WindowWork:
    """The work for one window; the request's audio is replaced by the spooled PCM it was decoded to."""
    spooled = AudioInput(path=plan.path, raw=RawFormat(RawEncoding.FLOAT32, SAMPLE_RATE, plan.channels))
    pinned = plan.languages[window.channel]
    language = pinned.language if pinned is not None else None
    return WindowWork(task, window, plan.path, plan.channels, replace(request, audio=spooled), language)


def make_plan(
    engine: Engine,
    request: TranscriptionRequest,
    config: PipelineConfig,
    spool: Path | None = None,
    should_abort: Callable[[], bool] = bool,
) -> Plan:
    engine.check(request)
    limits = config.limits
    if request.max_seconds is not None:
        limits = replace(limits, max_seconds=min(limits.max_seconds, request.max_seconds))
    if request.audio is None:
        raise Internal("a request without audio reached the decoder")
    pcm = decode(request.audio, limits, keep_channels=request.separate_channels, tmp_dir=config.tmp_dir, spool=spool)
    try:
        _check_length(request, pcm.frames / SAMPLE_RATE, config)
        windows: list[Window] = []
        languages: list[LanguageGuess | None] = []
        for channel in range(pcm.channels):
            spans = _channel_spans(engine, pcm, channel, request, config, should_abort)
            windows += [Window(len(windows) + i, channel, start, end) for i, (start, end) in enumerate(spans)]
            languages.append(_pinned_language(engine, pcm, channel, spans, request))
    except BaseException:
        pcm.close()
        raise
    return Plan(str(pcm.path), pcm.channels, pcm.frames, tuple(windows), tuple(languages))


def _check_length(request: TranscriptionRequest, seconds: float, config: PipelineConfig) -> None:
    if seconds < config.min_audio_seconds:
        raise InvalidArgument(
            f"Audio is too short ({seconds:.3f} s). Minimum audio length is {config.min_audio_seconds:g} seconds.",
            param="audio",
        )
    asked = sum(end - start for start, end in request.intervals)
    if asked > seconds + 0.01:
        # Repeats and overlaps count: otherwise one clip could be paid for many times over.
        raise InvalidArgument(
            f"the intervals add up to {asked:.2f} s, more than the {seconds:.2f} s of audio",
            param="intervals",
        )


def _channel_spans(
    engine: Engine,
    pcm: DecodedAudio,
    channel: int,
    request: TranscriptionRequest,
    config: PipelineConfig,
    should_abort: Callable[[], bool],
) -> list[Span]:
    def read(start: int, end: int) -> np.ndarray:
        return pcm.samples(channel, start, end)

    if request.intervals:
        asked = [(int(s * SAMPLE_RATE), min(int(e * SAMPLE_RATE), pcm.frames)) for s, e in request.intervals]
        return windows_for_intervals([(s, e) for s, e in asked if e > s], read, config.windows)
    regions: list[Span] = []
    for offset, block in pcm.blocks(channel, config.block_seconds):
        if should_abort():
            raise Cancelled("the request was cancelled while its speech was searched")
        base = round(offset * SAMPLE_RATE)
        regions += [(base + start, base + end) for start, end in engine.speech(block)]
    return windows_for_regions(regions, read, config.windows)


def _pinned_language(
    engine: Engine, pcm: DecodedAudio, channel: int, spans: list[Span], request: TranscriptionRequest
) -> LanguageGuess | None:
    """One detection per channel, on its longest early window, when several windows would otherwise
    each guess (and could disagree); a single window detects while it decodes, at no extra cost."""
    if request.language is not None:
        return LanguageGuess(request.language, 1.0)
    if len(spans) < 2:
        return None
    start, end = max(spans[:3], key=lambda span: span[1] - span[0])
    return engine.detect_language(pcm.samples(channel, start, end), request)


def decode_windows(
    engine: Engine, works: Sequence[WindowWork], should_abort: Callable[[int], bool], *, wide: bool = False
) -> list[WindowResult]:
    started = time.monotonic()
    pcms = [_samples(work) for work in works]
    if len(works) == 1:
        work = works[0]
        guess, produced = engine.transcribe(pcms[0], work.request, work.language, wide=wide)
        segments: list[Segment] = []
        for raw in produced:
            if should_abort(work.task):
                raise Cancelled("the request was cancelled while decoding")
            segments.append(raw)
        outputs = [(guess, segments)]
    else:
        outputs = engine.transcribe_batch(
            [BatchItem(pcm, work.request, work.language) for pcm, work in zip(pcms, works, strict=True)]
        )
    seconds = (time.monotonic() - started) / len(works)
    return [
        WindowResult(work.window.index, _placed(work, segments), guess, seconds)
        for work, (guess, segments) in zip(works, outputs, strict=True)
    ]


def _samples(work: WindowWork) -> np.ndarray:
    return DecodedAudio(Path(work.path), work.channels).samples(work.window.channel, work.window.start, work.window.end)


def _placed(work: WindowWork, segments: list[Segment]) -> tuple[Segment, ...]:
    w = work.window
    offset, limit = w.start / SAMPLE_RATE, w.end / SAMPLE_RATE
    return tuple(_finish(s.placed(offset, w.channel, limit), work.request) for s in segments)


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


def merge(request: TranscriptionRequest, plan: Plan, results: Sequence[WindowResult], seconds: float) -> Transcript:
    """Windows in plan order (channel, then time): segments, language, duration."""
    ordered = sorted(results, key=lambda r: r.index)
    guess = plan.languages[0] if plan.languages else None
    if guess is None:
        guess = ordered[0].guess if ordered else LanguageGuess(request.language or "en", 0.0)
    return Transcript(
        segments=tuple(s for r in ordered for s in r.segments),
        language=guess.language,
        language_probability=guess.probability,
        duration=plan.duration,
        channels=plan.channels,
        model=request.model,
        task=request.task,
        processing_seconds=seconds,
    )


def run_request(
    engine: Engine,
    request: TranscriptionRequest,
    config: PipelineConfig,
    should_abort: Callable[[], bool] = bool,
    *,
    batch_size: int = 1,
) -> Transcript:
    """The whole pipeline in this process, `batch_size` windows at a time (tests, benchmarks, tools)."""
    started = time.monotonic()
    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    spool = config.tmp_dir / f"pcm-local-{uuid.uuid4().hex}.f32"
    plan = make_plan(engine, request, config, spool)
    works = [window_work(0, plan, request, window) for window in plan.windows]
    try:
        results = [
            result
            for i in range(0, len(works), batch_size)
            for result in decode_windows(engine, works[i : i + batch_size], lambda _: should_abort())
        ]
    finally:
        spool.unlink(missing_ok=True)
    return merge(request, plan, results, time.monotonic() - started)

"""A fake engine for fast tests of the layers above the engine (pool, adapters). Never for accuracy."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from app.core.engine import BatchItem, LanguageGuess
from app.core.types import Alternative, Segment, TranscriptionRequest, Word

CRASH_PROMPT = "crash-the-worker"
HANG_PROMPT = "hang-the-worker"


@dataclass(frozen=True)
class FakeEngineFactory:
    seconds_per_segment: float = 0.0
    """Sleep per produced segment, to make requests take time."""
    segment_seconds: float = 5.0
    load_seconds: float = 0.0
    """Sleep while 'loading models', to observe readiness before the load ends."""
    text: str = "Segment {index}, fake."
    """Each segment's text; {index} is its number."""

    def __call__(self) -> FakeEngine:
        time.sleep(self.load_seconds)
        return FakeEngine(self)


class FakeEngine:
    """One segment per `segment_seconds` of audio, text 'segment N', after an optional sleep."""

    def __init__(self, config: FakeEngineFactory) -> None:
        self.config = config

    def check(self, request: TranscriptionRequest) -> None:
        pass  # the real engine counts prompt tokens (tests/test_engine.py)

    def speech(self, pcm: np.ndarray) -> list[tuple[int, int]]:
        return [(0, len(pcm))] if len(pcm) else []

    def detect_language(self, pcm: np.ndarray, request: TranscriptionRequest) -> LanguageGuess:
        return LanguageGuess(request.language_candidates[0] if request.language_candidates else "en", 0.99)

    def transcribe(
        self, pcm: np.ndarray, request: TranscriptionRequest, language: str | None, *, wide: bool = False
    ) -> tuple[LanguageGuess, Iterator[Segment]]:
        if request.prompt == CRASH_PROMPT:
            os.kill(os.getpid(), signal.SIGKILL)
        if request.prompt == HANG_PROMPT:
            time.sleep(3600)
        guess = LanguageGuess(language or self.detect_language(pcm, request).language, 0.99)
        return guess, self._segments(len(pcm) / 16000, request)

    def transcribe_batch(self, items: Sequence[BatchItem]) -> list[tuple[LanguageGuess, list[Segment]]]:
        out = []
        for item in items:
            guess, segments = self.transcribe(item.pcm, item.request, item.language)
            out.append((guess, list(segments)))
        return out

    def _segments(self, duration: float, request: TranscriptionRequest) -> Iterator[Segment]:
        start, index = 0.0, 0
        while start < duration:
            time.sleep(self.config.seconds_per_segment)
            end = min(duration, start + self.config.segment_seconds)
            text = self.config.text.format(index=index)
            if request.phrases:
                text += " hints: " + ", ".join(request.phrases)
            words = (
                (Word(start, end, f"segment-{index}", 0.9),)
                if request.word_timestamps or request.word_confidence
                else ()
            )
            alternatives = (
                tuple(
                    Alternative(text if i == 0 else f"{text} v{i}", 0.9 - i / 10) for i in range(request.alternatives)
                )
                if request.alternatives > 1
                else ()
            )
            yield Segment(
                start=0.0 + start,
                end=end,
                text=text,
                confidence=0.9,
                words=words,
                alternatives=alternatives,
                tokens=(1, 2, 3),
            )
            start, index = end, index + 1

"""The engine contract: what a worker asks of a speech engine, one window or a batch at a time.

An engine finds speech in 16 kHz mono float32 PCM, detects a language, and turns a window (at most
30 s) into segments. Everything around it (decoding files, cutting windows, channels, text
post-processing, aborts, merging) is engine-agnostic, so a fake engine exercises it and a GPU
backend with real batching plugs in by implementing `transcribe_batch`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from app.core.audio import DecodeLimits
from app.core.types import Segment, TranscriptionRequest
from app.core.windows import Span, WindowConfig


@dataclass(frozen=True)
class LanguageGuess:
    language: str
    probability: float


@dataclass(frozen=True)
class BatchItem:
    pcm: np.ndarray
    request: TranscriptionRequest
    language: str | None


class Engine(Protocol):
    def check(self, request: TranscriptionRequest) -> None:
        """Refuse (InvalidArgument) what the model cannot take, before any audio is decoded."""
        ...

    def speech(self, pcm: np.ndarray) -> list[Span]:
        """Sorted speech regions of one mono block, in samples."""
        ...

    def detect_language(self, pcm: np.ndarray, request: TranscriptionRequest) -> LanguageGuess:
        """The spoken language, among `request.language_candidates` when there are any."""
        ...

    def transcribe(
        self, pcm: np.ndarray, request: TranscriptionRequest, language: str | None, *, wide: bool = False
    ) -> tuple[LanguageGuess, Iterator[Segment]]:
        """Decode one window; segment times are relative to its start. `wide`: the other workers are
        idle and lent to this one (use every core)."""
        ...

    def transcribe_batch(self, items: Sequence[BatchItem]) -> list[tuple[LanguageGuess, list[Segment]]]:
        """Several windows with the same decoding options at once, results in order."""
        ...


class EngineFactory(Protocol):
    """A picklable recipe that builds the engine inside a worker process (models load there)."""

    def __call__(self) -> Engine: ...


@dataclass(frozen=True)
class PipelineConfig:
    limits: DecodeLimits
    tmp_dir: Path
    block_seconds: float
    """Long audio is searched for speech block by block (memory stays bounded)."""
    windows: WindowConfig = field(default_factory=WindowConfig)
    min_audio_seconds: float = 0.1
    """Shorter audio is refused (OpenAI's own minimum): it holds no word and costs a whole window."""

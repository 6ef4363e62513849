"""What every Whisper decode of app/core/whisper.py and app/core/whisper_nbest.py builds the same
way: the encoder's input, the tokenizer, the prompt and the suppressed tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.core.engine import LanguageGuess
from app.core.scripts import foreign_tokens
from app.core.types import Task, TranscriptionRequest


def encode(model: Any, pcm: np.ndarray) -> Any:
    from faster_whisper.audio import pad_or_trim

    return model.encode(pad_or_trim(model.feature_extractor(pcm)))


def tokenizer_for(model: Any, request: TranscriptionRequest, language: str) -> Any:
    from faster_whisper.tokenizer import Tokenizer

    return Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task=request.task.value, language=language)


def prompt_tokens(model: Any, tokenizer: Any, request: TranscriptionRequest, *, with_timestamps: bool) -> list[int]:
    previous = tokenizer.encode(" " + request.prompt.strip()) if request.prompt else []
    hotwords = " ".join(request.phrases) or None
    return list(model.get_prompt(tokenizer, previous, without_timestamps=not with_timestamps, hotwords=hotwords))


def suppressed(model: Any, tokenizer: Any, request: TranscriptionRequest, languages: Sequence[str | None]) -> list[int]:
    from faster_whisper.transcribe import get_suppressed_tokens

    return list(get_suppressed_tokens(tokenizer, [-1, *foreign(model, request, languages)]))


def foreign(model: Any, request: TranscriptionRequest, languages: Sequence[str | None]) -> tuple[int, ...]:
    """Letters of scripts the languages are not written in (a transcript, not a translation)."""
    if request.task is not Task.TRANSCRIBE or any(lang is None for lang in languages):
        return ()
    return foreign_tokens(model.hf_tokenizer, [lang for lang in languages if lang is not None])


def has_speech(pcm: np.ndarray) -> bool:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return bool(get_speech_timestamps(pcm, VadOptions(min_speech_duration_ms=100)))


def likeliest_language(probabilities: Sequence[tuple[str, float]], request: TranscriptionRequest) -> LanguageGuess:
    """The most likely language among the request's candidates (any when it names none)."""
    candidates = request.language_candidates
    allowed = [(p, lang) for lang, p in probabilities if not candidates or lang in candidates]
    if not allowed:
        return LanguageGuess(candidates[0], 0.0)
    probability, language = max(allowed)
    return LanguageGuess(language, float(probability))

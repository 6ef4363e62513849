"""faster-whisper (CTranslate2) engine: plain decoding for short audio, batched VAD pipeline for long."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.engine import LanguageGuess
from app.core.models import ModelSpec
from app.core.types import Alternative, Segment, TranscriptionRequest, Word

SAMPLE_RATE = 16_000
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
WINDOW = 30  # seconds Whisper's encoder sees at once


@dataclass(frozen=True)
class WhisperConfig:
    """Picklable factory: builds the engine inside each worker process."""

    models: tuple[ModelSpec, ...]
    compute_type: str = "int8"
    threads: int = 1
    beam_size: int = 5
    batched_min_seconds: float = 60.0
    batch_size: int = 8

    def __call__(self) -> WhisperEngine:
        return WhisperEngine(self)


class WhisperEngine:
    def __init__(self, config: WhisperConfig) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.config = config
        self.specs = {spec.name: spec for spec in config.models}
        # Always a local folder: a bare name would make faster-whisper try a download.
        self.models = {
            spec.name: WhisperModel(
                str(spec.path),
                device="cpu",
                compute_type=config.compute_type,
                cpu_threads=config.threads,
                local_files_only=True,
            )
            for spec in config.models
        }
        self.batched = {name: BatchedInferencePipeline(model) for name, model in self.models.items()}

    def transcribe(
        self, pcm: np.ndarray, request: TranscriptionRequest, language: str | None
    ) -> tuple[LanguageGuess, Iterator[Segment]]:
        spec = self.specs[request.model]
        model = self.models[spec.name]
        if not spec.multilingual:
            language = "en"  # SpeechService.prepare has refused translation and other languages
        words = request.word_timestamps or request.word_confidence
        if request.alternatives > 1 and not words and len(pcm) <= WINDOW * SAMPLE_RATE:
            return self._nbest_window(model, pcm, request, language)
        if language is None and request.language_candidates:
            language = self._detect_among(model, pcm, request.language_candidates)
        options: dict[str, Any] = {
            "language": language,
            "task": request.task.value,
            "beam_size": request.beam_size or self.config.beam_size,
            "word_timestamps": words,
            "initial_prompt": request.prompt or None,
            "hotwords": " ".join(request.phrases) or None,
            "temperature": FALLBACK_TEMPERATURES if request.temperature <= 0 else (request.temperature,),
        }
        if len(pcm) >= self.config.batched_min_seconds * SAMPLE_RATE:
            segments, info = self.batched[spec.name].transcribe(
                pcm, batch_size=self.config.batch_size, without_timestamps=False, **options
            )
        else:
            segments, info = model.transcribe(pcm, **options)
            segments = self._without_hallucinations(segments, pcm)
        guess = LanguageGuess(info.language, float(info.language_probability))
        return guess, self._convert(segments, pcm, request, model, info.language)

    def _nbest_window(
        self, model: Any, pcm: np.ndarray, request: TranscriptionRequest, language: str | None
    ) -> tuple[LanguageGuess, Iterator[Segment]]:
        """Up to 30 s with no word times asked for: one encoder pass and one n-best beam search give
        the segment and its alternatives together (half the work of decoding, then re-ranking)."""
        encoded = _encode(model, pcm)
        probability = 1.0
        if language is None:
            ranked = [(token[2:-2], p) for token, p in model.model.detect_language(encoded)[0]]
            candidates = request.language_candidates
            allowed = [(code, p) for code, p in ranked if not candidates or code in candidates]
            language, probability = (allowed or ranked)[0]
        tokenizer = _tokenizer(model, request, language)
        previous = tokenizer.encode(" " + request.prompt.strip()) if request.prompt else []
        hotwords = " ".join(request.phrases) or None
        prompt = model.get_prompt(tokenizer, previous, without_timestamps=True, hotwords=hotwords)
        result = self._search(model, encoded, tokenizer, request, prompt)
        guess = LanguageGuess(language, float(probability))
        if result.no_speech_prob > 0.5 and not self._has_speech(pcm):
            return guess, iter(())
        hypotheses = _distinct(tokenizer, result, [])
        if not hypotheses:
            return guess, iter(())
        segment = Segment(
            start=0.0,
            end=len(pcm) / SAMPLE_RATE,
            text=hypotheses[0].text,
            confidence=hypotheses[0].confidence,
            alternatives=tuple(hypotheses),
            tokens=tuple(result.sequences_ids[0]),
            avg_logprob=float(result.scores[0]),
            no_speech_prob=float(result.no_speech_prob),
        )
        return guess, iter((segment,))

    def _convert(
        self, segments: Any, pcm: np.ndarray, request: TranscriptionRequest, model: Any, language: str
    ) -> Iterator[Segment]:
        for s in segments:
            alternatives: tuple[Alternative, ...] = ()
            confidence = min(1.0, math.exp(s.avg_logprob))
            if request.alternatives > 1:
                alternatives = self._nbest(model, pcm, s, request, language, confidence)
            yield Segment(
                start=float(s.start),
                end=float(s.end),
                text=s.text.strip(),
                confidence=confidence,
                words=tuple(
                    Word(float(w.start), float(w.end), w.word.strip(), float(w.probability)) for w in (s.words or ())
                ),
                alternatives=alternatives,
                tokens=tuple(s.tokens),
                avg_logprob=float(s.avg_logprob),
                compression_ratio=float(s.compression_ratio),
                no_speech_prob=float(s.no_speech_prob),
                temperature=float(s.temperature or 0.0),
                seek=int(s.seek),
            )

    def _nbest(
        self, model: Any, pcm: np.ndarray, s: Any, request: TranscriptionRequest, language: str, confidence: float
    ) -> tuple[Alternative, ...]:
        """N-best for one segment: CTranslate2's num_hypotheses on the segment's own window."""
        piece = pcm[int(s.start * SAMPLE_RATE) : int(s.end * SAMPLE_RATE)]
        tokenizer = _tokenizer(model, request, language)
        result = self._search(
            model, _encode(model, piece), tokenizer, request, [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        )
        return _distinct(tokenizer, result, [Alternative(s.text.strip(), confidence)])[: request.alternatives]

    def _search(
        self, model: Any, encoded: Any, tokenizer: Any, request: TranscriptionRequest, prompt: list[int]
    ) -> Any:
        """One beam search returning the request's number of scored hypotheses."""
        from faster_whisper.transcribe import get_suppressed_tokens

        n = request.alternatives
        return model.model.generate(
            encoded,
            [prompt],
            beam_size=max(n, request.beam_size or self.config.beam_size),
            num_hypotheses=n,
            return_scores=True,
            return_no_speech_prob=True,
            max_length=224,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        )[0]

    @classmethod
    def _without_hallucinations(cls, segments: Any, pcm: np.ndarray) -> Iterator[Any]:
        """Whisper invents words ("you", "Thank you.") on silence and noise. When every segment so far
        is probably not speech, Silero VAD decides (the batched path runs VAD first anyway)."""
        doubtful: list[Any] = []
        speech = False
        for segment in segments:
            if speech or segment.no_speech_prob < 0.5:
                speech = True
                yield from doubtful
                doubtful = []
                yield segment
            else:
                doubtful.append(segment)
        if doubtful and cls._has_speech(pcm):
            yield from doubtful

    @staticmethod
    def _has_speech(pcm: np.ndarray) -> bool:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        return bool(get_speech_timestamps(pcm, VadOptions(min_speech_duration_ms=100)))

    @staticmethod
    def _detect_among(model: Any, pcm: np.ndarray, candidates: tuple[str, ...]) -> str:
        _, _, probabilities = model.detect_language(audio=pcm)
        allowed = [(p, lang) for lang, p in probabilities if lang in candidates]
        return max(allowed)[1] if allowed else candidates[0]


def _encode(model: Any, pcm: np.ndarray) -> Any:
    from faster_whisper.audio import pad_or_trim

    return model.encode(pad_or_trim(model.feature_extractor(pcm)))


def _tokenizer(model: Any, request: TranscriptionRequest, language: str) -> Any:
    from faster_whisper.tokenizer import Tokenizer

    return Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task=request.task.value, language=language)


def _distinct(tokenizer: Any, result: Any, found: list[Alternative]) -> tuple[Alternative, ...]:
    """`found` followed by the beam's hypotheses it does not already hold, best first."""
    for ids, score in zip(result.sequences_ids, result.scores, strict=True):
        text = tokenizer.decode(ids).strip()
        if text and all(text != a.text for a in found):
            found.append(Alternative(text, min(1.0, math.exp(score))))
    return tuple(found)

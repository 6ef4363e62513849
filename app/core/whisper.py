"""faster-whisper (CTranslate2) engine: one window (at most 30 s) at a time, or a batch of them.

Each worker loads every model once with its own thread budget, and once more with the whole
machine's threads for a lone window while the other workers idle (the scheduler lends them).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core import encoder_reuse
from app.core.audio import SAMPLE_RATE
from app.core.engine import BatchItem, LanguageGuess
from app.core.errors import InvalidArgument
from app.core.models import ModelSpec
from app.core.types import (
    COMPRESSION_RATIO_THRESHOLD,
    LOG_PROB_THRESHOLD,
    Alternative,
    Segment,
    TranscriptionRequest,
    Word,
)
from app.core.whisper_nbest import segment_nbest, window_nbest
from app.core.whisper_parts import foreign, has_speech, likeliest_language, prompt_tokens, suppressed, tokenizer_for
from app.core.windows import Span

FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
WINDOW = 30  # seconds Whisper's encoder sees at once
NO_SPEECH_THRESHOLD = 0.6  # with LOG_PROB_THRESHOLD (app/core/types.py): Whisper's no-speech gate
MIN_FAST_WORDS, MAX_WORDS_PER_SECOND = 6, 15.0
PREVIEW_TOKENS, PREVIEW_TOKENS_PER_SECOND = 10, 8  # English speech is 3-5 tokens a second
NEAR_END_SECONDS = 0.7  # a live final's audio ends 0.2-0.5 s into the silence after its last word
PROMPT_TOKENS = 223  # Whisper's own limit: max_length // 2 - 1 (faster-whisper silently drops the rest)


@dataclass(frozen=True)
class WhisperConfig:
    """Picklable factory: builds the engine inside each worker process."""

    models: tuple[ModelSpec, ...]
    compute_type: str = "int8"
    threads: int = 1
    wide_threads: int = 0
    """Threads of the second copy used for a lone window; 0 or <= threads: no second copy."""
    beam_size: int = 5
    vad_threshold: float = 0.5
    vad_pad_ms: int = 400
    vad_min_silence_ms: int = 300

    def __call__(self) -> WhisperEngine:
        return WhisperEngine(self)


class WhisperEngine:
    def __init__(self, config: WhisperConfig) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.config = config
        self.specs = {spec.name: spec for spec in config.models}
        self.models = {spec.name: self._load(spec, config.threads) for spec in config.models}
        # A wide decode runs only its encoder on the wide copy: the encoder gains from more threads
        # (1.66 -> 1.09 s for a 5 s clip with 3 s of lead here), the decoder's beam search loses
        # (the whole decode on two threads: 1.33 s; docs/performance.md, "Every core for a lone window's encoder").
        self.wide_encoders = (
            {spec.name: self._load(spec, config.wide_threads).encode.own for spec in config.models}
            if config.wide_threads > config.threads
            else {}
        )

    def _load(self, spec: ModelSpec, threads: int) -> Any:
        from faster_whisper import WhisperModel

        # Always a local folder: a bare name would make faster-whisper try a download.
        model = WhisperModel(
            str(spec.path),
            device="cpu",
            compute_type=self.config.compute_type,
            cpu_threads=threads,
            local_files_only=True,
        )
        encoder_reuse.install(model)
        return model

    # -- planning ----------------------------------------------------------------------------
    def check(self, request: TranscriptionRequest) -> None:
        tokenizer = self.models[request.model].hf_tokenizer
        for text, param in ((request.prompt, "prompt"), (" ".join(request.phrases), "phrases")):
            if not text:
                continue
            count = len(tokenizer.encode(" " + text.strip(), add_special_tokens=False).ids)
            if count > PROMPT_TOKENS:
                raise InvalidArgument(f"{param} is {count} tokens; Whisper reads at most {PROMPT_TOKENS}", param=param)

    def speech(self, pcm: np.ndarray) -> list[Span]:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        options = VadOptions(
            threshold=self.config.vad_threshold,
            min_silence_duration_ms=self.config.vad_min_silence_ms,
            speech_pad_ms=self.config.vad_pad_ms,
        )
        return [(int(r["start"]), int(r["end"])) for r in get_speech_timestamps(pcm, options)]

    def detect_language(self, pcm: np.ndarray, request: TranscriptionRequest) -> LanguageGuess:
        spec = self.specs[request.model]
        if not spec.multilingual:
            return LanguageGuess("en", 1.0)
        # The same detection as a decode's, so the output it keeps is reused if this worker decodes
        # `pcm` next.
        model = self.models[spec.name]
        self._prepare(model, request)
        return likeliest_language(model.encode.detect(pcm), request)

    # -- decoding ----------------------------------------------------------------------------
    def transcribe(
        self, pcm: np.ndarray, request: TranscriptionRequest, language: str | None, *, wide: bool = False
    ) -> tuple[LanguageGuess, Iterator[Segment]]:
        spec = self.specs[request.model]
        model = self.models[spec.name]
        self._prepare(model, request, wide)
        if not spec.multilingual:
            language = "en"  # SpeechService.prepare has refused translation and other languages
        words = request.word_timestamps or request.word_confidence
        if request.alternatives > 1 and not words and len(pcm) <= WINDOW * SAMPLE_RATE:
            return window_nbest(model, pcm, request, language, self.config.beam_size)
        probability = 1.0
        if language is None:
            # Detected here, not by faster-whisper, so the encoder output is decoded from too.
            detected = likeliest_language(model.encode.detect(pcm), request)
            language, probability = detected.language, detected.probability
        options = self._options(request, language, len(pcm) / SAMPLE_RATE)
        options["suppress_tokens"] = [-1, *foreign(model, request, [language])]
        segments, info = model.transcribe(pcm, **options)
        if request.stop_near_end:
            # faster-whisper decodes lazily: asking for no segment after it, no further window.
            segments = _until_near_end(segments, len(pcm) / SAMPLE_RATE)
        guess = LanguageGuess(info.language, probability)
        return guess, self._convert(self._without_hallucinations(segments, pcm), pcm, request, model, info.language)

    def transcribe_batch(self, items: Sequence[BatchItem]) -> list[tuple[LanguageGuess, list[Segment]]]:
        """Windows with the same options in one encoder call and one beam search; a window whose
        first pass fails Whisper's quality gates or stops mid-segment is decoded again on its own."""
        if len(items) == 1 or items[0].request.alternatives > 1 or items[0].request.word_timestamps:
            return [self._whole(item) for item in items]
        from faster_whisper.audio import pad_or_trim

        request = items[0].request
        spec = self.specs[request.model]
        model = self.models[spec.name]
        self._prepare(model, request)
        features = np.stack([pad_or_trim(model.feature_extractor(item.pcm)) for item in items])
        encoded = model.encode(features)
        languages = [item.language if spec.multilingual else "en" for item in items]
        if any(lang is None for lang in languages):
            detected = [ranked[0][0][2:-2] for ranked in model.model.detect_language(encoded)]
            languages = [lang or found for lang, found in zip(languages, detected, strict=True)]
        tokenizers = [tokenizer_for(model, request, lang or "en") for lang in languages]
        prompts = [prompt_tokens(model, tok, request, with_timestamps=True) for tok in tokenizers]
        results = model.model.generate(
            encoded,
            prompts,
            beam_size=request.beam_size or self.config.beam_size,
            max_length=model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppressed(model, tokenizers[0], request, languages),
        )
        out = []
        for item, tokenizer, language, result in zip(items, tokenizers, languages, results, strict=True):
            pinned = BatchItem(item.pcm, item.request, language)
            segments = self._first_pass(model, tokenizer, pinned, result)
            if segments is None:
                out.append(self._whole(pinned))
            else:
                out.append((LanguageGuess(language or "en", 1.0), segments))
        return out

    def _prepare(self, model: Any, request: TranscriptionRequest, wide: bool = False) -> None:
        """The request's encoder padding and the encoder's threads for the decode about to run (a
        worker runs one at a time)."""
        seconds = request.encoder_padding_seconds
        model.encode.padding = round(seconds * 100) if seconds is not None and seconds < WINDOW else None
        model.encode.run_on(self.wide_encoders.get(request.model) if wide else None)

    def _whole(self, item: BatchItem) -> tuple[LanguageGuess, list[Segment]]:
        guess, segments = self.transcribe(item.pcm, item.request, item.language)
        return guess, list(segments)

    def _first_pass(self, model: Any, tokenizer: Any, item: BatchItem, result: Any) -> list[Segment] | None:
        from faster_whisper.transcribe import get_compression_ratio

        tokens = list(result.sequences_ids[0])
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        text = tokenizer.decode([t for t in tokens if t < tokenizer.eot]).strip()
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOG_PROB_THRESHOLD:
            return [] if not has_speech(item.pcm) else None
        if get_compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD or avg_logprob < LOG_PROB_THRESHOLD:
            return None
        duration = len(item.pcm) / SAMPLE_RATE
        frames = round(duration * model.frames_per_second)
        pieces, seek, _ = model._split_segments_by_timestamps(tokenizer, tokens, 0.0, frames, duration, 0)
        segments = self._pieces(tokenizer, pieces, duration, avg_logprob, float(result.no_speech_prob))
        cut = seek * SAMPLE_RATE // model.frames_per_second
        rest = item.pcm[cut:]
        if len(rest) > SAMPLE_RATE // 2 and has_speech(rest):
            # Whisper stopped before speech that is still there: as the sequential decoder does,
            # decode on from that point.
            _, more = self.transcribe(rest, item.request, item.language)
            segments += [s.placed(cut / SAMPLE_RATE, 0, duration) for s in more]
        return segments

    @staticmethod
    def _pieces(
        tokenizer: Any, pieces: list[dict[str, Any]], duration: float, avg_logprob: float, no_speech: float
    ) -> list[Segment]:
        from faster_whisper.transcribe import get_compression_ratio

        confidence = min(1.0, math.exp(avg_logprob))
        segments = []
        for piece in pieces:
            piece_text = tokenizer.decode(piece["tokens"]).strip()
            if piece_text:
                segments.append(
                    Segment(
                        start=float(piece["start"]),
                        end=float(min(piece["end"], duration)),
                        text=piece_text,
                        confidence=confidence,
                        tokens=tuple(piece["tokens"]),
                        avg_logprob=float(avg_logprob),
                        compression_ratio=float(get_compression_ratio(piece_text)),
                        no_speech_prob=no_speech,
                    )
                )
        return segments

    def _options(self, request: TranscriptionRequest, language: str | None, seconds: float) -> dict[str, Any]:
        options: dict[str, Any] = {
            "language": language,
            "task": request.task.value,
            "beam_size": request.beam_size or self.config.beam_size,
            "word_timestamps": request.word_timestamps or request.word_confidence,
            "initial_prompt": request.prompt or None,
            "hotwords": " ".join(request.phrases) or None,
            "temperature": FALLBACK_TEMPERATURES if request.temperature <= 0 else (request.temperature,),
        }
        if request.bounded:
            # Whisper loops on some cut-off audio (the open end of an utterance): 12 s until the
            # fallback temperatures gave up, measured, against 0.26 s for a median partial.
            options["temperature"] = (0.0,)
            options["max_new_tokens"] = PREVIEW_TOKENS + round(PREVIEW_TOKENS_PER_SECOND * seconds)
        return options

    def _convert(
        self, segments: Any, pcm: np.ndarray, request: TranscriptionRequest, model: Any, language: str
    ) -> Iterator[Segment]:
        for s in segments:
            alternatives: tuple[Alternative, ...] = ()
            confidence = min(1.0, math.exp(s.avg_logprob))
            if request.alternatives > 1:
                alternatives = segment_nbest(model, pcm, s, request, language, confidence, self.config.beam_size)
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

    @classmethod
    def _without_hallucinations(cls, segments: Any, pcm: np.ndarray) -> Iterator[Any]:
        """Whisper invents words ("you", "Thank you.") on silence and noise. When every segment so far
        is probably not speech, Silero VAD decides. Lazy: each segment goes on as soon as it is known."""
        doubtful: list[Any] = []
        speech = False
        duration = len(pcm) / SAMPLE_RATE
        for segment in segments:
            if _too_fast(segment, duration):
                continue
            if speech or segment.no_speech_prob < 0.5:
                speech = True
                yield from doubtful
                doubtful = []
                yield segment
            else:
                doubtful.append(segment)
        if doubtful and has_speech(pcm):
            yield from doubtful


def _until_near_end(segments: Iterator[Any], duration: float) -> Iterator[Any]:
    """The segments up to the first that ends within NEAR_END_SECONDS of the audio's end."""
    for segment in segments:
        yield segment
        if segment.end >= duration - NEAR_END_SECONDS:
            return


def _too_fast(segment: Any, duration: float) -> bool:
    """More words than anyone says in the segment's time: Whisper copying its prompt into the last
    instant of a window (a 20-word sentence of the previous window in 0.2 s, seen on the long clip).
    Fast speech is 4-6 words a second."""
    words = len(segment.text.split())
    # Its end as the audio allows: Whisper times such a copy past the end of the window's audio.
    seconds = max(min(segment.end, duration) - segment.start, 0.0)
    return words >= MIN_FAST_WORDS and words > MAX_WORDS_PER_SECOND * seconds

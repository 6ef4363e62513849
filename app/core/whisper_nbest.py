"""N-best lists from Whisper: CTranslate2's num_hypotheses on one beam search, for a whole window
(no word times asked for) or for one segment of a sequential decode."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from app.core.audio import SAMPLE_RATE
from app.core.engine import LanguageGuess
from app.core.types import Alternative, Segment, TranscriptionRequest
from app.core.whisper_parts import encode, has_speech, likeliest_language, prompt_tokens, suppressed, tokenizer_for


def window_nbest(
    model: Any, pcm: np.ndarray, request: TranscriptionRequest, language: str | None, beam_size: int
) -> tuple[LanguageGuess, Iterator[Segment]]:
    """Up to 30 s with no word times asked for: one encoder pass and one n-best beam search give
    the segment and its alternatives together (half the work of decoding, then re-ranking)."""
    encoded = encode(model, pcm)
    probability = 1.0
    if language is None:
        ranked = [(token[2:-2], p) for token, p in model.model.detect_language(encoded)[0]]
        detected = likeliest_language(ranked, request)
        language, probability = detected.language, detected.probability
    tokenizer = tokenizer_for(model, request, language)
    prompt = prompt_tokens(model, tokenizer, request, with_timestamps=False)
    result = search(model, encoded, tokenizer, request, prompt, beam_size)
    guess = LanguageGuess(language, float(probability))
    if result.no_speech_prob > 0.5 and not has_speech(pcm):
        return guess, iter(())
    hypotheses = distinct(tokenizer, result, [])
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


def segment_nbest(
    model: Any,
    pcm: np.ndarray,
    s: Any,
    request: TranscriptionRequest,
    language: str,
    confidence: float,
    beam_size: int,
) -> tuple[Alternative, ...]:
    """N-best for one segment: CTranslate2's num_hypotheses on the segment's own window."""
    piece = pcm[int(s.start * SAMPLE_RATE) : int(s.end * SAMPLE_RATE)]
    tokenizer = tokenizer_for(model, request, language)
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    result = search(model, encode(model, piece), tokenizer, request, prompt, beam_size)
    found = distinct(tokenizer, result, [Alternative(s.text.strip(), confidence)])[: request.alternatives]
    return ranked(found)


def search(
    model: Any, encoded: Any, tokenizer: Any, request: TranscriptionRequest, prompt: list[int], beam_size: int
) -> Any:
    """One beam search returning the request's number of scored hypotheses."""
    n = request.alternatives
    return model.model.generate(
        encoded,
        [prompt],
        beam_size=max(n, request.beam_size or beam_size),
        num_hypotheses=n,
        return_scores=True,
        return_no_speech_prob=True,
        max_length=224,
        suppress_tokens=suppressed(model, tokenizer, request, [tokenizer.language_code]),
    )[0]


def ranked(alternatives: tuple[Alternative, ...]) -> tuple[Alternative, ...]:
    """Confidences that agree with the order. The first alternative is the segment's own decode
    (scored by its mean token log-probability), the others the beam's (scored by the search): the
    two measures differ, so the first takes the best score of either and each later one is capped
    by the one before it."""
    if not alternatives:
        return alternatives
    top = max(a.confidence for a in alternatives)
    out = [Alternative(alternatives[0].text, top)]
    for a in alternatives[1:]:
        out.append(Alternative(a.text, min(a.confidence, out[-1].confidence)))
    return tuple(out)


def distinct(tokenizer: Any, result: Any, found: list[Alternative]) -> tuple[Alternative, ...]:
    """`found` followed by the beam's hypotheses it does not already hold, best first."""
    for ids, score in zip(result.sequences_ids, result.scores, strict=True):
        text = tokenizer.decode(ids).strip()
        if text and all(text != a.text for a in found):
            found.append(Alternative(text, min(1.0, math.exp(score))))
    return tuple(found)

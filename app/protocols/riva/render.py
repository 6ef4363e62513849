"""Transcripts -> Riva's result messages (word times in milliseconds, as Riva's)."""

from __future__ import annotations

from riva.client.proto import riva_asr_pb2

from app.core.types import Segment, Transcript, Word, joined_alternatives


def _words(words: tuple[Word, ...], language: str) -> list[riva_asr_pb2.WordInfo]:
    return [
        riva_asr_pb2.WordInfo(
            start_time=round(w.start * 1000),
            end_time=round(w.end * 1000),
            word=w.text.strip(),
            confidence=w.probability,
            language_code=language,
        )
        for w in words
    ]


def _alternatives(
    segments: list[Segment], words: tuple[Word, ...], depth: int, language: str, with_words: bool
) -> list[riva_asr_pb2.SpeechRecognitionAlternative]:
    alternatives = []
    for k, best in enumerate(joined_alternatives(segments, depth)):
        alternative = riva_asr_pb2.SpeechRecognitionAlternative(
            transcript=best.text, confidence=best.confidence, language_code=[language] if language else []
        )
        if k == 0 and with_words:
            alternative.words.extend(_words(words, language))
        alternatives.append(alternative)
    return alternatives


def language_of(transcript: Transcript, tag: str) -> str:
    """The tag the client asked for, else the language detected (ISO-639-1)."""
    return tag or transcript.language


def recognize_response(
    transcript: Transcript, depth: int, tag: str, with_words: bool
) -> riva_asr_pb2.RecognizeResponse:
    """One result per segment (per channel, tagged, when recognised apart), like Riva's offline."""
    language = language_of(transcript, tag)
    results = []
    for segment in transcript.segments:
        if not segment.text.strip():
            continue
        result = riva_asr_pb2.SpeechRecognitionResult(
            alternatives=_alternatives([segment], segment.words, depth, language, with_words),
            channel_tag=segment.channel + 1 if transcript.channels > 1 else 0,
            audio_processed=segment.end,
        )
        results.append(result)
    return riva_asr_pb2.RecognizeResponse(results=results)


def final_result(
    transcript: Transcript, depth: int, tag: str, with_words: bool, processed: float
) -> riva_asr_pb2.StreamingRecognitionResult:
    segments = [s for s in transcript.segments if s.text.strip()]
    language = language_of(transcript, tag)
    return riva_asr_pb2.StreamingRecognitionResult(
        alternatives=_alternatives(segments, transcript.words, depth, language, with_words),
        is_final=True,
        stability=1.0,
        audio_processed=processed,
    )


def interim_result(text: str, tag: str, processed: float) -> riva_asr_pb2.StreamingRecognitionResult:
    alternative = riva_asr_pb2.SpeechRecognitionAlternative(transcript=text.strip(), language_code=[tag] if tag else [])
    return riva_asr_pb2.StreamingRecognitionResult(
        alternatives=[alternative], is_final=False, stability=0.5, audio_processed=processed
    )

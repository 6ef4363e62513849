"""The engine's rules over Whisper's segments, without a model."""

from __future__ import annotations

from types import SimpleNamespace

from app.core.whisper import _too_fast


def segment(text: str, start: float, end: float) -> SimpleNamespace:
    return SimpleNamespace(text=text, start=start, end=end)


def test_a_sentence_in_an_instant_is_a_copied_prompt() -> None:
    copied = "We were all going direct to heaven, we were all going direct to heaven"
    assert _too_fast(segment(copied, 29.8, 30.0), duration=30.0)
    # Timed past the audio's end: what counts is the time the audio holds.
    assert _too_fast(segment(copied, 9.8, 30.0), duration=10.0)


def test_fast_and_short_speech_is_kept() -> None:
    assert not _too_fast(segment("Go forward, ten meters.", 0.0, 0.4), duration=5.0)  # few words
    assert not _too_fast(segment("It was the best of times, it was the worst of times", 0.0, 2.0), duration=5.0)

"""Which of Whisper's tokens a language's transcript may not hold: on the bundled model's real
vocabulary (fast: no decoding)."""

from __future__ import annotations

import pytest
import tokenizers

from app.core.models import build_registry
from app.core.scripts import foreign_tokens, scripts_of
from app.core.types import Task, TranscriptionRequest
from app.core.whisper_parts import foreign as _foreign
from app.settings import Settings


@pytest.fixture(scope="module")
def vocabulary() -> tokenizers.Tokenizer:
    registry = build_registry(["whisper-base"], {}, "whisper-base", Settings().cache_dir)
    return tokenizers.Tokenizer.from_file(str(registry.specs["whisper-base"].path / "tokenizer.json"))


def ids(vocabulary: tokenizers.Tokenizer, text: str) -> list[int]:
    return list(vocabulary.encode(text, add_special_tokens=False).ids)


def test_hindi_may_not_hold_the_letters_whisper_base_mixed_into_it(vocabulary: tokenizers.Tokenizer) -> None:
    suppressed = set(foreign_tokens(vocabulary, ["hi"]))
    # What whisper-base wrote for tests/data/espeak_hi.wav: Urdu's script, or Cyrillic and Tamil
    # letters inside Devanagari words.
    for foreign in ("میں مارت دیش", "е", "ш", " க"):
        assert set(ids(vocabulary, foreign)) <= suppressed, foreign
    for allowed in ("मैं भारत देश का निवासी हूँ। मुझे अपने देश पर गर्व है।", "the 10 best, ok?"):
        assert not set(ids(vocabulary, allowed)) & suppressed, allowed
    # Bengali ends its sentences with the Devanagari danda.
    assert not set(ids(vocabulary, "আমি ভাত খাই।")) & set(foreign_tokens(vocabulary, ["bn"]))


def test_a_language_written_in_two_scripts_may_use_either(vocabulary: tokenizers.Tokenizer) -> None:
    punjabi = set(foreign_tokens(vocabulary, ["pa"]))  # Gurmukhi in India, Shahmukhi in Pakistan
    assert not set(ids(vocabulary, "ਪੰਜਾਬੀ پنجابی")) & punjabi
    assert set(ids(vocabulary, " க")) <= punjabi and set(ids(vocabulary, "е")) <= punjabi


def test_bytes_count_once_they_fix_the_script() -> None:
    tamil_ka, devanagari_ka = "க".encode(), "क".encode()
    assert scripts_of(tamil_ka[:2]) == {"tamil"}  # E0 AE: only Tamil begins so
    assert scripts_of(tamil_ka[:1]) == frozenset()  # E0: any Indic script
    assert scripts_of(tamil_ka[1:]) == frozenset()  # a character's tail: its block is unknown
    assert scripts_of(devanagari_ka + "ш".encode()) == {"devanagari", "cyrillic"}
    assert scripts_of(b"plain ascii") == frozenset()


def test_latin_languages_and_translations_are_left_alone(vocabulary: tokenizers.Tokenizer) -> None:
    assert foreign_tokens(vocabulary, ["en"]) == () and foreign_tokens(vocabulary, ["hi", "fr"]) == ()
    both = set(foreign_tokens(vocabulary, ["hi", "ru"]))  # a batch of both: only what neither writes
    assert not set(ids(vocabulary, "ш देश")) & both and set(ids(vocabulary, " க")) <= both

    class Model:
        hf_tokenizer = vocabulary

    transcribe = TranscriptionRequest(language="hi")
    assert _foreign(Model, transcribe, ["hi"]) == foreign_tokens(vocabulary, ["hi"])
    assert _foreign(Model, TranscriptionRequest(language="hi", task=Task.TRANSLATE), ["hi"]) == ()
    assert _foreign(Model, transcribe, [None]) == ()


def test_the_ids_are_listed_once_per_tokenizer_and_script_set(vocabulary: tokenizers.Tokenizer) -> None:
    hindi = foreign_tokens(vocabulary, ["hi"])
    assert foreign_tokens(vocabulary, ["mr"]) is hindi  # Marathi is written in Devanagari too
    assert foreign_tokens(vocabulary, ["hi", "mr"]) is hindi
    assert foreign_tokens(vocabulary, ["bn"]) is not hindi

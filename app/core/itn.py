"""Inverse text normalisation: spoken numbers written as digits ("ten meters" -> "10 meters").

text2num's grammars (English, French, Spanish, Portuguese, German, Italian and Dutch);
text in any other language comes back unchanged. Below `threshold` a lone number stays a word
("one of them"), as text2num's own default has it."""

from __future__ import annotations

from text_to_num import alpha2digit

LANGUAGES = frozenset({"en", "fr", "es", "pt", "de", "it", "nl"})
THRESHOLD = 3.0


def supported(language: str | None) -> bool:
    return language in LANGUAGES


def numbers_as_digits(text: str, language: str | None) -> str:
    if not text or language not in LANGUAGES:
        return text
    return str(alpha2digit(text, language, threshold=THRESHOLD))

"""Tokens in a script the language is not written in, for Whisper to leave out.

whisper-base asked for Hindi wrote tests/data/espeak_hi.wav in Urdu's script; with a Devanagari
prompt instead, it fell back to sampling and wrote "लेеш கबी": Cyrillic and Tamil letters inside
Devanagari words. A language written in a script of its own
gets every token suppressed that holds a letter of another script of the table below; Latin, digits
and punctuation stay allowed everywhere (code-mixed English, numbers, names). Languages written in
Latin script are left as they are.

Whisper's tokens are byte-level: a token may hold the first bytes of a character and no more. Those
count when the bytes already fix the script (E0 AE is Tamil; E0 alone could be any Indic script, and
E0 A5 could still be the danda every Indic script ends its sentences with).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

BLOCKS: dict[str, tuple[tuple[int, int], ...]] = {
    "greek": ((0x0370, 0x03FF), (0x1F00, 0x1FFF)),
    "cyrillic": ((0x0400, 0x052F),),
    "armenian": ((0x0530, 0x058F),),
    "hebrew": ((0x0590, 0x05FF),),
    "arabic": ((0x0600, 0x06FF), (0x0750, 0x077F), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    "devanagari": ((0x0900, 0x0963), (0x0966, 0x097F)),  # the dandas (0964-5) serve every Indic script
    "bengali": ((0x0980, 0x09FF),),
    "gurmukhi": ((0x0A00, 0x0A7F),),
    "gujarati": ((0x0A80, 0x0AFF),),
    "oriya": ((0x0B00, 0x0B7F),),
    "tamil": ((0x0B80, 0x0BFF),),
    "telugu": ((0x0C00, 0x0C7F),),
    "kannada": ((0x0C80, 0x0CFF),),
    "malayalam": ((0x0D00, 0x0D7F),),
    "sinhala": ((0x0D80, 0x0DFF),),
    "thai": ((0x0E00, 0x0E7F),),
    "lao": ((0x0E80, 0x0EFF),),
    "tibetan": ((0x0F00, 0x0FFF),),
    "myanmar": ((0x1000, 0x109F),),
    "georgian": ((0x10A0, 0x10FF),),
    "hangul": ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF)),
    "ethiopic": ((0x1200, 0x139F),),
    "khmer": ((0x1780, 0x17FF),),
    "kana": ((0x3040, 0x30FF), (0x31F0, 0x31FF)),
    "bopomofo": ((0x3100, 0x312F),),
    "han": ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)),
}

SCRIPTS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("hi", "mr", "ne", "sa"), frozenset({"devanagari"})),
    **dict.fromkeys(("bn", "as"), frozenset({"bengali"})),
    "pa": frozenset({"gurmukhi", "arabic"}),  # Gurmukhi in India, Shahmukhi in Pakistan
    "gu": frozenset({"gujarati"}),
    "ta": frozenset({"tamil"}),
    "te": frozenset({"telugu"}),
    "kn": frozenset({"kannada"}),
    "ml": frozenset({"malayalam"}),
    "si": frozenset({"sinhala"}),
    "th": frozenset({"thai"}),
    "lo": frozenset({"lao"}),
    "bo": frozenset({"tibetan"}),
    "my": frozenset({"myanmar"}),
    "km": frozenset({"khmer"}),
    "ka": frozenset({"georgian"}),
    "hy": frozenset({"armenian"}),
    "am": frozenset({"ethiopic"}),
    "el": frozenset({"greek"}),
    **dict.fromkeys(("he", "yi"), frozenset({"hebrew"})),
    **dict.fromkeys(("ar", "fa", "ur", "ps"), frozenset({"arabic"})),
    "sd": frozenset({"arabic", "devanagari"}),  # Sindhi: Arabic script in Pakistan, Devanagari in India
    **dict.fromkeys(("ru", "uk", "be", "bg", "mk", "sr", "kk", "tg", "mn", "ba", "tt"), frozenset({"cyrillic"})),
    "ko": frozenset({"hangul", "han"}),
    "ja": frozenset({"kana", "han"}),
    **dict.fromkeys(("zh", "yue"), frozenset({"han", "bopomofo"})),
}

_analysed: dict[int, tuple[Any, list[tuple[int, frozenset[str]]]]] = {}
_foreign: dict[tuple[int, frozenset[str]], tuple[int, ...]] = {}


def foreign_tokens(hf_tokenizer: Any, languages: Iterable[str]) -> tuple[int, ...]:
    """Ids of the tokens no language of `languages` is written with (none when one of them is
    written in Latin script or is unknown here)."""
    allowed: set[str] = set()
    for language in languages:
        scripts = SCRIPTS.get(language)
        if scripts is None:
            return ()
        allowed |= scripts
    key = (id(hf_tokenizer), frozenset(allowed))
    if key not in _foreign:  # every decode asks: the 8.5 k ids are listed once per script set
        marked = _scripts_of_tokens(hf_tokenizer)  # holds the tokenizer, so its id is not reused
        _foreign[key] = tuple(token for token, scripts in marked if not scripts <= allowed)
    return _foreign[key]


def scripts_of(raw: bytes) -> frozenset[str]:
    """The scripts of the table whose letters `raw` holds, or begins to hold."""
    found: set[str] = set()
    i = 0
    while i < len(raw):
        lead = raw[i]
        size = 1 if lead < 0x80 else 2 if 0xC0 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4
        if 0x80 <= lead < 0xC0 or lead >= 0xF8:
            i += 1  # the tail of a character begun in another token: its block is unknown
            continue
        head = raw[i : i + size]
        lowest = _code_point(head + b"\x80" * (size - len(head)))
        highest = _code_point(head + b"\xbf" * (size - len(head)))
        script = _script(lowest, highest)
        if script is not None:
            found.add(script)
        i += size
    return frozenset(found)


def _scripts_of_tokens(hf_tokenizer: Any) -> list[tuple[int, frozenset[str]]]:
    key = id(hf_tokenizer)
    if key not in _analysed:
        decoder = _byte_decoder()
        marked: list[tuple[int, frozenset[str]]] = []
        for text, token in hf_tokenizer.get_vocab().items():
            raw = bytes(decoder.get(c, 0) for c in text)
            if raw.isascii() or text.startswith("<|"):
                continue
            scripts = scripts_of(raw)
            if scripts:
                marked.append((token, scripts))
        _analysed[key] = (hf_tokenizer, marked)  # the tokenizer held, so its id is not reused
    return _analysed[key][1]


def _code_point(sequence: bytes) -> int:
    if len(sequence) == 1:
        return sequence[0]
    value = sequence[0] & (0x7F >> len(sequence))
    for byte in sequence[1:]:
        value = (value << 6) | (byte & 0x3F)
    return value


_RANGES = sorted((low, high, script) for script, ranges in BLOCKS.items() for low, high in ranges)
_LOWS = [low for low, _, _ in _RANGES]


def _script(lowest: int, highest: int) -> str | None:
    """The script every code point from `lowest` to `highest` belongs to, if one does."""
    at = bisect.bisect_right(_LOWS, lowest) - 1
    if at >= 0 and highest <= _RANGES[at][1]:
        return _RANGES[at][2]
    return None


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, which Whisper's vocabulary is written in: character -> byte."""
    printable: Sequence[int] = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    pairs = [(chr(b), b) for b in printable] + [(chr(256 + n), b) for n, b in enumerate(others)]
    return dict(pairs)

"""Text post-processing applied to every engine's output: punctuation removal and profanity masking."""

from __future__ import annotations

import re
import unicodedata

# Words masked when a request asks for a profanity filter (Google masks all but the first letter).
PROFANITY = frozenset(
    """
    arse arsehole ass asshole bastard bitch bitches bollocks bullshit cock cocks crap cunt cunts
    damn dick dickhead dildo fag faggot fuck fucked fucker fuckers fucking fucks goddamn horseshit
    motherfucker motherfuckers motherfucking nigga nigger piss pissed prick pussy shit shits shitty
    slut twat wank wanker whore
    """.split()  # noqa: SIM905
)
_WORD = re.compile(r"[\w']+", re.UNICODE)


def mask_profanity(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        word = match.group(0)
        if word.lower().strip("'") in PROFANITY:
            return word[0] + "*" * (len(word) - 1)
        return word

    return _WORD.sub(mask, text)


def strip_punctuation(text: str) -> str:
    """Lower-case text without punctuation; apostrophes and hyphens inside words stay."""
    kept = []
    for i, ch in enumerate(text):
        if unicodedata.category(ch).startswith("P"):
            inner = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            if not (inner and ch in "'’-"):
                kept.append(" ")
                continue
        kept.append(ch)
    return " ".join("".join(kept).split()).lower()


def postprocess(text: str, *, punctuation: bool, profanity_filter: bool) -> str:
    if not punctuation:
        text = strip_punctuation(text)
    if profanity_filter:
        text = mask_profanity(text)
    return text.strip()

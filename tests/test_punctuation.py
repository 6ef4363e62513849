"""The shipped English punctuation/casing model (app/models/punctuation/en) through
app/core/punctuation.py: held-out quality bounds (scored as bench/punctuation.py does) and the
runtime's handling of empty, numeric, long and already-punctuated text."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.core.punctuation import MODELS_DIR, Punctuator, available_languages, split_token, word_labels
from app.core.punctuation_eval import Scores, chunks, evaluate

HELDOUT = Path(__file__).parent / "data" / "punctuation" / "en_heldout.txt"
F1_FLOOR = 0.66  # what the shipped model reaches on HELDOUT (0.676), less a margin; the target
# is 0.75, not met yet (MODEL_CARD.md): this bound catches a regression, it does not claim the target


@pytest.fixture(scope="module")
def en() -> Punctuator:
    return Punctuator.for_language("en")


def test_available_languages() -> None:
    assert "en" in available_languages()
    assert available_languages(MODELS_DIR / "nonexistent") == []


@pytest.fixture(scope="module")
def heldout_scores(en: Punctuator) -> Scores:
    return evaluate(en.punctuate, chunks(HELDOUT.read_text(encoding="utf-8").splitlines(), 200))


def test_heldout_quality(heldout_scores: Scores) -> None:
    """What the shipped model reaches (see its MODEL_CARD.md), less a small margin: a regression
    bound. Casing meets the issue's target (>= 0.95)."""
    assert heldout_scores.words > 3000
    _, _, micro = heldout_scores.prf()
    assert micro >= F1_FLOOR, f"micro F1 {micro:.3f}"
    assert heldout_scores.case_accuracy >= 0.95, f"casing {heldout_scores.case_accuracy:.4f}"


def test_empty(en: Punctuator) -> None:
    assert en.punctuate("") == ""
    assert en.punctuate("   \n ") == ""


def test_simple_sentence(en: Punctuator) -> None:
    out = en.punctuate("hello how are you i am fine thank you")
    assert out[0] == "H"
    assert " I " in f" {out} "
    assert out[-1] in ".?"


def test_digits_and_unknown_tokens_unchanged(en: Punctuator) -> None:
    words = ["it", "costs", "3.50", "dollars", "and", "20%", "of", "1999", "on", "x86_64", "or", "2nd", "place"]
    out = en.punctuate(" ".join(words)).split()
    assert len(out) == len(words)
    for w, o in zip(words, out, strict=True):
        if any(c.isdigit() for c in w):
            assert o.rstrip(",.?") == w, (w, o)
        else:
            assert o.rstrip(",.?").lower() == w, (w, o)
    assert en.punctuate("42") == "42."
    assert en.punctuate("— &") == "— &"


def test_long_input_keeps_every_word_in_order(en: Punctuator) -> None:
    base = HELDOUT.read_text(encoding="utf-8").split()[:700]
    words = [split_token(w)[1].lower() for w in base if split_token(w)[1]]
    out = en.punctuate(" ".join(words))
    assert [core.lower() for core, _, _ in word_labels(out)] == words


def test_already_punctuated_input(en: Punctuator) -> None:
    clean = en.punctuate("the cat sat on the mat it was happy")
    assert en.punctuate("The cat, sat on the mat! It was happy?") == clean
    assert en.punctuate(clean) == clean


def test_final_mark_optional(en: Punctuator) -> None:
    assert en.punctuate("so we went to the", final_mark=False)[-1].isalpha()


def test_thread_safe_lazy_load() -> None:
    p = Punctuator.for_language("en")
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(p.punctuate("yes we can"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1

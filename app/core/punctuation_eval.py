"""Scoring for the punctuation model, shared by bench/punctuation.py and the tests: per-mark
precision/recall/F1 over , . ?, their micro F1 and first-letter casing accuracy."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from app.core.punctuation import MARKS, word_labels


@dataclass
class Scores:
    """Per-mark precision/recall/F1 over , . ? plus micro F1 and first-letter casing accuracy."""

    tp: dict[str, int]
    fp: dict[str, int]
    fn: dict[str, int]
    case_correct: int
    case_total: int
    words: int

    def prf(self, mark: str | None = None) -> tuple[float, float, float]:
        keys = [mark] if mark else list(MARKS[1:])
        tp, fp, fn = (sum(d[k] for k in keys) for d in (self.tp, self.fp, self.fn))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    @property
    def case_accuracy(self) -> float:
        return self.case_correct / self.case_total if self.case_total else 0.0


def chunks(lines: Iterable[str], words: int = 200) -> list[str]:
    """Consecutive lines joined into chunks of at least ``words`` words (as an ASR stream)."""
    out: list[str] = []
    cur: list[str] = []
    for line in lines:
        cur.append(line.strip())
        if sum(len(c.split()) for c in cur) >= words:
            out.append(" ".join(cur))
            cur = []
    return out + ([" ".join(cur)] if cur else [])


def evaluate(punctuate: Callable[[str], str], references: Iterable[str]) -> Scores:
    """Feed each reference as lower-case words without marks and score the output."""
    tp, fp, fn = ({m: 0 for m in MARKS[1:]} for _ in range(3))
    correct = total = words = 0
    for text in references:
        ref = word_labels(text)
        if not ref:
            continue
        hyp = word_labels(punctuate(" ".join(core.lower() for core, _, _ in ref)))
        if len(hyp) != len(ref):
            raise ValueError(f"word count changed: {len(ref)} -> {len(hyp)}")
        words += len(ref)
        for (core, rm, rc), (_, hm, hc) in zip(ref, hyp, strict=True):
            if rm == hm and rm:
                tp[rm] += 1
            else:
                if hm:
                    fp[hm] += 1
                if rm:
                    fn[rm] += 1
            if core[:1].isalpha():
                total += 1
                correct += (rc > 0) == (hc > 0)
    return Scores(tp, fp, fn, correct, total, words)

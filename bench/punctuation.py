"""Punctuation and casing: the shipped English model (app/core/punctuation.py, onnxruntime, one
thread) on the held-out text, fed as lower-case words without marks in chunks of about 200
words. Prints per-mark precision/recall/F1 over , . ?, micro F1, first-letter casing accuracy
and the median ms per 100 words (targets: F1 >= 0.75, casing >= 0.95, <= 50 ms / 100 words).

    .venv/bin/python -m bench.punctuation [--file tests/data/punctuation/en_heldout.txt] [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from app.core.punctuation import MARKS, Punctuator
from app.core.punctuation_eval import chunks, evaluate
from bench.common import ROOT, machine_info, report

HELDOUT = ROOT / "tests" / "data" / "punctuation" / "en_heldout.txt"
F1_TARGET, CASE_TARGET, MS_TARGET = 0.75, 0.95, 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=HELDOUT, help="punctuated, cased text, one paragraph a line")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--words", type=int, default=200, help="words per input chunk")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the text (median)")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    args = parser.parse_args()

    punctuator = Punctuator.for_language(args.lang)
    texts = chunks(args.file.read_text(encoding="utf-8").splitlines(), args.words)
    scores = evaluate(punctuator.punctuate, texts)
    inputs = [" ".join(w.lower() for w in t.split()) for t in texts]
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for text in inputs:
            punctuator.punctuate(text)
        times.append(time.perf_counter() - start)
    ms_per_100 = statistics.median(times) * 1000 / scores.words * 100

    rows = []
    for mark in MARKS[1:]:
        p, r, f = scores.prf(mark)
        support = scores.tp[mark] + scores.fn[mark]
        rows.append([f"`{mark}`", f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", str(support)])
    p, r, f = scores.prf()
    rows.append([f"micro , . ? (target >= {F1_TARGET})", f"{p:.3f}", f"{r:.3f}", f"**{f:.3f}**", ""])
    context = [
        machine_info(),
        f"Text: {args.file.relative_to(ROOT) if args.file.is_relative_to(ROOT) else args.file}, "
        f"{scores.words} words in {len(texts)} chunks of ~{args.words} words; onnxruntime, 1 intra-op thread.",
        f"First-letter casing accuracy: **{scores.case_accuracy:.4f}** (target >= {CASE_TARGET}).",
        f"Speed: **{ms_per_100:.1f} ms per 100 words** (median of {args.repeats} passes; target <= {MS_TARGET}).",
    ]
    report(
        f"Punctuation and casing ({args.lang})",
        context,
        ["mark", "precision", "recall", "F1", "support"],
        rows,
        args.out,
    )


if __name__ == "__main__":
    main()

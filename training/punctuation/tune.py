#!/usr/bin/env python3
"""Tune per-mark logit biases of a shipped model on the dev text (held-out documents that are
not in the test file) for the best micro F1 over , . ?, and store them in its labels.json as
``mark_bias``. Runs with either venv (needs onnxruntime, tokenizers, numpy):

    .venv/bin/python training/punctuation/tune.py --model app/models/punctuation/en --dev /work/punct-data/dev.txt
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.core.punctuation import MARKS, Punctuator, word_labels
from app.core.punctuation_eval import chunks


def micro_f1(punct: np.ndarray, gold: np.ndarray, ends: np.ndarray, bias: np.ndarray) -> float:
    pred = (punct + bias).argmax(-1)
    pred[ends & (pred == 0)] = 2  # the runtime's final full stop
    tp = int(((pred == gold) & (gold > 0)).sum())
    fp = int(((pred != gold) & (pred > 0)).sum())
    fn = int(((pred != gold) & (gold > 0)).sum())
    return 2 * tp / max(2 * tp + fp + fn, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=Path("app/models/punctuation/en"))
    ap.add_argument("--dev", type=Path, default=Path("/work/punct-data/dev.txt"))
    args = ap.parse_args()
    p = Punctuator(args.model)
    logits, golds, ends = [], [], []
    for text in chunks(args.dev.read_text(encoding="utf-8").splitlines(), 200):
        ref = word_labels(text)
        punct, _ = p.logits([core.lower() for core, _, _ in ref])
        logits.append(punct)
        golds.append(np.array([MARKS.index(m) for _, m, _ in ref]))
        e = np.zeros(len(ref), dtype=bool)
        e[-1] = True
        ends.append(e)
    punct, gold, end = np.concatenate(logits), np.concatenate(golds), np.concatenate(ends)
    bias = np.zeros(len(MARKS), dtype=np.float32)
    print(f"dev words {len(gold)}; micro F1 without bias {micro_f1(punct, gold, end, bias):.4f}")
    grid = np.arange(-1.0, 3.01, 0.25)
    for _, k in itertools.product(range(2), range(1, len(MARKS))):
        scores = []
        for v in grid:
            trial = bias.copy()
            trial[k] = v
            scores.append(micro_f1(punct, gold, end, trial))
        bias[k] = grid[int(np.argmax(scores))]
    print(f"bias {bias.tolist()} -> micro F1 {micro_f1(punct, gold, end, bias):.4f}")
    path = args.model / "labels.json"
    labels = json.loads(path.read_text())
    labels["mark_bias"] = [float(b) for b in bias]
    path.write_text(json.dumps(labels, indent=1) + "\n")


if __name__ == "__main__":
    main()

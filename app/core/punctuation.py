"""Offline punctuation and casing for lower-case, unpunctuated ASR text (ONNX token classifier).

A model directory (``app/models/punctuation/<lang>/``) holds ``model.onnx``, ``tokenizer.json``
and ``labels.json``. The model tags the first sub-token of each word with the mark that follows
the word (none , . ?) and the word's case (lower, Capitalised, UPPER). No torch at run time."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent.parent / "models" / "punctuation"
MARKS = ("", ",", ".", "?")  # the classes scored: , . ?
_TOKEN = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)
_MARK_CHARS = {".": ".", "!": ".", "?": "?", ",": ",", ";": ",", ":": ","}


def available_languages(models_dir: Path = MODELS_DIR) -> list[str]:
    """Languages that have a shipped model, e.g. ``["en"]``."""
    if not models_dir.is_dir():
        return []
    return sorted(d.name for d in models_dir.iterdir() if (d / "model.onnx").is_file())


def split_token(token: str) -> tuple[str, str, str, str]:
    """``'"Hello,'`` -> (lead ``'"'``, core ``'Hello'``, kept trail ``''``, mark ``','``)."""
    m = _TOKEN.match(token)
    lead, core, trail = m.groups() if m else ("", token, "")
    if not core:  # a token without letters or digits passes through
        return token, "", "", ""
    marks = [_MARK_CHARS[c] for c in trail if c in _MARK_CHARS]
    mark = "?" if "?" in marks else (marks[-1] if marks else "")
    return lead, core, "".join(c for c in trail if c not in _MARK_CHARS), mark


def case_of(core: str) -> int:
    """0 lower, 1 Capitalised, 2 UPPER (acronyms)."""
    if not core[:1].isupper():
        return 0
    return 2 if len(core) > 1 and core.isupper() else 1


def word_labels(text: str) -> list[tuple[str, str, int]]:
    """(core word, mark after it, case class) for each word of punctuated text; a ``.`` followed
    by a lower-case word (an abbreviation such as ``e.g.``) counts as no mark."""
    out: list[tuple[str, str, int]] = []
    for token in text.split():
        _, core, _, mark = split_token(token)
        if not core:
            continue
        if out and out[-1][1] == "." and core[:1].islower():
            out[-1] = (out[-1][0], "", out[-1][2])
        out.append((core, mark, case_of(core)))
    return out


@dataclass
class Punctuator:
    """Loads ``model_dir`` on first use (thread-safe) and restores marks and casing."""

    model_dir: Path
    batch_size: int = 8
    overlap: float = 0.5
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: Any = field(default=None, repr=False)
    _tokenizer: Any = field(default=None, repr=False)
    _config: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def for_language(cls, lang: str, models_dir: Path = MODELS_DIR) -> Punctuator:
        return cls(models_dir / lang)

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            self._config = json.loads((self.model_dir / "labels.json").read_text())
            self._tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            self._tokenizer.no_padding()
            self._tokenizer.no_truncation()
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            path = str(self.model_dir / "model.onnx")
            self._session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    def punctuate(self, text: str, final_mark: bool = True) -> str:
        """Text with marks and casing restored; words, digits and unknown tokens kept in order.
        ``final_mark`` ends the text with a full stop when the model put no mark there."""
        parts = [split_token(t) for t in text.split()]
        if not parts:
            return ""
        self._load()
        idx = [i for i, p in enumerate(parts) if p[1]]
        words = [parts[i][1].lower() for i in idx]
        marks, cases = self.decide(*self.logits(words)) if words else ([], [])
        if marks and final_mark and marks[-1] == 0:
            marks[-1] = 2  # a transcript ends a sentence
        out = [p[0] for p in parts]
        mark_names: list[str] = self._config["marks"]
        for j, i in enumerate(idx):
            lead, core, trail, _ = parts[i]
            if not any(c.isdigit() for c in core):
                case = max(cases[j], 1) if j == 0 or marks[j - 1] >= 2 else cases[j]  # sentence start
                core = core.lower()
                core = core.upper() if case == 2 else core[:1].upper() + core[1:] if case == 1 else core
            out[i] = lead + core + trail + mark_names[marks[j]]
        return " ".join(out)

    def decide(self, punct: np.ndarray, case: np.ndarray) -> tuple[list[int], list[int]]:
        """Classes from per-word logits, with the per-mark biases tuned on held-out text."""
        bias = np.asarray(self._config.get("mark_bias", [0.0] * len(MARKS)), dtype=np.float32)
        return [int(x) for x in (punct + bias).argmax(-1)], [int(x) for x in case.argmax(-1)]

    def _windows(self, lengths: list[int]) -> list[tuple[int, int]]:
        """Word spans of at most ``max_length - 2`` sub-tokens, overlapping by ``overlap`` of a window."""
        limit = int(self._config["max_length"]) - 2
        spans: list[tuple[int, int]] = []
        start = 0
        while True:
            end, used = start, 0
            while end < len(lengths) and (end == start or used + lengths[end] <= limit):
                used += lengths[end]
                end += 1
            spans.append((start, end))
            if end >= len(lengths):
                return spans
            start = max(start + 1, end - max(1, int((end - start) * self.overlap)))

    def logits(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Mark and case logits for each (lower-case) word: arrays of shape (words, 4), (words, 3)."""
        self._load()
        enc = self._tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)
        ids: list[int] = enc.ids
        word_ids: list[int | None] = enc.word_ids
        limit = int(self._config["max_length"]) - 2
        first: list[int] = [-1] * len(words)
        pieces: list[list[int]] = [[] for _ in words]
        for pos, w in enumerate(word_ids):
            if w is not None:
                if first[w] < 0:
                    first[w] = pos
                if len(pieces[w]) < 8:  # cap very long unknown words
                    pieces[w].append(ids[pos])
        unk = int(self._config["unk_id"])
        pieces = [p[:limit] or [unk] for p in pieces]
        spans = self._windows([len(p) for p in pieces])
        n = len(words)
        total = np.zeros(n, dtype=np.float32)
        marks = np.zeros((n, len(MARKS)), dtype=np.float32)
        cases = np.zeros((n, 3), dtype=np.float32)
        cls_id, sep_id = int(self._config["cls_id"]), int(self._config["sep_id"])
        for b in range(0, len(spans), self.batch_size):
            batch = spans[b : b + self.batch_size]
            seqs, starts = [], []
            for s, e in batch:
                seq, st = [cls_id], []
                for w in range(s, e):
                    st.append(len(seq))
                    seq += pieces[w]
                seqs.append([*seq, sep_id])
                starts.append(st)
            width = max(len(q) for q in seqs)
            input_ids = np.zeros((len(seqs), width), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for r, q in enumerate(seqs):
                input_ids[r, : len(q)] = q
                mask[r, : len(q)] = 1
            punct, case = self._session.run(None, {"input_ids": input_ids, "attention_mask": mask})
            for r, (s, e) in enumerate(batch):
                for k, w in enumerate(range(s, e)):
                    # Average the windows' log-probabilities, weighted by the distance to a cut.
                    weight = 1.0 + min(w - s if s > 0 else n, e - 1 - w if e < n else n, 32)
                    marks[w] += weight * _log_softmax(punct[r, starts[r][k]])
                    cases[w] += weight * _log_softmax(case[r, starts[r][k]])
                    total[w] += weight
        return marks / total[:, None], cases / total[:, None]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max()
    return np.asarray(x - np.log(np.exp(x).sum()), dtype=np.float32)

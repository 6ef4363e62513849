"""One encoder pass: the engine's decode of a window whose language is not given (it detects the
language on the encoder output it then decodes from, app/core/encoder_reuse.py) against
faster-whisper's own `transcribe` with language=None (which encodes the first 30 s twice) and
against `transcribe` told the language (the floor). Same model object, one thread, in process,
interleaved rounds; prints seconds per pass over the clips, encoder passes and the ratios. The
encoder sees faster-whisper's full 30 s padding here (bench/encoder_padding.py measures cutting it).

    .venv/bin/python -m bench.encoder_reuse [--rounds 5] [--threads 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.core.models import build_registry
from app.core.types import TranscriptionRequest
from app.core.whisper import FALLBACK_TEMPERATURES, WhisperConfig
from app.settings import Settings
from bench.common import MODEL, machine_info, report
from tests.audio_tools import ENGLISH, read_pcm

CLIPS = [name for name in ENGLISH if name != "moonshine_two_cities.wav"]  # one window each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 threads (a worker has 1)")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    args = parser.parse_args()

    registry = build_registry([MODEL], {}, MODEL, Settings().cache_dir)
    engine = WhisperConfig(models=tuple(registry.specs.values()), threads=args.threads)()
    model = engine.models[MODEL]
    encoder = model.encode
    request = TranscriptionRequest(model=MODEL)
    pcms = [read_pcm(name) for name in CLIPS]

    def own(pcm: np.ndarray, language: str | None) -> str:
        segments, _ = model.transcribe(pcm, beam_size=5, temperature=FALLBACK_TEMPERATURES, language=language)
        return " ".join(s.text.strip() for s in segments)

    def ours(pcm: np.ndarray) -> str:
        _, segments = engine.transcribe(pcm, request, None)
        return " ".join(s.text for s in segments)

    ways: dict[str, Callable[[np.ndarray], str]] = {
        "faster-whisper transcribe, language detected": lambda pcm: own(pcm, None),
        "this engine, language detected": ours,
        "faster-whisper transcribe, language given (floor)": lambda pcm: own(pcm, "en"),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    passes: dict[str, int] = {}
    texts: dict[str, list[str]] = {}
    ours(pcms[0])  # warm-up
    for _ in range(args.rounds):
        for name, way in ways.items():
            before = encoder.passes
            started = time.perf_counter()
            texts[name] = [way(pcm) for pcm in pcms]
            times[name].append(time.perf_counter() - started)
            passes[name] = encoder.passes - before

    baseline = statistics.median(times["faster-whisper transcribe, language detected"])
    rows = []
    for name in ways:
        median = statistics.median(times[name])
        same = "yes" if texts[name] == texts["faster-whisper transcribe, language detected"] else "no"
        spread = f"{median:.2f} ({min(times[name]):.2f}-{max(times[name]):.2f})"
        rows.append([name, spread, f"{median / baseline:.2f}", str(passes[name]), same])
    audio = sum(len(p) for p in pcms) / 16000
    report(
        "One encoder pass for an undetected language",
        [
            machine_info(),
            f"{len(CLIPS)} English clips of one window each ({audio:.1f} s) from tests/data, {MODEL} int8, "
            f"{args.threads} thread(s), beam 5, in process; median (min-max) of {args.rounds} interleaved rounds.",
        ],
        ["decode", "s per pass over the clips", "x faster-whisper detecting", "encoder passes", "same text"],
        rows,
        args.out,
    )


if __name__ == "__main__":
    main()

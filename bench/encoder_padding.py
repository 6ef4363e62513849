"""The encoder on the audio plus a little padding against faster-whisper's padding of every window to
30 s (app/core/encoder_reuse.py): the same model, one thread, in process, the clips decoded with
each padding in interleaved rounds. Prints seconds per pass over the clips, the ratio to the full
padding, WER against the references and whether the text is the one the full padding gives.

    .venv/bin/python -m bench.encoder_padding [--rounds 3] [--threads 1] [--paddings 30,5,3,2] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from app.core.models import build_registry
from app.core.types import TranscriptionRequest
from app.core.whisper import WhisperConfig
from app.settings import Settings
from bench.common import MODEL, machine_info, report
from tests.audio_tools import ENGLISH, read_pcm, references
from tests.wer import wer

CLIPS = [name for name in ENGLISH if name != "moonshine_two_cities.wav"]  # one window each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 threads (a worker has 1)")
    parser.add_argument("--paddings", default="30,5,3,2", help="seconds of padding after the audio; 30 first")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    args = parser.parse_args()

    registry = build_registry([MODEL], {}, MODEL, Settings().cache_dir)
    engine = WhisperConfig(models=tuple(registry.specs.values()), threads=args.threads)()
    paddings = [float(p) for p in args.paddings.split(",")]
    pcms = [read_pcm(name) for name in CLIPS]
    refs = references()

    def decode(padding: float) -> list[str]:
        request = TranscriptionRequest(model=MODEL, beam_size=5, encoder_padding_seconds=padding)
        texts = []
        for pcm in pcms:
            _, segments = engine.transcribe(pcm, request, "en")
            texts.append(" ".join(s.text.strip() for s in segments))
        return texts

    decode(paddings[-1])  # warm-up
    times: dict[float, list[float]] = {p: [] for p in paddings}
    texts: dict[float, list[str]] = {}
    for _ in range(args.rounds):
        for padding in paddings:
            started = time.perf_counter()
            texts[padding] = decode(padding)
            times[padding].append(time.perf_counter() - started)

    full = paddings[0]
    baseline = statistics.median(times[full])
    rows = []
    for padding in paddings:
        median = statistics.median(times[padding])
        error = wer([refs[n] for n in CLIPS], texts[padding])
        same = sum(a == b for a, b in zip(texts[padding], texts[full], strict=True))
        rows.append(
            [
                f"{padding:g} s" + (" (faster-whisper)" if padding >= 30 else ""),
                f"{median:.2f} ({min(times[padding]):.2f}-{max(times[padding]):.2f})",
                f"{median / baseline:.2f}",
                f"{error:.2%}",
                f"{same} of {len(CLIPS)}",
            ]
        )
    audio = sum(len(p) for p in pcms) / 16000
    report(
        "The encoder sees the audio, not 30 s",
        [
            machine_info(),
            f"{len(CLIPS)} English clips of one window each ({audio:.1f} s) from tests/data, {MODEL} int8, "
            f"{args.threads} thread(s), beam 5, language given, in process; median (min-max) of "
            f"{args.rounds} interleaved rounds.",
        ],
        ["padding after the audio", "s per pass over the clips", "x full padding", "WER", "same text as 30 s"],
        rows,
        args.out,
    )


if __name__ == "__main__":
    main()

"""HTTP overhead: end-to-end time of one client against the server (1 worker x 2 threads) divided
by a direct faster-whisper call with the same model, settings and thread count (target <= 1.05).

    .venv/bin/python -m bench.overhead [--runs 3] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from bench.common import (
    SAMPLE_RATE,
    RawEngine,
    decode_wav,
    http_client,
    machine_info,
    post_wav,
    report,
    running_server,
)
from tests.audio_tools import long_clip, read_pcm, wav_bytes

THREADS = 2
TARGET = 1.05


def clips(which: str) -> list[tuple[str, bytes]]:
    """(label, WAV bytes): the 11 s JFK clip and/or the 201 s long clip."""
    found = []
    if which in ("short", "both"):
        found.append(("jfk.wav", wav_bytes(read_pcm("jfk.wav"))))
    if which in ("long", "both"):
        found.append(("long clip (10 English clips x 2)", wav_bytes(long_clip()[0])))
    return found


def measure(engine: RawEngine, url: str, wav: bytes, runs: int, warmups: int) -> tuple[list[float], list[float], bool]:
    """Interleaved direct and HTTP runs (so background load hits both alike), after warm-ups."""
    pcm: np.ndarray = decode_wav(wav)  # identical samples on both paths
    direct: list[float] = []
    http: list[float] = []
    same = True
    with http_client() as client:
        for i in range(warmups + runs):
            d_time, d_text = engine.timed(pcm)
            h_time, h_text = post_wav(client, url, wav)
            same = same and " ".join(d_text.split()) == " ".join(h_text.split())
            if i >= warmups:
                direct.append(d_time)
                http.append(h_time)
    return direct, http, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per clip (median)")
    parser.add_argument("--clips", choices=("short", "long", "both"), default="both", help="which clips")
    parser.add_argument("--warmups", type=int, default=1, help="untimed runs per clip first")
    parser.add_argument("--quick", action="store_true", help="jfk only, 1 run")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs

    inputs = clips("short" if args.quick else args.clips)
    rows: list[list[str]] = []
    notes: list[str] = []
    engine = RawEngine(THREADS)
    with running_server(workers=1, threads=THREADS) as url:
        for label, wav in inputs:
            direct, http, same = measure(engine, url, wav, runs, args.warmups)
            seconds = len(decode_wav(wav)) / SAMPLE_RATE
            d, h = statistics.median(direct), statistics.median(http)
            ratio = h / d
            verdict = "ok" if ratio <= TARGET else "over"
            best = min(http) / min(direct)
            rows.append([label, f"{seconds:.1f}", f"{d:.2f}", f"{h:.2f}", f"{ratio:.3f} ({verdict})", f"{best:.3f}"])
            if not same:
                notes.append(f"note: {label}: HTTP and direct transcripts differ")

    header = ["clip", "audio s", "direct s", "HTTP s", f"ratio of medians (target <= {TARGET})", "ratio of bests"]
    context = [machine_info() + f"; median of {runs} run(s) after {args.warmups} warm-up(s)", *notes]
    report(
        f"HTTP overhead (1 worker x {THREADS} threads vs direct cpu_threads={THREADS})", context, header, rows, args.out
    )


if __name__ == "__main__":
    main()

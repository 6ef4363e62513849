"""Batch sizes: compatible windows decoded in one CTranslate2 call (ASR_BATCH_SIZE 1, 2, 4, 8) on
the server with 2 workers x 1 thread: throughput of 8 clients posting an 11 s clip, and one 200 s
file on the idle server (its windows are batched), with its WER. Ratios are against batch size 1
measured in the same run.

    .venv/bin/python -m bench.batching [--sizes 1,2,4,8] [--requests N] [--out FILE]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import http_client, machine_info, post_wav, report, running_server
from bench.throughput import run_level
from tests.audio_tools import long_clip, read_pcm, wav_bytes
from tests.wer import wer

CLIENTS = 8


def measure(size: int, short: bytes, long: bytes, reference: str, requests: int) -> tuple[float, float, float]:
    short_s = (len(short) - 44) / 32000
    with running_server(workers=2, threads=1, env={"ASR_BATCH_SIZE": str(size)}) as url:
        run_level(url, short, 2, 1)  # warm-up
        wall, _ = run_level(url, short, CLIENTS, requests)
        with http_client() as client:
            started = time.perf_counter()
            _, text = post_wav(client, url, long)
            long_wall = time.perf_counter() - started
    return CLIENTS * requests * short_s / wall, long_wall, wer([reference], [text])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,2,4,8", help="comma-separated batch sizes")
    parser.add_argument("--requests", type=int, default=4, help="requests per client")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    short = wav_bytes(read_pcm("jfk.wav"))
    pcm, reference = long_clip()
    long = wav_bytes(pcm)
    figures = {size: measure(size, short, long, reference, args.requests) for size in sizes}
    base = figures[sizes[0]]
    rows = [
        [
            str(size),
            f"{throughput:.2f}",
            f"{throughput / base[0]:.2f}",
            f"{long_wall:.2f}",
            f"{base[1] / long_wall:.2f}",
            f"{error:.4f}",
        ]
        for size, (throughput, long_wall, error) in figures.items()
    ]
    header = [
        "batch size",
        f"{CLIENTS} clients, 11 s clip: audio s/s",
        f"x batch {sizes[0]}",
        "200 s file, idle: wall s",
        f"speed-up vs batch {sizes[0]}",
        "200 s WER",
    ]
    report("Batching windows (2 workers x 1 thread)", [machine_info()], header, rows, args.out)


if __name__ == "__main__":
    main()

"""Throughput: the server with 2 workers x 1 thread under 1-8 concurrent clients, against the
best raw faster-whisper throughput measured in the same run (target >= 0.95 from 2 clients on).

    .venv/bin/python -m bench.throughput [--clip NAME] [--requests N] [--seconds S] [--quick]
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import (
    SAMPLE_RATE,
    best_raw_throughput,
    cpu_cores,
    decode_wav,
    http_client,
    machine_info,
    percentile,
    post_wav,
    report,
    running_server,
)
from tests.audio_tools import read_pcm, wav_bytes

WORKERS = 2
THREADS = 1
TARGET = 0.95
TARGET_FROM_CLIENTS = 2


def run_level(url: str, wav: bytes, clients: int, requests: int) -> tuple[float, list[float]]:
    """`clients` threads each POST `wav` `requests` times back to back; (wall s, latencies)."""
    start = threading.Barrier(clients + 1)
    latencies: list[float] = []

    def client_loop() -> None:
        with http_client() as client:
            start.wait()
            for _ in range(requests):
                latencies.append(post_wav(client, url, wav)[0])

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client_loop) for _ in range(clients)]
        start.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
        wall = time.perf_counter() - started
    return wall, latencies


def requests_for(clients: int, seconds: float, raw: float, clip_s: float, workers: int) -> int:
    """Requests per client so the level takes about `seconds`, guessing that the server reaches
    the raw throughput once every worker is busy and a share of it before."""
    expected = raw * min(clients, workers) / workers
    return max(1, math.ceil(seconds * expected / (clients * clip_s)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="moonshine_two_cities.wav", help="clip in tests/data")
    parser.add_argument("--clients", default="1,2,4,8", help="comma-separated concurrency levels")
    parser.add_argument("--requests", type=int, help="requests per client (default: by --seconds)")
    parser.add_argument("--seconds", type=float, default=60, help="target wall time per level")
    parser.add_argument("--raw-repeats", type=int, default=3, help="clip decodes per raw process")
    parser.add_argument("--quick", action="store_true", help="jfk, clients 1 and 2, 2 requests")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    parser.add_argument("--env", action="append", default=[], help="extra server setting, e.g. ASR_WIDE_THREADS=0")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    if args.quick:
        args.clip, args.clients, args.requests, args.raw_repeats = "jfk.wav", "1,2", 2, 1
    levels = [int(c) for c in args.clients.split(",") if c.strip()]

    wav = wav_bytes(read_pcm(args.clip))
    pcm = decode_wav(wav)
    clip_s = len(pcm) / SAMPLE_RATE
    print(f"measuring raw faster-whisper on {args.clip} ({clip_s:.1f} s)...", flush=True)
    raw, raw_label = best_raw_throughput(pcm, args.raw_repeats)

    rows: list[list[str]] = []
    with running_server(workers=WORKERS, threads=THREADS, env=env) as url:
        run_level(url, wav, WORKERS, 1)  # warm-up: one request per worker
        for clients in levels:
            requests = args.requests or requests_for(clients, args.seconds, raw, clip_s, WORKERS)
            print(f"{clients} client(s) x {requests} request(s)...", flush=True)
            wall, latencies = run_level(url, wav, clients, requests)
            throughput = clients * requests * clip_s / wall
            ratio = throughput / raw
            mark = ""
            if clients >= TARGET_FROM_CLIENTS:
                mark = " (ok)" if ratio >= TARGET else " (under)"
            rows.append(
                [
                    str(clients),
                    str(clients * requests),
                    f"{throughput:.2f}",
                    f"{ratio:.3f}{mark}",
                    f"{percentile(latencies, 50):.2f}",
                    f"{percentile(latencies, 95):.2f}",
                ]
            )

    header = [
        "clients",
        "requests",
        "audio s/s",
        f"ratio to best raw (target >= {TARGET} from {TARGET_FROM_CLIENTS})",
        "p50 s",
        "p95 s",
    ]
    cores = cpu_cores()
    context = [machine_info(), f"Best raw faster-whisper on {cores} cores: {raw:.2f} audio s/s, {raw_label}"]
    if env:
        context.append("Server settings: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    report(
        f"Throughput ({WORKERS} workers x {THREADS} thread, {args.clip}, {clip_s:.1f} s)",
        context,
        header,
        rows,
        args.out,
    )


if __name__ == "__main__":
    main()

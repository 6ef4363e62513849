"""Head-of-line blocking: an 11 s request and a real-time-paced chunked /asr_xml upload, idle and
while long work fills the server (two 200 s speech:recognize requests decoding; eight 200 s
long-running jobs queued). Target: each latency <= 1.5x its idle figure.

    .venv/bin/python -m bench.head_of_line [--runs N] [--stream-seconds S] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import httpx
import numpy as np

from bench.chunked_latency import chunked_latency, speech
from bench.common import http_client, machine_info, post_wav, report, running_server
from tests.audio_tools import long_clip, read_pcm, wav_bytes

TARGET = 1.5


def recognize_body(wav: bytes) -> dict[str, object]:
    return {"config": {"languageCode": "en-US"}, "audio": {"content": base64.b64encode(wav).decode()}}


@contextmanager
def sync_load(url: str, wav: bytes, clients: int) -> Iterator[None]:
    """`clients` threads posting the long file to speech:recognize again and again until the end."""
    stop = threading.Event()
    body = recognize_body(wav)

    def loop() -> None:
        with http_client() as client:
            while not stop.is_set():
                client.post(url + "/v1/speech:recognize", json=body).raise_for_status()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(600)


@contextmanager
def job_load(url: str, wav: bytes, jobs: int) -> Iterator[None]:
    """`jobs` long-running jobs submitted (left to the server, which is stopped after the run)."""
    body = recognize_body(wav)
    for _ in range(jobs):
        httpx.post(url + "/v1/speech:longrunningrecognize", json=body, timeout=60).raise_for_status()
    yield


def measure(url: str, short: bytes, stream: np.ndarray, runs: int, uploads: int) -> tuple[float, float]:
    with http_client() as client:
        request = statistics.median(post_wav(client, url, short)[0] for _ in range(runs))
    return request, statistics.median(chunked_latency(url, stream)[0] for _ in range(uploads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="11 s requests per condition (median)")
    parser.add_argument("--uploads", type=int, default=2, help="chunked uploads per condition (median)")
    parser.add_argument("--stream-seconds", type=float, default=30, help="speech in the chunked upload")
    parser.add_argument("--quick", action="store_true", help="one run, 10 s stream")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server (repeatable)")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.uploads, args.stream_seconds = 1, 1, 10
    short = wav_bytes(read_pcm("jfk.wav"))
    stream = speech(args.stream_seconds)[0]
    long_wav = wav_bytes(long_clip()[0])
    conditions: list[tuple[str, Callable[[str], AbstractContextManager[object]]]] = [
        ("idle", lambda url: nullcontext()),
        ("2 x 200 s speech:recognize decoding", lambda url: sync_load(url, long_wav, 2)),
        ("8 x 200 s long-running jobs queued", lambda url: job_load(url, long_wav, 8)),
        ("idle again", lambda url: nullcontext()),
    ]
    env = dict(item.split("=", 1) for item in args.env)
    figures: dict[str, tuple[float, float]] = {}
    with running_server(workers=2, threads=1, env=env) as url:
        measure(url, short, speech(5)[0], 1, 1)  # warm-up
        for name, load in conditions:
            with load(url):
                if not name.startswith("idle"):
                    threading.Event().wait(3)  # let the load reach the workers
                figures[name] = measure(url, short, stream, args.runs, args.uploads)
    # The baseline is the mean of the idle runs before and after the load: the VM's speed drifts.
    idle = tuple(statistics.mean(figures[n][i] for n in ("idle", "idle again")) for i in (0, 1))
    rows = []
    for name, (request, after) in figures.items():
        ratios = [request / idle[0], after / idle[1]]
        marks = ["" if name.startswith("idle") else (" (ok)" if r <= TARGET else " (over)") for r in ratios]
        rows.append(
            [name, f"{request:.2f}", f"{ratios[0]:.2f}{marks[0]}", f"{after:.2f}", f"{ratios[1]:.2f}{marks[1]}"]
        )
    header = [
        "condition",
        "11 s request, s",
        f"x idle (target <= {TARGET})",
        f"/asr_xml {args.stream_seconds:g} s stream, after last byte, s",
        f"x idle (target <= {TARGET})",
    ]
    settings = ", ".join(args.env) or "shipped defaults"
    report(f"Head-of-line blocking (2 workers x 1 thread; {settings})", [machine_info()], header, rows, args.out)


if __name__ == "__main__":
    main()

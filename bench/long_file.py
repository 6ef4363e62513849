"""One 200 s file on an idle server: 2 workers (its windows decoded on both) against 1 worker,
in the same run. Target: <= 0.6x the one-worker time. Also the WER of both.

    .venv/bin/python -m bench.long_file [--runs N] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench.common import http_client, machine_info, post_wav, report, running_server
from tests.audio_tools import long_clip, wav_bytes
from tests.wer import wer

TARGET = 0.6


def timed(workers: int, wav: bytes, reference: str, runs: int, env: dict[str, str]) -> tuple[float, float]:
    with running_server(workers=workers, threads=1, env=env) as url, http_client() as client:
        post_wav(client, url, wav[: 44 + 16000 * 2 * 20])  # warm-up on 20 s
        results = [post_wav(client, url, wav) for _ in range(runs)]
    return statistics.median(t for t, _ in results), wer([reference], [results[0][1]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="requests per server (median)")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    args = parser.parse_args()
    pcm, reference = long_clip()
    wav = wav_bytes(pcm)
    seconds = len(pcm) / 16000
    one, one_wer = timed(1, wav, reference, args.runs, {})
    two, two_wer = timed(2, wav, reference, args.runs, {})
    ratio = two / one
    rows = [
        ["1 worker x 1 thread", f"{one:.2f}", f"{seconds / one:.1f}", "1.00", f"{one_wer:.4f}"],
        [
            "2 workers x 1 thread",
            f"{two:.2f}",
            f"{seconds / two:.1f}",
            f"{ratio:.2f} ({'ok' if ratio <= TARGET else 'over'})",
            f"{two_wer:.4f}",
        ],
    ]
    header = ["server", "wall s", "audio s/s", f"x one worker (target <= {TARGET})", "WER"]
    title = f"One {seconds:.0f} s file on an idle server"
    report(title, [machine_info(), f"median of {args.runs} requests each"], header, rows, args.out)


if __name__ == "__main__":
    main()

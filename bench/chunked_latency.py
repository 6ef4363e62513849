"""Yandex /asr_xml chunked uploads sent at real-time pace: how long after the last byte the answer
comes, next to a one-shot decode of the same audio (target <= 1.5 s, flat in the audio length).

    .venv/bin/python -m bench.chunked_latency [--lengths 10 60 300] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from bench.common import machine_info, report, running_server
from tests.audio_tools import ENGLISH, read_pcm, wav_bytes

TARGET = 1.5
QUERY = "/asr_xml?uuid=01ae13cb744628b58fb536d496daa1e6&key=bench&topic=notes&lang=en-US"
CHUNK = 3200  # 100 ms of 16 kHz 16-bit audio


def speech(seconds: float) -> np.ndarray:
    """Real speech of about `seconds`: the English clips in turn, 0.5 s of silence after each."""
    pieces, total, i = [], 0, 0
    silence = np.zeros(8000, np.float32)
    while total < seconds * 16000:
        clip = read_pcm(ENGLISH[i % len(ENGLISH)])
        pieces += [clip, silence]
        total += len(clip) + len(silence)
        i += 1
    return np.concatenate(pieces)[: int(seconds * 16000)]


def paced(raw: bytes, sent: dict[str, float]) -> Iterator[bytes]:
    start = time.perf_counter()
    for i in range(0, len(raw), CHUNK):
        delay = start + i / 32000 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield raw[i : i + CHUNK]
    sent["last"] = time.perf_counter()


def chunked_latency(url: str, pcm: np.ndarray) -> float:
    raw = (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()
    sent: dict[str, float] = {}
    headers = {"content-type": "audio/x-pcm;bit=16;rate=16000"}
    response = httpx.post(url + QUERY, content=paced(raw, sent), headers=headers, timeout=3600)
    response.raise_for_status()
    return time.perf_counter() - sent["last"]


def one_shot(url: str, pcm: np.ndarray) -> float:
    body = wav_bytes(pcm)
    start = time.perf_counter()
    response = httpx.post(
        url + "/v1/audio/transcriptions",
        files={"file": ("a.wav", body, "audio/wav")},
        data={"model": "whisper-1"},
        timeout=3600,
    )
    response.raise_for_status()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[10, 60, 300], help="seconds of speech")
    parser.add_argument("--quick", action="store_true", help="10 s only")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    args = parser.parse_args()
    lengths = [10.0] if args.quick else args.lengths
    rows = []
    with running_server(workers=2, threads=1) as url:
        chunked_latency(url, speech(5))  # warm-up
        for seconds in lengths:
            pcm = speech(seconds)
            after = chunked_latency(url, pcm)
            whole = one_shot(url, pcm)
            verdict = "ok" if after <= TARGET else "over"
            rows.append([f"{seconds:g}", f"{after:.2f} ({verdict})", f"{whole:.2f}"])
    header = ["speech s", f"answer after the last byte, s (target <= {TARGET})", "one-shot decode of the same audio, s"]
    report("Chunked /asr_xml at real-time pace (2 workers x 1 thread)", [machine_info()], header, rows, args.out)


if __name__ == "__main__":
    main()

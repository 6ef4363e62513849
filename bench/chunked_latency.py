"""Yandex /asr_xml chunked uploads sent at real-time pace: how long after the last byte the answer
comes, next to a one-shot decode of the same audio (target <= 1.5 s, flat in the audio length),
and both WERs (target: the upload within 1 point of the whole file).

    .venv/bin/python -m bench.chunked_latency [--lengths 10 60 300] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from bench.common import machine_info, report, running_server
from tests.audio_tools import ENGLISH, read_pcm, references, wav_bytes
from tests.wer import wer

TARGET = 1.5
QUERY = "/asr_xml?uuid=01ae13cb744628b58fb536d496daa1e6&key=bench&topic=notes&lang=en-US"
CHUNK = 3200  # 100 ms of 16 kHz 16-bit audio


def speech(seconds: float) -> tuple[np.ndarray, str]:
    """Real speech of at least `seconds`, whole clips (English, in turn, 0.5 s of silence after
    each), and its reference text."""
    pieces, texts, total, i = [], [], 0, 0
    silence = np.zeros(8000, np.float32)
    refs = references()
    while total < seconds * 16000:
        name = ENGLISH[i % len(ENGLISH)]
        clip = read_pcm(name)
        pieces += [clip, silence]
        texts.append(refs[name])
        total += len(clip) + len(silence)
        i += 1
    return np.concatenate(pieces), " ".join(texts)


def paced(raw: bytes, sent: dict[str, float]) -> Iterator[bytes]:
    start = time.perf_counter()
    for i in range(0, len(raw), CHUNK):
        delay = start + i / 32000 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield raw[i : i + CHUNK]
    sent["last"] = time.perf_counter()


def chunked_latency(url: str, pcm: np.ndarray) -> tuple[float, str]:
    raw = (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()
    sent: dict[str, float] = {}
    headers = {"content-type": "audio/x-pcm;bit=16;rate=16000"}
    response = httpx.post(url + QUERY, content=paced(raw, sent), headers=headers, timeout=3600)
    response.raise_for_status()
    after = time.perf_counter() - sent["last"]
    variant = ET.fromstring(response.content).find("variant")
    return after, (variant.text or "") if variant is not None else ""


def one_shot(url: str, pcm: np.ndarray) -> tuple[float, str]:
    body = wav_bytes(pcm)
    start = time.perf_counter()
    response = httpx.post(
        url + "/v1/audio/transcriptions",
        files={"file": ("a.wav", body, "audio/wav")},
        data={"model": "whisper-1", "language": "en"},
        timeout=3600,
    )
    response.raise_for_status()
    return time.perf_counter() - start, str(response.json()["text"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[10, 60, 300], help="seconds of speech")
    parser.add_argument("--quick", action="store_true", help="10 s only")
    parser.add_argument("--out", type=Path, help="append the markdown to this file")
    args = parser.parse_args()
    lengths = [10.0] if args.quick else args.lengths
    rows = []
    with running_server(workers=2, threads=1) as url:
        chunked_latency(url, speech(5)[0])  # warm-up
        for seconds in lengths:
            pcm, reference = speech(seconds)
            after, chunked_text = chunked_latency(url, pcm)
            whole, whole_text = one_shot(url, pcm)
            verdict = "ok" if after <= TARGET else "over"
            chunked_wer, whole_wer = wer([reference], [chunked_text]), wer([reference], [whole_text])
            rows.append(
                [
                    f"{len(pcm) / 16000:.0f}",
                    f"{after:.2f} ({verdict})",
                    f"{whole:.2f}",
                    f"{chunked_wer:.2%}",
                    f"{whole_wer:.2%}",
                    f"{(chunked_wer - whole_wer) * 100:+.2f}",
                ]
            )
    header = [
        "speech s",
        f"answer after the last byte, s (target <= {TARGET})",
        "one-shot decode of the same audio, s",
        "upload WER",
        "whole-file WER",
        "points (target <= +1)",
    ]
    report("Chunked /asr_xml at real-time pace (2 workers x 1 thread)", [machine_info()], header, rows, args.out)


if __name__ == "__main__":
    main()

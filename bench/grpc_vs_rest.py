"""gRPC front: Google Recognize over gRPC against POST /v1/speech:recognize on the same clips (target:
gRPC/REST <= 1.02), and how soon StreamingRecognize sends an utterance's final on an idle server
(target <= 1.0 s p50).

1. Recognize: the official google-cloud-speech client (SpeechGrpcTransport on an insecure channel)
   against base64 JSON posted with httpx, the same WAV bytes on both, the two transports alternating
   (which goes first alternates too), after one untimed round; the median seconds of each per clip.
2. StreamingRecognize: each clip as headerless LINEAR16 in 100 ms chunks at real-time pace (a chunk
   goes out when its audio would have been recorded), then silence (zeros) until the clip's finals
   have come. Per final: from when the chunk holding its resultEndTime (stream time) was sent to when
   the is_final result arrives. With interimResults off (the measure) and on.

Server: shipped layout (2 workers x 1 thread and the reserve), whisper-base, its own HTTP and gRPC ports.

    .venv/bin/python -m bench.grpc_vs_rest [--rounds 6] [--quick] [--out docs/performance.md]
"""

from __future__ import annotations

import argparse
import base64
import math
import re
import statistics
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.cloud import speech_v1
from google.cloud.speech_v1.services.speech import SpeechClient
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

from bench.common import free_port, http_client, machine_info, markdown_table, percentile, running_server
from tests.audio_tools import DATA

TARGET_RATIO = 1.02
TARGET_FINAL = 1.0
CLIPS = ["jfk.wav", *(f"ps_librivox_{n}.wav" for n in ("0870", "0880", "0890", "0920", "0930"))]
QUICK_CLIPS = CLIPS[:2]
RATE = 16_000
CHUNK_SECONDS = 0.1
CHUNK_BYTES = int(RATE * CHUNK_SECONDS) * 2
TAIL_SECONDS = 3.0  # silence sent after the clip, at least
MAX_TAIL_SECONDS = 20.0  # ... and at most, while a final is still missing
LANGUAGE = "en-US"
REST_RECOGNIZE = "/v1/speech:recognize"
HEADING = "## gRPC"


def google_client(channel: grpc.Channel) -> SpeechClient:
    """The official (generated) client on a plain channel: no credentials, the transport takes the
    channel as is. StreamingRecognize's first request carries the config, as on the wire."""
    return SpeechClient(transport=SpeechGrpcTransport(channel=channel))


def recognition_config(**extra: Any) -> speech_v1.RecognitionConfig:
    return speech_v1.RecognitionConfig(language_code=LANGUAGE, **extra)


# --- 1. Recognize: gRPC against REST ---------------------------------------------------------------


def recognize_grpc(client: SpeechClient, wav: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    response = client.recognize(config=recognition_config(), audio=speech_v1.RecognitionAudio(content=wav))
    elapsed = time.perf_counter() - started
    return elapsed, "".join(r.alternatives[0].transcript for r in response.results if r.alternatives)


def recognize_rest(client: httpx.Client, url: str, wav: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    body = {"config": {"languageCode": LANGUAGE}, "audio": {"content": base64.b64encode(wav).decode()}}
    response = client.post(url + REST_RECOGNIZE, json=body)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    results = response.json().get("results", [])
    return elapsed, "".join(r["alternatives"][0]["transcript"] for r in results if r.get("alternatives"))


@dataclass
class Timings:
    grpc: list[float] = field(default_factory=list)
    rest: list[float] = field(default_factory=list)
    same_text: bool = True


def compare_recognize(target: str, url: str, clips: list[str], rounds: int, warmups: int) -> dict[str, Timings]:
    """Per clip, gRPC and REST back to back (the first of the two alternating by round)."""
    timings = {name: Timings() for name in clips}
    wavs = {name: (DATA / name).read_bytes() for name in clips}
    with http_client() as rest:
        channel = grpc.insecure_channel(target)
        client = google_client(channel)
        try:
            for index in range(warmups + rounds):
                for name in clips:
                    order = ("grpc", "rest") if index % 2 == 0 else ("rest", "grpc")
                    measured: dict[str, tuple[float, str]] = {}
                    for transport in order:
                        if transport == "grpc":
                            measured[transport] = recognize_grpc(client, wavs[name])
                        else:
                            measured[transport] = recognize_rest(rest, url, wavs[name])
                    entry = timings[name]
                    entry.same_text = entry.same_text and _words(measured["grpc"][1]) == _words(measured["rest"][1])
                    if index >= warmups:
                        entry.grpc.append(measured["grpc"][0])
                        entry.rest.append(measured["rest"][0])
                print(f"recognize round {index + 1}/{warmups + rounds} done", flush=True)
        finally:
            channel.close()
    return timings


def _words(text: str) -> list[str]:
    return text.split()


def recognize_rows(timings: dict[str, Timings]) -> list[list[str]]:
    rows = []
    for name, t in timings.items():
        g, r = statistics.median(t.grpc), statistics.median(t.rest)
        best = min(t.grpc) / min(t.rest)
        rows.append([name, f"{_seconds(name):.1f}", f"{g:.3f}", f"{r:.3f}", _ratio(g / r), f"{best:.3f}"])
    g_all = sum(statistics.median(t.grpc) for t in timings.values())
    r_all = sum(statistics.median(t.rest) for t in timings.values())
    best = sum(min(t.grpc) for t in timings.values()) / sum(min(t.rest) for t in timings.values())
    audio = sum(_seconds(n) for n in timings)
    rows.append(["all clips (sum of medians)", f"{audio:.1f}", f"{g_all:.3f}", f"{r_all:.3f}", _ratio(g_all / r_all),
                 f"{best:.3f}"])  # fmt: skip
    return rows


def _ratio(value: float) -> str:
    return f"**{value:.3f}**" if value <= TARGET_RATIO else f"{value:.3f} (over)"


def _seconds(name: str) -> float:
    with wave.open(str(DATA / name)) as w:
        return float(w.getnframes() / w.getframerate())


# --- 2. StreamingRecognize: final latency ----------------------------------------------------------


def pcm16(name: str) -> bytes:
    """The clip's samples as headerless 16 kHz mono LINEAR16 (the files already are)."""
    with wave.open(str(DATA / name)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
            raise ValueError(f"{name}: not 16 kHz mono 16-bit")
        return bytes(w.readframes(w.getnframes()))


@dataclass
class StreamRun:
    """One clip streamed: per final, (resultEndTime s, seconds from its audio sent to its arrival)."""

    finals: list[tuple[float, float]] = field(default_factory=list)
    after_clip: float | None = None  # the last final, from the clip's last chunk sent
    after_close: int = 0  # finals that came only once the client had half-closed
    interims: int = 0
    text: str = ""


def stream_clip(client: SpeechClient, name: str, interim: bool) -> StreamRun:
    audio = pcm16(name)
    clip_chunks = math.ceil(len(audio) / CHUNK_BYTES)
    sent: list[float] = []  # perf_counter when chunk i went out
    lock = threading.Lock()
    final_after_clip = threading.Event()  # a final arrived after the clip's last chunk was sent
    closed = threading.Event()
    silence = bytes(CHUNK_BYTES)
    config = speech_v1.StreamingRecognitionConfig(
        config=recognition_config(encoding=speech_v1.RecognitionConfig.AudioEncoding.LINEAR16, sample_rate_hertz=RATE),
        interim_results=interim,
    )

    def requests() -> Iterator[speech_v1.StreamingRecognizeRequest]:
        yield speech_v1.StreamingRecognizeRequest(streaming_config=config)
        start = time.perf_counter()
        index = 0
        while True:
            tail = (index - clip_chunks) * CHUNK_SECONDS
            if tail >= TAIL_SECONDS and (final_after_clip.is_set() or tail >= MAX_TAIL_SECONDS):
                break
            piece = audio[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES] if index < clip_chunks else silence
            # a microphone's chunk exists once its 100 ms have been recorded
            delay = start + (index + 1) * CHUNK_SECONDS - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            with lock:
                sent.append(time.perf_counter())
            yield speech_v1.StreamingRecognizeRequest(audio_content=piece)
            index += 1
        closed.set()

    run = StreamRun()
    texts = []
    for response in client.streaming_recognize(requests=requests(), timeout=600):
        arrived = time.perf_counter()
        for result in response.results:
            if not result.is_final:
                run.interims += 1
                continue
            end = _total_seconds(result.result_end_time)
            with lock:
                chunk = min(max(math.ceil(end / CHUNK_SECONDS) - 1, 0), len(sent) - 1)
                run.finals.append((end, arrived - sent[chunk]))
                if len(sent) >= clip_chunks:
                    run.after_clip = arrived - sent[clip_chunks - 1]
                    final_after_clip.set()
            if closed.is_set():
                run.after_close += 1
            texts.append(result.alternatives[0].transcript if result.alternatives else "")
    run.text = " ".join(t.strip() for t in texts)
    return run


def streaming_rows(client: SpeechClient, clips: list[str]) -> tuple[list[list[str]], list[str]]:
    rows: list[list[str]] = []
    notes: list[str] = []
    stream_clip(client, clips[-1], interim=False)  # warm-up, untimed
    for interim in (False, True):
        latencies: list[float] = []
        after_clip: list[float] = []
        interims = after_close = 0
        for name in clips:
            run = stream_clip(client, name, interim)
            print(
                f"stream {name} interim={interim}: finals (end s, latency s) "
                f"{[(round(e, 2), round(v, 2)) for e, v in run.finals]}, {run.interims} interim; {run.text!r}",
                flush=True,
            )
            latencies += [v for _, v in run.finals]
            if run.after_clip is not None:
                after_clip.append(run.after_clip)
            else:
                notes.append(f"note: {name} (interim {interim}): no final after the clip's end")
            interims += run.interims
            after_close += run.after_close
        if after_close:
            notes.append(f"note: interim {interim}: {after_close} final(s) came only after the client half-closed")
        if not latencies:
            rows.append(["on" if interim else "off (the measure)", "0", "-", "-", "-", str(interims)])
            continue
        p50 = percentile(latencies, 50)
        verdict = f"**{p50:.2f}**" if p50 <= TARGET_FINAL else f"{p50:.2f} (over)"
        rows.append(
            [
                "on" if interim else "off (the measure)",
                str(len(latencies)),
                verdict,
                f"{max(latencies):.2f}",
                f"{percentile(after_clip, 50):.2f}" if after_clip else "-",
                str(interims),
            ]
        )
    return rows, notes


def _total_seconds(value: Any) -> float:
    """A Duration field as proto-plus hands it out (a timedelta) or as a protobuf Duration."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value.seconds + value.nanos / 1e9)


# --- report -----------------------------------------------------------------------------------------


def write_section(path: Path, section: str) -> None:
    """Put `section` (starting with HEADING) in `path` in place of its previous "## gRPC" section, or,
    the first time, before the first "## " section (the newest first, as the file has them)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = section.rstrip("\n") + "\n\n"
    own = re.search(rf"^{re.escape(HEADING)}\b.*?(?=^## |\Z)", text, flags=re.M | re.S)
    if own:
        text = text[: own.start()] + block + text[own.end() :]
    else:
        first = re.search(r"^## ", text, flags=re.M)
        at = first.start() if first else len(text)
        text = text[:at] + ("\n" if at and not text[:at].endswith("\n\n") else "") + block + text[at:]
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="timed Recognize rounds (median)")
    parser.add_argument("--warmups", type=int, default=1, help="untimed Recognize rounds first")
    parser.add_argument("--quick", action="store_true", help="2 clips, 2 rounds")
    parser.add_argument("--out", type=Path, help=f'write the "{HEADING}" section into this file')
    args = parser.parse_args()
    clips = QUICK_CLIPS if args.quick else CLIPS
    rounds = 2 if args.quick else args.rounds

    started = time.monotonic()
    grpc_port = free_port()
    with running_server(workers=2, threads=1, env={"ASR_GRPC_PORT": str(grpc_port)}) as url:
        target = f"127.0.0.1:{grpc_port}"
        timings = compare_recognize(target, url, clips, rounds, args.warmups)
        channel = grpc.insecure_channel(target)
        try:
            stream_table, notes = streaming_rows(google_client(channel), clips)
        finally:
            channel.close()
    notes += [f"note: {n}: gRPC and REST transcripts differ" for n, t in timings.items() if not t.same_text]

    recognize_header = ["clip", "audio s", "gRPC s (median)", "REST s (median)",
                        f"gRPC / REST (target <= {TARGET_RATIO})", "ratio of bests"]  # fmt: skip
    stream_header = ["interim results", "finals", f"final after its audio, p50 s (target <= {TARGET_FINAL})",
                     "max s", "last final after the clip's end, p50 s", "interim results seen"]  # fmt: skip
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    command = ".venv/bin/python -m bench.grpc_vs_rest" + (" --quick" if args.quick else f" --rounds {rounds}")
    section = "\n".join(
        [
            f"{HEADING} ({date})",
            "",
            "`bench/grpc_vs_rest.py`: the gRPC front (app/grpc) of the shipped layout (2 workers x 1 thread and the",
            "reserve, whisper-base). Recognize through the official google-cloud-speech client",
            "(`SpeechGrpcTransport` on an insecure channel) against `POST /v1/speech:recognize` (base64 JSON,",
            "httpx), the same WAV bytes on both, alternating. StreamingRecognize: each clip as LINEAR16 in",
            "100 ms chunks at real-time pace, then silence; a final's latency runs from when the chunk holding",
            "its `resultEndTime` was sent to its arrival (the VAD's 500 ms of silence included when",
            "`resultEndTime` is the end of speech); \"after the clip's end\" runs from the clip's last chunk.",
            "",
            f"`{command}`; {machine_info()}; Recognize: median of {rounds} round(s) after {args.warmups} "
            f"warm-up(s); run took {time.monotonic() - started:.0f} s.",
            *(["", *notes] if notes else []),
            "",
            markdown_table(recognize_header, recognize_rows(timings)),
            "",
            markdown_table(stream_header, stream_table),
            "",
        ]
    )
    print("\n" + section, flush=True)
    if args.out is not None:
        write_section(args.out, section)


if __name__ == "__main__":
    main()

"""Live transcription over /v1/realtime (OpenAI GA events): 1, 2 and 4 streams of real speech at
real-time pace, idle and while two 200 s files decode through speech:recognize.

Per stream, for each utterance (stream times from the server's speech_started/committed events,
wall times from when that audio was sent):
- first partial: from the start of speech to its first delta: how late the first words show;
- partial gap: between two deltas of one utterance (ASR_LIVE_PARTIAL_MS plus the decode): a word
  spoken mid-utterance shows about half a gap plus a decode after it is said;
- final latency: from the commit (the VAD's end of the utterance) to its completed text, and from
  the end of speech (which adds the silence the VAD waits for);
- WER of the finals against the references, beside the same audio decoded whole.
Stream i plays the clips from the i-th on (then the first ones), 0.37 s after the stream before it:
callers say different things, so their utterances end at different times. (Until 2026-12-04 every
stream played the clips in the same order, so all finals of a 4-stream row fell due within 1.1 s.)
Targets on 2 cores: first partial and final latency <= 1.0 s (p50) for one stream, <= 1.5x that at
4 streams and under load, WER within +1 point of whole-file decoding.

    .venv/bin/python -m bench.realtime [--clips N] [--streams 1,2,4] [--model NAME] [--idle-only] [--out FILE]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from websockets.sync.client import connect

from bench.common import machine_info, report, running_server
from bench.head_of_line import sync_load
from tests.audio_tools import ENGLISH, long_clip, read_pcm, references, wav_bytes
from tests.wer import wer

GAP = np.zeros(int(1.2 * 16000), np.float32)
TURN = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
CHUNK = 0.1


@dataclass
class StreamResult:
    first_partial: list[float] = field(default_factory=list)
    partial_gap: list[float] = field(default_factory=list)
    last_delta: dict[str, float] = field(default_factory=dict)
    after_commit: list[float] = field(default_factory=list)
    after_speech: list[float] = field(default_factory=list)
    finals: dict[str, str] = field(default_factory=dict)


def pcm24(pcm: np.ndarray) -> bytes:
    samples = np.interp(np.arange(0, len(pcm), 2 / 3), np.arange(len(pcm)), pcm)
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def one_stream(url: str, audio: bytes, result: StreamResult, model: str) -> None:
    ws_url = url.replace("http://", "ws://") + f"/v1/realtime?intent=transcription&model={model}"
    step = int(24000 * CHUNK) * 2
    with connect(ws_url, max_size=None) as ws:
        ws.recv()
        session = {"type": "transcription", "audio": {"input": {"turn_detection": TURN}}}
        ws.send(json.dumps({"type": "session.update", "session": session}))
        ws.recv()
        started = time.monotonic()

        def send() -> None:
            for index, start in enumerate(range(0, len(audio), step)):
                piece = base64.b64encode(audio[start : start + step]).decode()
                ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": piece}))
                time.sleep(max(0.0, started + (index + 1) * CHUNK - time.monotonic()))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        speech: dict[str, float] = {}
        stopped: dict[str, float] = {}
        committed: dict[str, float] = {}
        seconds = len(audio) / 48000
        while True:
            try:
                event = json.loads(ws.recv(timeout=30))
            except TimeoutError:
                break
            now = time.monotonic()
            kind, item = event["type"], event.get("item_id", "")
            if kind == "input_audio_buffer.speech_started":
                speech[item] = event["audio_start_ms"] / 1000 + TURN["prefix_padding_ms"] / 1000  # type: ignore[operator]
            elif kind == "input_audio_buffer.speech_stopped":
                stopped[item] = event["audio_end_ms"] / 1000
            elif kind == "input_audio_buffer.committed":
                committed[item] = now
            elif kind.endswith(".delta"):
                if item in result.last_delta:
                    result.partial_gap.append(now - result.last_delta[item])
                elif item in speech:
                    result.first_partial.append(now - (started + speech[item]))
                result.last_delta[item] = now
            elif kind.endswith("transcription.completed"):
                result.finals[item] = event["transcript"]
                if item in committed:
                    result.after_commit.append(now - committed[item])
                if item in stopped:
                    result.after_speech.append(now - (started + stopped[item]))
            if not sender.is_alive() and len(result.finals) == len(committed) and now - started > seconds + 3:
                break


def rotated(clips: list[str], first: int) -> tuple[np.ndarray, str]:
    """The clips from the `first`-th on, then the ones before it, with gaps: 16 kHz audio and
    reference."""
    order = clips[first % len(clips) :] + clips[: first % len(clips)]
    refs = references()
    pcm = np.concatenate([part for clip in order for part in (read_pcm(clip), GAP)])
    return pcm, " ".join(refs[c] for c in order)


def run(url: str, streams: list[tuple[bytes, str]], model: str) -> list[StreamResult]:
    results = [StreamResult() for _ in streams]
    threads = [
        threading.Thread(target=one_stream, args=(url, audio, r, model))
        for (audio, _), r in zip(streams, results, strict=True)
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.37)  # streams out of step, as real callers are
    for thread in threads:
        thread.join(600)
    return results


def p50(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=6, help="English clips per stream (in table order)")
    parser.add_argument("--streams", default="1,2,4", help="stream counts, comma-separated")
    parser.add_argument("--model", default="whisper-1", help="the streams' and the whole file's model")
    parser.add_argument("--idle-only", action="store_true", help="leave out the rows under load")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    clips = ENGLISH[: args.clips]
    pcm, reference = rotated(clips, 0)
    counts = [int(n) for n in args.streams.split(",")]
    streams = [(pcm24(audio), ref) for audio, ref in (rotated(clips, i) for i in range(max(counts)))]
    rows = []
    env = {"ASR_RESERVE_WORKERS": "1"}
    if args.model not in ("whisper-1", "whisper-base"):
        env["ASR_MODELS"] = f"whisper-base,{args.model}"
    with running_server(workers=2, threads=1, env=env) as url:
        files, data = {"file": ("a.wav", wav_bytes(pcm))}, {"model": args.model}
        whole = httpx.post(url + "/v1/audio/transcriptions", files=files, data=data, timeout=600).json()["text"]
        whole_wer = wer([reference], [whole])
        long_wav = wav_bytes(long_clip()[0])
        loads = [("idle", None), ("2 x 200 s decoding", long_wav)][: 1 if args.idle_only else 2]
        for label, load in loads:
            for count in counts:
                context: AbstractContextManager[None] = sync_load(url, load, 2) if load else nullcontext()
                with context:
                    if load:
                        time.sleep(3)
                    results = run(url, streams[:count], args.model)
                first = [v for r in results for v in r.first_partial]
                gap = [v for r in results for v in r.partial_gap]
                commit = [v for r in results for v in r.after_commit]
                speech_end = [v for r in results for v in r.after_speech]
                wers = [
                    wer([ref], [" ".join(r.finals.values())]) for (_, ref), r in zip(streams, results, strict=False)
                ]
                rows.append(
                    [label, str(count), p50(first), p50(gap), p50(commit), p50(speech_end),
                     f"{statistics.fmean(wers):.2%}", f"{whole_wer:.2%}"]
                )  # fmt: skip
                print(rows[-1], flush=True)
                print("  first stream's finals:", " | ".join(results[0].finals.values()), flush=True)
    context_lines = [
        machine_info(),
        f"{len(clips)} English clips ({len(pcm) / 16000:.0f} s with 1.2 s gaps) per stream at real-time pace, "
        "each stream from another clip on, "
        f"24 kHz PCM in 100 ms appends; server VAD {TURN['silence_duration_ms']} ms; 2 workers + reserve; "
        f"model {args.model}.",
    ]
    header = ["load", "streams", "first partial s", "partial gap s", "final after commit s",
              "final after speech s", "live WER", "whole-file WER"]  # fmt: skip
    report("Realtime", context_lines, header, rows, args.out)


if __name__ == "__main__":
    main()

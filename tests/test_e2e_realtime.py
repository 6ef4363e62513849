"""End to end: live transcription over /v1/realtime against `python -m app` and the real model,
driven by the official openai SDK (GA and beta) with real speech at real-time pace."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import av
import numpy as np
import openai
import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from tests.audio_tools import DATA, ENGLISH, read_pcm, references, wav_bytes
from tests.conftest import RealServer
from tests.wer import wer

pytestmark = pytest.mark.e2e
CLIPS = ["ps_librivox_0870.wav", "ps_librivox_0880.wav"]
GAP = np.zeros(int(1.2 * 16000), np.float32)
TURN = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 700}


def speech(clips: list[str]) -> np.ndarray:
    return np.concatenate([part for clip in clips for part in (read_pcm(clip), GAP)])


def pcm16(pcm: np.ndarray, rate: int) -> bytes:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = 16000
    frames = [*resampler.resample(frame), *resampler.resample(None)]
    return b"".join(bytes(f.planes[0])[: f.samples * 2] for f in frames)


def chunks(audio: bytes, rate: int, seconds: float = 0.1) -> Iterator[bytes]:
    step = int(rate * seconds) * 2
    for start in range(0, len(audio), step):
        yield audio[start : start + step]


def paced(send: Any, audio: bytes, rate: int, speed: float = 1.0) -> threading.Thread:
    """Send `audio` as appends from a thread, `speed` times real time."""

    def run() -> None:
        began = time.monotonic()
        for index, piece in enumerate(chunks(audio, rate)):
            send(base64.b64encode(piece).decode())
            time.sleep(max(0.0, began + (index + 1) * 0.1 / speed - time.monotonic()))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def sdk(server: RealServer) -> openai.OpenAI:
    ws = server.url.replace("http://", "ws://") + "/v1"
    return openai.OpenAI(base_url=server.url + "/v1", websocket_base_url=ws, api_key="unused", max_retries=0)


def collect(events: Iterator[Any], finals: int, timeout: float = 120) -> list[dict[str, Any]]:
    """Server events as dicts until `finals` completed (or failed) transcriptions have come."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    for event in events:
        seen.append({**event.to_dict(), "at": time.monotonic()})
        done = [e for e in seen if e["type"].endswith("input_audio_transcription.completed")]
        failed = [e for e in seen if e["type"].endswith((".failed", "error"))]
        assert not failed, failed
        if len(done) >= finals or time.monotonic() > deadline:
            break
    return seen


def check_turns(events: list[dict[str, Any]], items: int) -> list[str]:
    """Each item: speech started, stopped, committed, then its deltas, then completed; the texts."""
    kinds = [e["type"] for e in events]
    completed = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert len(completed) == items, kinds
    for final in completed:
        mine = [e for e in events if e.get("item_id") == final["item_id"]]
        order = [e["type"] for e in mine]
        assert order.index("input_audio_buffer.speech_started") < order.index("input_audio_buffer.committed")
        deltas = [e for e in mine if e["type"].endswith(".delta")]
        assert all(d["at"] <= final["at"] for d in deltas)
        assert final["usage"]["type"] == "duration" and final["usage"]["seconds"] > 0
    deltas = [e for e in events if e["type"].endswith(".delta")]
    assert deltas, "no partial arrived before its final"
    return [e["transcript"] for e in completed]


def test_ga_and_beta_sdk_clients_stream_at_once(real_server: RealServer) -> None:
    """Two official clients, GA and beta, each streaming three utterances in real time."""
    refs = references()
    audio = pcm16(speech(CLIPS), 24000)
    results: dict[str, list[str]] = {}

    def ga() -> None:
        with sdk(real_server).realtime.connect(
            model="gpt-4o-transcribe", extra_query={"intent": "transcription"}, max_retries=0
        ) as conn:
            events = iter(conn)
            assert next(events).type == "session.created"
            session = {"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}}}
            session["audio"]["input"]["turn_detection"] = TURN  # type: ignore[index]
            conn.session.update(session=session)  # type: ignore[arg-type]
            updated = next(events)
            assert updated.type == "session.updated", updated
            sender = paced(lambda b: conn.input_audio_buffer.append(audio=b), audio, 24000)
            seen = collect(events, len(CLIPS))
            sender.join()
            added = [e for e in seen if e["type"] == "conversation.item.added"]
            assert len(added) == len(CLIPS)
            results["ga"] = check_turns(seen, len(CLIPS))

    def beta() -> None:
        with sdk(real_server).beta.realtime.connect(
            model="gpt-4o-transcribe", extra_query={"intent": "transcription"}
        ) as conn:
            events = iter(conn)
            first = next(events)
            assert first.type == "transcription_session.created", first
            conn.send(
                {
                    "type": "transcription_session.update",
                    "session": {"input_audio_format": "pcm16", "turn_detection": TURN},
                }
            )  # type: ignore[arg-type]
            updated = next(events)
            assert updated.type == "transcription_session.updated", updated
            sender = paced(lambda b: conn.input_audio_buffer.append(audio=b), audio, 24000)
            seen = collect(events, len(CLIPS))
            sender.join()
            assert any(e["type"] == "conversation.item.created" for e in seen)
            results["beta"] = check_turns(seen, len(CLIPS))

    threads = [threading.Thread(target=f) for f in (ga, beta)]
    failures: list[BaseException] = []
    for thread in threads:
        thread.run = _capture(thread.run, failures)  # type: ignore[method-assign]
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not failures, failures
    for dialect, texts in results.items():
        assert wer([refs[c] for c in CLIPS], texts) <= 0.10, (dialect, texts)


def _capture(run: Any, failures: list[BaseException]) -> Any:
    def wrapped() -> None:
        try:
            run()
        except BaseException as exc:
            failures.append(exc)

    return wrapped


def test_live_finals_are_as_accurate_as_decoding_the_whole_file(real_server: RealServer) -> None:
    """All ten English clips in one stream (at 4x real time, to keep the suite short): the finals'
    WER within 1 point of the same audio decoded whole (the bench measures it at 1x too)."""
    refs = references()
    pcm = speech(ENGLISH)
    whole = sdk(real_server).audio.transcriptions.create(model="whisper-1", file=("all.wav", wav_bytes(pcm))).text
    audio = pcm16(pcm, 24000)
    url = real_server.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription&model=whisper-1"
    finals: dict[str, str] = {}
    with connect(url) as ws:
        ws.recv()
        ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "transcription", "audio": {"input": {"turn_detection": TURN}}},
                }
            )
        )
        ws.recv()

        def append(b64: str) -> None:
            ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64}))

        paced(append, audio, 24000, speed=4.0).join()
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))  # whatever the VAD has not ended yet
        committed: set[str] = set()
        while True:
            # Done once every committed item has its final and nothing more comes for 5 s.
            try:
                event = json.loads(ws.recv(timeout=5 if committed and set(finals) == committed else 120))
            except TimeoutError:
                break
            if event["type"] == "input_audio_buffer.committed":
                committed.add(event["item_id"])
            elif event["type"] == "conversation.item.input_audio_transcription.completed":
                finals[event["item_id"]] = event["transcript"]
            elif event["type"] == "error":
                assert "buffer too small" in event["error"]["message"], event  # the VAD had ended the last one
        assert committed and set(finals) == committed
    live = " ".join(finals.values())
    reference = " ".join(refs[c] for c in ENGLISH)
    live_wer, whole_wer = wer([reference], [live]), wer([reference], [whole])
    print(f"live WER {live_wer:.2%}, whole-file WER {whole_wer:.2%}")
    assert live_wer <= whole_wer + 0.01, (live, whole)


def update(audio_input: dict[str, Any]) -> str:
    return json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": audio_input}}})


def test_bad_events_get_error_events_and_the_connection_stays_open(real_server: RealServer) -> None:
    url = real_server.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription&model=whisper-1"
    with connect(url) as ws:
        assert json.loads(ws.recv())["type"] == "session.created"
        for bad, text in [
            ("{not json", "not valid JSON"),
            (json.dumps({"event_id": "e1"}), "'type' field is missing"),
            (json.dumps({"type": "response.create"}), "Invalid value: 'response.create'"),
            (json.dumps({"type": "input_audio_buffer.append", "audio": "%%%"}), "base64"),
            (json.dumps({"type": "input_audio_buffer.commit"}), "buffer too small"),
            (
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "type": "transcription",
                            "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
                        },
                    }
                ),
                "24000",
            ),
            (
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "type": "transcription",
                            "audio": {"input": {"transcription": {"model": "no-such-model"}}},
                        },
                    }
                ),
                "no-such-model",
            ),
        ]:
            ws.send(bad)
            reply = json.loads(ws.recv())
            assert reply["type"] == "error" and text in reply["error"]["message"], (bad, reply)
        ws.send(json.dumps({"type": "input_audio_buffer.clear", "event_id": "x"}))
        assert json.loads(ws.recv())["type"] == "input_audio_buffer.cleared"


RIVA_SCRIPT = Path(__file__).parent / "clients" / "riva_realtime_asr_client.py"


def test_the_riva_realtime_script_transcribes_a_file(real_server: RealServer, tmp_path: Path) -> None:
    """NVIDIA's own script, unchanged: POST a session, conversation.created, update, the WAV file's
    bytes appended and committed chunk by chunk, done, then a completed with is_last_result."""
    out = tmp_path / "out.txt"
    host = real_server.url.removeprefix("http://")
    command = [sys.executable, str(RIVA_SCRIPT), "--input-file", str(DATA / "jfk.wav"), "--server", host]
    result = subprocess.run([*command, "--output-text", str(out)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert wer([references()["jfk.wav"]], [out.read_text()]) <= 0.10, result.stderr[-3000:]


def test_the_riva_client_streams_at_real_time_with_partials_and_word_times(
    real_server: RealServer, caplog: pytest.LogCaptureFixture
) -> None:
    import riva.client.realtime as riva

    host = real_server.url.removeprefix("http://")
    argv = ["--input-file", "x.wav", "--server", host, "--word-time-offsets", "--automatic-punctuation"]
    with mock.patch.object(sys, "argv", ["riva", *argv]):
        args = _riva_script().parse_args()
    wav = wav_bytes(speech(CLIPS))

    async def paced_chunks() -> AsyncIterator[bytes]:
        step = 1600 * 2
        for index, start in enumerate(range(0, len(wav), step)):
            yield wav[start : start + step]  # the header rides in the first chunk, as the script sends it
            await asyncio.sleep(0.1 if index else 0)

    async def run() -> str:
        client = riva.RealtimeClientASR(args)
        await client.connect()
        try:
            await asyncio.gather(client.send_audio_chunks(paced_chunks()), client.receive_responses())
        finally:
            await client.disconnect()
        return client.final_transcript

    with caplog.at_level(logging.INFO, logger="riva.client.realtime"):
        final = asyncio.run(run())
    refs = references()
    assert wer([" ".join(refs[c] for c in CLIPS)], [final]) <= 0.10, final
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Transcript: ") for m in logged), logged  # interim text arrived
    assert sum(m.startswith("Interim Transcript: ") for m in logged) >= len(CLIPS), logged


def _riva_script() -> Any:
    spec = importlib.util.spec_from_file_location("riva_realtime_asr_client", RIVA_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_mod9_style_client_streams_real_speech(real_server: RealServer) -> None:
    """Mod9's protocol with the websockets library, as Mod9's own client does: options, then the
    WAV file's bytes at real-time pace in binary messages, an empty one to end."""
    clips = CLIPS[:2]
    wav = wav_bytes(speech(clips))
    url = real_server.url.replace("http://", "ws://") + "/mod9"
    got: list[dict[str, Any]] = []
    with connect(url) as ws:
        ws.send(json.dumps({"partial": True, "transcript-formatted": True, "word-intervals": True}))

        def send(b64: str) -> None:
            ws.send(base64.b64decode(b64))

        sender = paced(send, wav, 16000)
        ender = threading.Thread(target=lambda: (sender.join(), ws.send(b"")), daemon=True)
        ender.start()
        with contextlib.suppress(ConnectionClosedOK):
            while True:
                got.append(json.loads(ws.recv(timeout=60)))
    assert got[0]["status"] == "processing" and got[-1] == {"status": "completed"}
    results = [r for r in got if "result_index" in r]
    finals = [r for r in results if r["final"]]
    assert [r["result_index"] for r in finals] == list(range(len(finals)))
    first_final = results.index(finals[0])
    assert any(not r["final"] for r in results[:first_final]), results  # a partial before the final
    assert all(r["words"] and r["interval"][0] < r["interval"][1] for r in finals)
    refs = references()
    assert wer([" ".join(refs[c] for c in clips)], [" ".join(r["transcript"] for r in finals)]) <= 0.10

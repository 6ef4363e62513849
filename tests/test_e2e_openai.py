"""End to end: `python -m app` with the bundled Whisper base model, driven by the official openai SDK."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from tests.audio_tools import DATA, ENGLISH, long_clip, references, tts_references, wav_bytes
from tests.conftest import RealServer
from tests.wer import wer

pytestmark = pytest.mark.e2e


def client(server: RealServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=600)


def metric(server: RealServer, name: str) -> float:
    text = httpx.get(server.url + "/v1/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_english_wer_is_at_most_5_percent(real_server: RealServer) -> None:
    sdk = client(real_server)
    refs = references()

    def transcribe(name: str) -> str:
        with (DATA / name).open("rb") as f:
            return sdk.audio.transcriptions.create(model="whisper-1", file=f).text

    with ThreadPoolExecutor(2) as pool:
        hypotheses = list(pool.map(transcribe, ENGLISH))
    score = wer([refs[n] for n in ENGLISH], hypotheses)
    print(f"WER over {len(ENGLISH)} clips: {score:.2%}")
    assert score <= 0.05


def test_every_response_format_parses(real_server: RealServer) -> None:
    sdk = client(real_server)
    with (DATA / "jfk.wav").open("rb") as f:
        audio = ("jfk.wav", f.read(), "audio/wav")
    text = sdk.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
    assert isinstance(text, str) and "ask not what your country" in text.lower()
    srt = sdk.audio.transcriptions.create(model="whisper-1", file=audio, response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:") and "," in srt.splitlines()[1]
    vtt = sdk.audio.transcriptions.create(model="whisper-1", file=audio, response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")
    verbose = sdk.audio.transcriptions.create(
        model="whisper-1", file=audio, response_format="verbose_json", timestamp_granularities=["word", "segment"]
    )
    assert verbose.language == "english" and verbose.duration == pytest.approx(11.0)
    assert verbose.segments and verbose.segments[0].tokens and verbose.words
    assert verbose.words[0].word == "And" and verbose.words[-1].end <= 11.0
    plain = sdk.audio.transcriptions.create(model="whisper-1", file=audio, response_format="json")
    assert plain.text == verbose.text
    tiny = sdk.audio.transcriptions.create(model="whisper-tiny.en", file=audio)
    assert "fellow americans" in tiny.text.lower()


@pytest.mark.parametrize(
    ("clip", "name"), [("espeak_de.wav", "german"), ("espeak_fr.wav", "french"), ("espeak_es.wav", "spanish")]
)
def test_language_detection(real_server: RealServer, clip: str, name: str) -> None:
    assert tts_references()[clip][0] in ("de", "fr", "es")
    with (DATA / clip).open("rb") as f:
        result = client(real_server).audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json"
        )
    assert result.language == name


def test_translation_returns_english(real_server: RealServer) -> None:
    with (DATA / "espeak_de.wav").open("rb") as f:
        result = client(real_server).audio.translations.create(
            model="whisper-1", file=f, response_format="verbose_json"
        )
    assert result.language == "english"
    assert "good morning" in result.text.lower() and "park" in result.text.lower()


def test_sse_stream_of_a_long_clip(real_server: RealServer) -> None:
    """Deltas arrive window by window while the rest of the file is still decoding."""
    pcm, _ = long_clip()
    body = wav_bytes(pcm[: 100 * 16000])
    deltas, done, busy_at_first = [], [], []
    files = {"file": ("a.wav", body, "audio/wav")}
    data = {"model": "whisper-1", "stream": "true"}
    with httpx.stream("POST", real_server.url + "/v1/audio/transcriptions", files=files, data=data, timeout=600) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                event = json.loads(line[6:])
                (deltas if event["type"] == "transcript.text.delta" else done).append(event)
                if len(deltas) == 1 and not busy_at_first:
                    busy_at_first.append(metric(real_server, "asr_in_flight_requests"))
    assert len(deltas) > 3 and len(done) == 1
    assert busy_at_first[0] >= 1  # the first delta came while later windows were still decoding
    assert "".join(d["delta"] for d in deltas) == done[0]["text"]
    assert "fellow americans" in done[0]["text"].lower()


def test_client_disconnect_frees_the_decoder(real_server: RealServer) -> None:
    before = metric(real_server, 'asr_cancelled_requests_total{stage="decoding"}')
    pcm, _ = long_clip()
    with pytest.raises(httpx.ReadTimeout):
        files = {"file": ("long.wav", wav_bytes(pcm), "audio/wav")}
        url = real_server.url + "/v1/audio/transcriptions"
        httpx.post(url, files=files, data={"model": "whisper-1"}, timeout=httpx.Timeout(60, read=3))
    deadline = time.monotonic() + 120
    while (
        metric(real_server, 'asr_cancelled_requests_total{stage="decoding"}') <= before
        or metric(real_server, "asr_in_flight_requests") > 0
    ):
        assert time.monotonic() < deadline, "the decode was not aborted"
        time.sleep(0.2)


def test_long_decode_does_not_delay_liveness(real_server: RealServer) -> None:
    pcm, _ = long_clip()
    body = wav_bytes(pcm)
    finished = threading.Event()

    def transcribe() -> None:
        httpx.post(
            real_server.url + "/v1/audio/transcriptions",
            files={"file": ("long.wav", body, "audio/wav")},
            data={"model": "whisper-1"},
            timeout=600,
        )
        finished.set()

    worker = threading.Thread(target=transcribe)
    worker.start()
    while metric(real_server, "asr_in_flight_requests") < 1:
        time.sleep(0.05)
    answers = 0
    for _ in range(20):
        r = httpx.get(real_server.url + "/v1/health/live", timeout=5)
        assert r.status_code == 200
        answers += 1
    assert not finished.is_set(), "liveness answered only after the decode"
    assert answers == 20
    worker.join()


def test_sigkilled_worker_is_replaced_and_the_request_still_answers(real_server: RealServer) -> None:
    exits_before = metric(real_server, 'asr_worker_exits_total{reason="crashed"}')
    with (DATA / "moonshine_two_cities.wav").open("rb") as f:
        audio = f.read()
    result: dict[str, str] = {}

    def transcribe() -> None:
        r = httpx.post(
            real_server.url + "/v1/audio/transcriptions",
            files={"file": ("a.wav", audio, "audio/wav")},
            data={"model": "whisper-1"},
            timeout=600,
        )
        result["text"] = r.json()["text"]

    worker = threading.Thread(target=transcribe)
    worker.start()
    while metric(real_server, "asr_in_flight_requests") < 1:
        time.sleep(0.05)
    pids = real_server.worker_pids()
    assert len(pids) == 3  # 2 workers and the reserve
    before = {pid: _cpu_ticks(pid) for pid in pids}
    time.sleep(0.5)
    decoding = max(pids, key=lambda pid: _cpu_ticks(pid) - before[pid])
    os.kill(decoding, signal.SIGKILL)
    worker.join()
    assert "best of times" in result["text"].lower()
    assert metric(real_server, 'asr_worker_exits_total{reason="crashed"}') == exits_before + 1
    deadline = time.monotonic() + 120
    while metric(real_server, "asr_workers_ready") < 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert httpx.get(real_server.url + "/v1/health/ready").status_code == 200


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_readiness_before_and_after_loading(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = RealServer(tmp_path_factory.mktemp("fresh"), ASR_WORKERS="1")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                live = httpx.get(server.url + "/v1/health/live", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert live.status_code == 200
        assert httpx.get(server.url + "/v1/health/ready").status_code == 503
        server.wait_ready()
        assert httpx.get(server.url + "/v1/health/ready").status_code == 200
    finally:
        server.stop()

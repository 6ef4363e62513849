"""End to end: the official google-cloud-speech client (REST transport) against `python -m app`,
and long-running operations that survive a SIGKILLed server (SQLite and Redis job stores)."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import speech, speech_v1p1beta1

from tests.audio_tools import DATA, read_pcm, wav_bytes
from tests.conftest import RealServer

pytestmark = pytest.mark.e2e
JFK = (DATA / "jfk.wav").read_bytes()
CITIES = (DATA / "moonshine_two_cities.wav").read_bytes()
# Its first 12 s ("It was the best of times, ..."): enough for a job to be caught running, a quarter
# of the decode for the tests that restart servers.
OPENING = wav_bytes(read_pcm("moonshine_two_cities.wav")[: 12 * 16000])


def client(server: RealServer, module: Any = speech) -> Any:
    options = ClientOptions(api_endpoint=server.url)
    return module.SpeechClient(transport="rest", client_options=options, credentials=AnonymousCredentials())


def full_config(module: Any = speech) -> Any:
    return module.RecognitionConfig(
        encoding=module.RecognitionConfig.AudioEncoding.LINEAR16,
        sample_rate_hertz=16000,
        language_code="en-US",
        enable_word_time_offsets=True,
        enable_word_confidence=True,
        enable_automatic_punctuation=True,
        max_alternatives=3,
    )


def test_official_client_recognize(real_server: RealServer) -> None:
    response = client(real_server).recognize(config=full_config(), audio=speech.RecognitionAudio(content=JFK))
    result = response.results[0]
    best = result.alternatives[0]
    assert "ask not what your country can do for you" in best.transcript.lower()
    assert len(result.alternatives) == 3 and len({a.transcript for a in result.alternatives}) == 3
    assert 0 < best.confidence <= 1 and result.language_code == "en-us"
    words = best.words
    assert words[0].word == "And" and words[0].start_time.total_seconds() == 0
    assert all(0 < w.confidence <= 1 for w in words)
    assert words[-1].end_time.total_seconds() <= 11.0 and words[-1].end_time > words[0].end_time
    assert response.total_billed_time.total_seconds() == 11 and response.request_id > 0


def test_official_client_without_punctuation_and_v1p1beta1(real_server: RealServer) -> None:
    config = speech_v1p1beta1.RecognitionConfig(language_code="en-US", enable_automatic_punctuation=False)
    response = client(real_server, speech_v1p1beta1).recognize(
        config=config, audio=speech_v1p1beta1.RecognitionAudio(content=JFK)
    )
    text = response.results[0].alternatives[0].transcript
    assert text == text.lower() and "," not in text and "fellow americans" in text


def test_official_client_long_running(real_server: RealServer) -> None:
    operation = client(real_server).long_running_recognize(
        config=full_config(), audio=speech.RecognitionAudio(content=CITIES)
    )
    response = operation.result(timeout=300)
    assert type(response).__name__ == "LongRunningRecognizeResponse"
    text = " ".join(r.alternatives[0].transcript for r in response.results).lower()
    assert "it was the best of times" in text and "superlative degree" in text
    assert response.results[0].alternatives[0].words[0].start_time.total_seconds() >= 0
    assert operation.metadata.progress_percent == 100


def start_jobs(server: RealServer, count: int) -> list[str]:
    body = {"config": {"languageCode": "en-US"}, "audio": {"content": base64.b64encode(OPENING).decode()}}
    return [
        httpx.post(server.url + "/v1/speech:longrunningrecognize", json=body, timeout=30).json()["name"]
        for _ in range(count)
    ]


def wait_all_done(server: RealServer, names: list[str], timeout: float = 300) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(names):
        assert time.monotonic() < deadline, f"not done: {set(names) - set(done)}"
        for name in names:
            if name not in done:
                operation = httpx.get(f"{server.url}/v1/operations/{name}", timeout=10).json()
                if operation.get("done"):
                    done[name] = operation
        time.sleep(0.3)
    return [done[n] for n in names]


def wait_running(server: RealServer) -> None:
    deadline = time.monotonic() + 60
    while "asr_in_flight_requests 1.0" not in httpx.get(server.url + "/v1/metrics").text:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def assert_transcribed(operations: list[dict[str, Any]]) -> None:
    for operation in operations:
        assert "error" not in operation, operation
        text = " ".join(r["alternatives"][0]["transcript"] for r in operation["response"]["results"]).lower()
        assert "best of times" in text


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_operations_survive_a_sigkilled_server(tmp_path: Path, request: pytest.FixtureRequest, store: str) -> None:
    env = {"ASR_WORKERS": "1", "ASR_JOB_LEASE_SECONDS": "3", "ASR_MODELS": "whisper-base"}
    if store == "redis":
        env["ASR_REDIS_URL"] = request.getfixturevalue("redis_url").replace("/0", "/1")
    first = RealServer(tmp_path, **env)
    try:
        first.wait_ready()
        names = start_jobs(first, 3)
        wait_running(first)
    finally:
        first.kill()
    second = RealServer(tmp_path, **env)
    try:
        second.wait_ready()
        assert_transcribed(wait_all_done(second, names))
    finally:
        second.stop()


def test_two_servers_share_operations_through_redis(tmp_path: Path, redis_url: str) -> None:
    env = {"ASR_WORKERS": "1", "ASR_REDIS_URL": redis_url.replace("/0", "/2"), "ASR_MODELS": "whisper-base"}
    a, b = RealServer(tmp_path / "a", **env), RealServer(tmp_path / "b", **env)
    try:
        a.wait_ready()
        b.wait_ready()
        names = start_jobs(a, 2)
        seen = httpx.get(f"{b.url}/v1/operations/{names[0]}").json()
        assert seen["name"] == names[0] and seen["metadata"]["@type"].endswith("v1.LongRunningRecognizeMetadata")
        assert_transcribed(wait_all_done(b, names))
        listed = [op["name"] for op in httpx.get(f"{b.url}/v1/operations").json()["operations"]]
        assert set(names) <= set(listed)
    finally:
        a.stop()
        b.stop()

"""End to end over gRPC: the unchanged official clients (google-cloud-speech on its default gRPC
transport, nvidia-riva-client, grpc health) against `python -m app` and the real model, with real
speech sent at real-time pace where the clients stream."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import riva.client
from google.cloud import speech
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport
from grpc_health.v1 import health_pb2, health_pb2_grpc
from riva.client.proto import riva_asr_pb2

from tests.audio_tools import DATA, read_pcm, references
from tests.conftest import RealServer
from tests.wer import wer

pytestmark = pytest.mark.e2e
REFS = references()
JFK = (DATA / "jfk.wav").read_bytes()
WER_CLIPS = [
    "jfk.wav", "ps_librivox_0870.wav", "ps_librivox_0880.wav", "ps_librivox_0890.wav",
    "ps_librivox_0920.wav", "ps_librivox_0930.wav",
]  # fmt: skip
RIVA_CLIPS = ["ps_librivox_0870.wav", "ps_librivox_0880.wav"]
GAP = np.zeros(int(1.2 * 16000), np.float32)
CHUNK_SECONDS = 0.1


def pcm16(pcm: np.ndarray) -> bytes:
    """Headerless 16 kHz little-endian LINEAR16 of float samples."""
    return bytes((np.clip(pcm, -1.0, 1.0) * 32767).astype("<i2").tobytes())


def paced(audio: bytes, rate: int = 16000) -> Iterator[bytes]:
    """`audio` in 100 ms chunks, one every 100 ms (real time)."""
    step = int(rate * CHUNK_SECONDS) * 2
    for start in range(0, len(audio), step):
        if start:
            time.sleep(CHUNK_SECONDS)
        yield audio[start : start + step]


@pytest.fixture(scope="module")
def google(real_server: RealServer) -> Iterator[speech.SpeechClient]:
    """SpeechClient on its gRPC transport over an insecure channel (no credentials needed)."""
    channel = grpc.insecure_channel(real_server.grpc_target)
    try:
        yield speech.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    finally:
        channel.close()


@pytest.fixture(scope="module")
def riva_asr(real_server: RealServer) -> Iterator[riva.client.ASRService]:
    auth = riva.client.Auth(uri=real_server.grpc_target)
    try:
        yield riva.client.ASRService(auth)
    finally:
        auth.channel.close()


def joined(results: Any) -> str:
    return " ".join(r.alternatives[0].transcript for r in results if r.alternatives)


def seconds(value: Any) -> float:
    return float(value.total_seconds())


def test_grpc_recognize_n_best_with_word_times(google: speech.SpeechClient) -> None:
    """Recognize over gRPC: three distinct alternatives, sane confidences, monotonic word times."""
    config = speech.RecognitionConfig(
        language_code="en-US", enable_word_time_offsets=True, enable_automatic_punctuation=True, max_alternatives=3
    )
    response = google.recognize(config=config, audio=speech.RecognitionAudio(content=JFK), timeout=120)
    assert response.results, response
    assert wer([REFS["jfk.wav"]], [joined(response.results)]) <= 0.05, response
    result = response.results[0]
    alternatives = result.alternatives
    assert len(alternatives) == 3 and len({a.transcript for a in alternatives}) == 3, alternatives
    assert all(0 < a.confidence <= 1 for a in alternatives), alternatives
    assert result.language_code == "en-us" and seconds(result.result_end_time) > 0
    words = [w for r in response.results for w in r.alternatives[0].words]
    assert len(words) >= 20 and words[0].word == "And"
    starts, ends = [seconds(w.start_time) for w in words], [seconds(w.end_time) for w in words]
    assert all(s <= e for s, e in zip(starts, ends, strict=True)), words
    assert starts == sorted(starts) and ends == sorted(ends), words
    assert starts[0] >= 0 and ends[-1] <= 11.0
    assert seconds(response.total_billed_time) == 11 and response.request_id > 0


def test_grpc_long_running_recognize_polls_get_operation(google: speech.SpeechClient) -> None:
    """LongRunningRecognize over gRPC: the operations client polls GetOperation to the result."""
    config = speech.RecognitionConfig(language_code="en-US", enable_word_time_offsets=True)
    operation = google.long_running_recognize(config=config, audio=speech.RecognitionAudio(content=JFK), timeout=60)
    assert operation.operation.name
    response = operation.result(timeout=120)  # type: ignore[no-untyped-call]
    assert type(response).__name__ == "LongRunningRecognizeResponse"
    assert wer([REFS["jfk.wav"]], [joined(response.results)]) <= 0.05, response
    assert response.results[0].alternatives[0].words[0].start_time.total_seconds() >= 0
    assert operation.operation.done and operation.metadata.progress_percent == 100


def test_grpc_streaming_recognize_real_time_with_interim_results(google: speech.SpeechClient) -> None:
    """StreamingRecognize at real-time pace: interim results come while an utterance is spoken,
    before its final; the finals match the reference."""
    config = speech.StreamingRecognitionConfig(
        config=speech.RecognitionConfig(
            encoding=speech.RecognitionConfig.AudioEncoding.LINEAR16, sample_rate_hertz=16000, language_code="en-US"
        ),
        interim_results=True,
    )
    audio = pcm16(read_pcm("jfk.wav"))
    requests = (speech.StreamingRecognizeRequest(audio_content=chunk) for chunk in paced(audio))
    began = time.monotonic()
    # The client's SpeechHelpers.streaming_recognize(config, requests): mypy sees the raw GAPIC signature.
    responses = google.streaming_recognize(config, requests, timeout=120)  # type: ignore[call-arg, arg-type]
    results = [r for response in responses for r in response.results]
    elapsed = time.monotonic() - began
    assert elapsed >= 10, f"the stream ended after {elapsed:.1f} s, before the audio was all sent"
    finals = [r for r in results if r.is_final]
    assert finals, results
    last_final = max(i for i, r in enumerate(results) if r.is_final)
    interims = [r for r in results[:last_final] if not r.is_final]
    assert interims, f"no interim result before a final: {results}"
    assert all(0 < r.stability < 1 for r in interims), interims
    ends = [seconds(r.result_end_time) for r in finals]
    assert all(e > 0 for e in ends) and ends == sorted(ends) and ends[-1] <= 11.5, ends
    transcript = joined(finals)
    score = wer([REFS["jfk.wav"]], [transcript])
    print(f"gRPC streaming WER (jfk.wav, {len(finals)} finals, {len(interims)} interims): {score:.2%}")
    assert score <= 0.05, transcript


def test_grpc_recognize_wer_is_no_worse_than_rest(google: speech.SpeechClient, real_server: RealServer) -> None:
    """On the same clips and config, gRPC Recognize's WER is within 0.5 points of the REST path's."""
    references_ = [REFS[name] for name in WER_CLIPS]
    grpc_texts, rest_texts = [], []
    with httpx.Client(base_url=real_server.url, timeout=120) as http:
        for name in WER_CLIPS:
            audio = (DATA / name).read_bytes()
            config = speech.RecognitionConfig(language_code="en-US")
            response = google.recognize(config=config, audio=speech.RecognitionAudio(content=audio), timeout=120)
            grpc_texts.append(joined(response.results))
            body = {"config": {"languageCode": "en-US"}, "audio": {"content": base64.b64encode(audio).decode()}}
            answer = http.post("/v1/speech:recognize", json=body)
            assert answer.status_code == 200, answer.text
            rest_texts.append(" ".join(r["alternatives"][0]["transcript"] for r in answer.json().get("results", [])))
    grpc_wer, rest_wer = wer(references_, grpc_texts), wer(references_, rest_texts)
    print(f"WER over {len(WER_CLIPS)} clips: gRPC {grpc_wer:.2%}, REST {rest_wer:.2%}")
    assert grpc_wer <= rest_wer + 0.005, (grpc_texts, rest_texts)
    assert grpc_wer <= 0.10, grpc_texts


def riva_config(**fields: Any) -> riva.client.RecognitionConfig:
    return riva.client.RecognitionConfig(
        language_code="en-US",
        max_alternatives=1,
        enable_automatic_punctuation=True,
        enable_word_time_offsets=True,
        verbatim_transcripts=False,
        **fields,
    )


def test_riva_client_offline_recognize(riva_asr: riva.client.ASRService) -> None:
    """riva-client's offline_recognize on a WAV file's bytes: the reference, with millisecond word times."""
    response = riva_asr.offline_recognize(JFK, riva_config())
    assert response.results, response
    assert wer([REFS["jfk.wav"]], [joined(response.results)]) <= 0.05, response
    words = [w for r in response.results for w in r.alternatives[0].words]
    assert words and all(0 <= w.start_time <= w.end_time <= 11_000 for w in words), words
    assert [w.start_time for w in words] == sorted(w.start_time for w in words)
    assert all(0 < r.alternatives[0].confidence <= 1 for r in response.results)
    assert all(r.alternatives[0].language_code == ["en-US"] for r in response.results)
    models = riva_asr.stub.GetRivaSpeechRecognitionConfig(riva_asr_pb2.RivaSpeechRecognitionConfigRequest())
    assert {"whisper-base", "whisper-tiny.en"} <= {m.model_name for m in models.model_config}


def test_riva_client_streaming_real_time(riva_asr: riva.client.ASRService) -> None:
    """riva-client's streaming_response_generator on raw PCM at real-time pace: finals match the references."""
    audio = pcm16(np.concatenate([part for clip in RIVA_CLIPS for part in (read_pcm(clip), GAP)]))
    config = riva.client.StreamingRecognitionConfig(
        config=riva_config(encoding=riva.client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=16000),
        interim_results=True,
    )
    results = [r for response in riva_asr.streaming_response_generator(paced(audio), config) for r in response.results]
    finals = [r for r in results if r.is_final]
    assert finals and any(not r.is_final for r in results), results
    processed = [r.audio_processed for r in finals]
    assert processed == sorted(processed) and 0 < processed[-1] <= len(audio) / 32000 + 0.01, processed
    transcript = joined(finals)
    score = wer([" ".join(REFS[c] for c in RIVA_CLIPS)], [transcript])
    print(f"Riva streaming WER ({len(finals)} finals): {score:.2%}")
    assert score <= 0.10, transcript


def test_grpc_health_is_serving(real_server: RealServer) -> None:
    """grpc.health.v1 Check on the ready server: SERVING for the server and each API service."""
    with grpc.insecure_channel(real_server.grpc_target) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # its type stub lists no methods
        for service in ("", "google.cloud.speech.v1.Speech", "nvidia.riva.asr.RivaSpeechRecognition"):
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service

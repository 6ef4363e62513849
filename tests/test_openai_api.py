"""The OpenAI/NIM surface in process, on the fake engine: shapes, envelopes, limits, probes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from tests.audio_tools import wav_bytes
from tests.conftest import AppFactory, running_app, wait_ready
from tests.fakes import FakeEngineFactory

WAV_12S = wav_bytes(np.zeros(12 * 16000, np.float32))


def upload(**fields: str) -> dict[str, object]:
    data = {"model": "whisper-1"} | fields
    return {"files": {"file": ("speech.wav", WAV_12S, "audio/wav")}, "data": data}


def assert_envelope(response: httpx.Response, status: int, param: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return error


async def test_json_is_the_default(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post("/v1/audio/transcriptions", **upload())
    assert r.status_code == 200
    assert r.json() == {
        "text": "Segment 0, fake. Segment 1, fake. Segment 2, fake.",
        "usage": {"type": "duration", "seconds": 12},
    }
    assert r.headers["x-request-id"]


async def test_text_srt_vtt(fake_client: httpx.AsyncClient) -> None:
    text = await fake_client.post("/v1/audio/transcriptions", **upload(response_format="text"))
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text == "Segment 0, fake. Segment 1, fake. Segment 2, fake.\n"
    srt = (await fake_client.post("/v1/audio/transcriptions", **upload(response_format="srt"))).text
    assert srt.startswith("1\n00:00:00,000 --> 00:00:05,000\nSegment 0, fake.\n\n2\n00:00:05,000 --> 00:00:10,000\n")
    assert srt.endswith("3\n00:00:10,000 --> 00:00:12,000\nSegment 2, fake.\n\n")
    vtt = (await fake_client.post("/v1/audio/transcriptions", **upload(response_format="vtt"))).text
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nSegment 0, fake.\n\n")


@pytest.mark.parametrize(
    ("granularities", "segments", "words"),
    [
        ((), True, False),
        (("segment",), True, False),
        (("word",), False, True),
        (("word", "segment"), True, True),
        (("segment", "word"), True, True),
    ],
)
async def test_verbose_json_granularities(
    fake_client: httpx.AsyncClient, granularities: tuple[str, ...], segments: bool, words: bool
) -> None:
    files = {"file": ("a.wav", WAV_12S, "audio/wav")}
    data = {"model": "whisper-1", "response_format": "verbose_json", "timestamp_granularities[]": list(granularities)}
    r = await fake_client.post("/v1/audio/transcriptions", files=files, data=data)
    body = r.json()
    assert body["task"] == "transcribe" and body["language"] == "english" and body["duration"] == 12.0
    assert ("segments" in body) is segments and ("words" in body) is words
    if segments:
        first = body["segments"][0]
        assert set(first) == {
            "id",
            "seek",
            "start",
            "end",
            "text",
            "tokens",
            "temperature",
            "avg_logprob",
            "compression_ratio",
            "no_speech_prob",
        }
        assert first["id"] == 0 and first["text"] == " Segment 0, fake." and first["tokens"] == [1, 2, 3]
    if words:
        assert body["words"][0] == {"word": "segment-0", "start": 0.0, "end": 5.0}


async def test_granularity_without_brackets_is_accepted(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post(
        "/v1/audio/transcriptions", **upload(response_format="verbose_json", timestamp_granularities="word")
    )
    assert "words" in r.json()


async def test_word_granularity_with_json_is_refused(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post("/v1/audio/transcriptions", **upload(**{"timestamp_granularities[]": "word"}))
    assert_envelope(r, 400, "timestamp_granularities")


async def test_missing_file_and_missing_model(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post("/v1/audio/transcriptions", data={"model": "whisper-1"}, files={"other": ("x", b"1")})
    assert_envelope(r, 400, "file")
    r = await fake_client.post("/v1/audio/transcriptions", files={"file": ("a.wav", WAV_12S, "audio/wav")})
    assert_envelope(r, 400, "model")
    r = await fake_client.post("/v1/audio/transcriptions", json={"model": "whisper-1"})
    assert_envelope(r, 400, "file")


async def test_bad_fields(fake_client: httpx.AsyncClient) -> None:
    assert_envelope(
        await fake_client.post("/v1/audio/transcriptions", **upload(response_format="docx")), 400, "response_format"
    )
    assert_envelope(await fake_client.post("/v1/audio/transcriptions", **upload(temperature="hot")), 400, "temperature")
    assert_envelope(await fake_client.post("/v1/audio/transcriptions", **upload(temperature="1.5")), 400, "temperature")
    assert_envelope(await fake_client.post("/v1/audio/transcriptions", **upload(language="klingon")), 400, "language")
    error = assert_envelope(await fake_client.post("/v1/audio/transcriptions", **upload(model="gpt-9")), 404, "model")
    assert error["code"] == "model_not_found"
    assert_envelope(await fake_client.post("/v1/audio/translations", **upload(model="whisper-tiny.en")), 400, "model")
    assert_envelope(
        await fake_client.post("/v1/audio/transcriptions", **upload(model="whisper-tiny.en", language="de")),
        400,
        "language",
    )


async def test_non_audio_is_a_400(fake_client: httpx.AsyncClient) -> None:
    files = {"file": ("notes.txt", b"this is not audio at all " * 40, "text/plain")}
    error = assert_envelope(
        await fake_client.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"}), 400, "file"
    )
    assert "could not be decoded" in str(error["message"])


async def test_bcp47_language_and_translation_task(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post("/v1/audio/transcriptions", **upload(language="de-DE", response_format="verbose_json"))
    assert r.json()["language"] == "german"
    r = await fake_client.post("/v1/audio/translations", **upload(response_format="verbose_json"))
    assert r.json()["task"] == "translate" and r.json()["language"] == "english"


async def test_upload_over_the_limit_by_content_length(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(max_upload_bytes=100_000)) as client:
        big = {"file": ("a.wav", b"\0" * 100_001, "audio/wav")}
        error = assert_envelope(
            await client.post("/v1/audio/transcriptions", files=big, data={"model": "whisper-1"}), 413
        )
        assert "Maximum content size limit (100000) exceeded" in str(error["message"])


async def test_upload_over_the_limit_while_streaming(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(max_upload_bytes=100_000)) as client:
        boundary = "b0undary"

        async def chunks() -> AsyncIterator[bytes]:
            yield f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'.encode()
            yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'.encode()
            for _ in range(50):
                yield b"\0" * 10_000

        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        r = await client.post("/v1/audio/transcriptions", content=chunks(), headers=headers)
        assert "content-length" not in r.request.headers
        assert_envelope(r, 413)


async def test_api_keys(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(api_keys="k1,k2")) as client:
        r = await client.post("/v1/audio/transcriptions", **upload())
        assert_envelope(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
        assert_envelope(
            await client.post("/v1/audio/transcriptions", headers={"authorization": "Bearer nope"}, **upload()), 401
        )
        assert (
            await client.post("/v1/audio/transcriptions", headers={"authorization": "Bearer k2"}, **upload())
        ).status_code == 200
        assert (await client.get("/v1/health/ready")).status_code == 200


async def test_overload_is_503_with_retry_after(make_fake_app: AppFactory) -> None:
    app = make_fake_app(FakeEngineFactory(seconds_per_segment=0.5), queue_size=0, retry_after_seconds=7)
    async with running_app(app) as client:
        busy = asyncio.ensure_future(client.post("/v1/audio/transcriptions", **upload()))
        while app.state.pool.in_flight == 0:
            await asyncio.sleep(0.01)
        r = await client.post("/v1/audio/transcriptions", **upload())
        assert_envelope(r, 503)
        assert r.headers["retry-after"] == "7"
        assert (await busy).status_code == 200
        metrics = (await client.get("/v1/metrics")).text
        assert 'asr_rejected_requests_total{reason="overloaded"} 1.0' in metrics


async def test_readiness_follows_model_loading(make_fake_app: AppFactory) -> None:
    app = make_fake_app(FakeEngineFactory(load_seconds=1.5))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        assert (await client.get("/v1/health/live")).status_code == 200
        not_ready = await client.get("/v1/health/ready")
        assert not_ready.status_code == 503 and not_ready.json()["error"]["message"] == "Service is not ready"
        assert (await client.get("/readyz")).status_code == 503
        assert_envelope(await client.post("/v1/audio/transcriptions", **upload()), 503)
        await wait_ready(app)
        assert (await client.get("/v1/health/ready")).json() == {
            "object": "health.response",
            "message": "Service is ready.",
            "status": "ready",
        }
        assert (await client.get("/healthz")).status_code == 200


async def test_models_version_metadata(fake_client: httpx.AsyncClient) -> None:
    models = (await fake_client.get("/v1/models")).json()
    ids = [m["id"] for m in models["data"]]
    assert models["object"] == "list" and {"whisper-base", "whisper-tiny.en", "whisper-1", "default"} <= set(ids)
    assert (await fake_client.get("/v1/models/whisper-1")).json()["object"] == "model"
    assert_envelope(await fake_client.get("/v1/models/nope"), 404)
    version = (await fake_client.get("/v1/version")).json()
    assert set(version) == {"release", "api"}
    meta = (await fake_client.get("/v1/metadata")).json()
    assert meta["limits"]["max_upload_bytes"] == 26_214_400
    assert {m["name"] for m in meta["modelInfo"]} == {"whisper-base", "whisper-tiny.en"}


async def test_metrics_names(fake_client: httpx.AsyncClient) -> None:
    await fake_client.post("/v1/audio/transcriptions", **upload())
    await fake_client.post("/v1/audio/transcriptions", **upload(response_format="nope"))
    text = (await fake_client.get("/v1/metrics")).text
    for name in (
        "request_success_total", "request_failure_total", "num_requests_running", "num_requests_waiting",
        "e2e_request_latency_seconds_bucket", "asr_audio_seconds_total", "asr_queue_depth", "asr_in_flight_requests",
        "asr_processing_seconds_bucket", "asr_real_time_factor_ratio_bucket", "process_resident_memory_bytes",
    ):  # fmt: skip
        assert name in text, name
    assert 'asr_audio_seconds_total{model="whisper-base"} 12.0' in text
    assert 'asr_rejected_requests_total{reason="invalid_argument"} 1.0' in text
    assert 'request_failure_total{route="/v1/audio/transcriptions",status="400"} 1.0' in text
    assert (await fake_client.get("/metrics")).text.count("asr_queue_depth") >= 1


async def test_unknown_route_uses_an_error_envelope(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.get("/v1/nothing-here")
    assert r.status_code == 404 and "detail" not in r.json() and r.json()["error"]["message"]


async def test_sse_stream(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post("/v1/audio/transcriptions", **upload(stream="true"))
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [line[len("data: ") :] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    deltas = [e["delta"] for e in parsed if e["type"] == "transcript.text.delta"]
    done = [e for e in parsed if e["type"] == "transcript.text.done"]
    assert len(deltas) == 3 and len(done) == 1
    assert "".join(deltas) == done[0]["text"] == "Segment 0, fake. Segment 1, fake. Segment 2, fake."


async def test_audio_over_the_duration_limit(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(max_audio_seconds=5)) as client:
        error = assert_envelope(await client.post("/v1/audio/transcriptions", **upload()), 400, "file")
        assert error["code"] == "audio_too_long" and "longer than the limit of 5 seconds" in str(error["message"])


async def test_form_limits(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(max_form_field_bytes=1000, max_form_fields=5)) as client:
        assert_envelope(await client.post("/v1/audio/transcriptions", **upload(prompt="x" * 1001)), 400)
        many = {f"field{i}": "v" for i in range(6)}
        assert_envelope(await client.post("/v1/audio/transcriptions", **upload(**many)), 400)
        two_files = [("file", ("a.wav", WAV_12S, "audio/wav")), ("file", ("b.wav", WAV_12S, "audio/wav"))]
        r = await client.post("/v1/audio/transcriptions", files=two_files, data={"model": "whisper-1"})
        assert_envelope(r, 400)


@pytest.mark.parametrize(
    ("overrides", "audio", "message"),
    [
        ({"max_decoded_bytes": 100_000}, WAV_12S, "decoded audio exceeds the limit"),
        ({"max_channels": 1}, wav_bytes(np.zeros((16000, 2), np.float32)), "2 channels is more than the limit of 1"),
        ({"max_sample_rate": 8000}, WAV_12S, "sample rate 16000 Hz is above the limit"),
    ],
)
async def test_decode_limits_reach_the_client_as_400(
    make_fake_app: AppFactory, overrides: dict[str, int], audio: bytes, message: str
) -> None:
    async with running_app(make_fake_app(**overrides)) as client:
        files = {"file": ("a.wav", audio, "audio/wav")}
        error = assert_envelope(
            await client.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"}), 400
        )
        assert message in str(error["message"])


async def test_alternatives_are_bounded_by_the_setting(make_fake_app: AppFactory) -> None:
    from app.core.errors import InvalidArgument
    from app.core.types import AudioInput, TranscriptionRequest

    app = make_fake_app(max_alternatives=3)
    async with running_app(app):
        service = app.state.service
        with pytest.raises(InvalidArgument) as caught:
            service.prepare(TranscriptionRequest(audio=AudioInput(data=WAV_12S), alternatives=4))
        assert caught.value.param == "max_alternatives"
        assert (
            service.prepare(TranscriptionRequest(audio=AudioInput(data=WAV_12S), alternatives=3)).model
            == "whisper-base"
        )


async def test_request_past_its_lane_deadline_is_504_in_the_envelope(make_fake_app: AppFactory) -> None:
    app = make_fake_app(FakeEngineFactory(seconds_per_segment=0.5), interactive_deadline_seconds=0.3)
    async with running_app(app) as client:
        r = await client.post("/v1/audio/transcriptions", **upload())
        assert_envelope(r, 504)
        assert r.json()["error"]["code"] == "timeout"
        assert not app.state.pool._jobs  # its windows were dropped

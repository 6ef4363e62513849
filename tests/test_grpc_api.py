"""The gRPC front on the fake engine: Google Speech (unary, operations, streaming), Riva, health,
reflection, keys, and every status code it maps, each produced once."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from google.cloud.speech_v1.types import cloud_speech as v1
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from riva.client.proto import riva_asr_pb2, riva_asr_pb2_grpc

from app.main import create_app
from tests.audio_tools import DATA, encode, read_pcm, wav_bytes
from tests.conftest import fake_registry, fake_settings, free_port, wait_ready
from tests.fakes import CRASH_PROMPT, FakeEngineFactory

JFK = (DATA / "jfk.wav").read_bytes()
SPEECH = "/google.cloud.speech.v1.Speech/"


def google_config(**fields: Any) -> v1.RecognitionConfig:
    return v1.RecognitionConfig(language_code="en-US", **fields)


def recognize(channel: grpc.aio.Channel) -> Any:
    return channel.unary_unary(
        SPEECH + "Recognize",
        request_serializer=v1.RecognizeRequest.serialize,
        response_deserializer=v1.RecognizeResponse.deserialize,
    )


def long_running(channel: grpc.aio.Channel) -> Any:
    return channel.unary_unary(
        SPEECH + "LongRunningRecognize",
        request_serializer=v1.LongRunningRecognizeRequest.serialize,
        response_deserializer=operations_pb2.Operation.FromString,
    )


def streaming(channel: grpc.aio.Channel) -> Any:
    return channel.stream_stream(
        SPEECH + "StreamingRecognize",
        request_serializer=v1.StreamingRecognizeRequest.serialize,
        response_deserializer=v1.StreamingRecognizeResponse.deserialize,
    )


def details(error: grpc.aio.AioRpcError) -> list[Any]:
    """The google.rpc.Status details Google's clients read from the trailers."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None and status.message == error.details()
    unpacked = []
    for detail in status.details:
        for kind in (error_details_pb2.RetryInfo, error_details_pb2.BadRequest):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                unpacked.append(message)
    return unpacked


@asynccontextmanager
async def grpc_app(
    tmp_path: Path, engine: FakeEngineFactory | None = None, *, ready: bool = True, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, grpc.aio.Channel]]:
    port = free_port()
    settings = fake_settings(tmp_path, grpc_port=port, **overrides)
    app = create_app(settings, engine_factory=engine or FakeEngineFactory(), registry=fake_registry())
    async with app.router.lifespan_context(app):
        if ready:
            await wait_ready(app)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield app, channel


async def test_recognize_over_grpc_answers_what_rest_answers(tmp_path: Path) -> None:
    """One translator: the same request by REST JSON and by gRPC gives the same results."""
    config = google_config(enable_word_time_offsets=True, max_alternatives=2)
    async with grpc_app(tmp_path) as (app, channel):
        answer = await recognize(channel)(v1.RecognizeRequest(config=config, audio=v1.RecognitionAudio(content=JFK)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = {
                "config": json_format.MessageToDict(v1.RecognitionConfig.pb(config)),
                "audio": {"content": base64.b64encode(JFK).decode()},
            }
            rest = (await client.post("/v1/speech:recognize", json=body)).json()
    from_rest = json_format.ParseDict(rest, v1.RecognizeResponse.pb()())  # "11.000s" and "11s": one value
    from_grpc = v1.RecognizeResponse.pb(answer)
    assert from_rest.request_id and from_grpc.request_id
    from_rest.ClearField("request_id")
    from_grpc.ClearField("request_id")
    assert from_grpc == from_rest
    assert [a.transcript for a in answer.results[0].alternatives] == ["segment 0 fake", "segment 0 fake v1"]


async def test_health_is_not_serving_until_the_models_load_and_calls_are_unavailable(tmp_path: Path) -> None:
    """Health NOT_SERVING (and UNAVAILABLE with RetryInfo for calls) while loading, SERVING after."""
    async with grpc_app(tmp_path, FakeEngineFactory(load_seconds=3), ready=False) as (app, channel):
        health = health_pb2_grpc.HealthStub(channel)
        before = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert before.status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await recognize(channel)(
                v1.RecognizeRequest(config=google_config(), audio=v1.RecognitionAudio(content=JFK))
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        (retry,) = details(refused.value)
        assert isinstance(retry, error_details_pb2.RetryInfo) and retry.retry_delay.seconds >= 1
        await wait_ready(app)
        after = await health.Check(health_pb2.HealthCheckRequest(service="google.cloud.speech.v1.Speech"))
        assert after.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_and_describes_every_service(tmp_path: Path) -> None:
    """grpcurl-style clients see the services, and Google's Speech is described (not only named)."""
    async with grpc_app(tmp_path) as (_, channel):
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def ask(**request: Any) -> Any:
            replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**request)]))
            return [reply async for reply in replies].pop()

        listed = await ask(list_services="")
        names = {s.name for s in listed.list_services_response.service}
        assert {
            "google.cloud.speech.v1.Speech",
            "google.cloud.speech.v1p1beta1.Speech",
            "google.longrunning.Operations",
            "nvidia.riva.asr.RivaSpeechRecognition",
            "ekstep.speech_recognition.SpeechRecognizer",
            "grpc.health.v1.Health",
        } <= names
        for service in ("google.cloud.speech.v1.Speech", "ekstep.speech_recognition.SpeechRecognizer"):
            described = await ask(file_containing_symbol=service)
            assert described.file_descriptor_response.file_descriptor_proto


async def test_keys_come_from_metadata_and_a_bad_one_is_unauthenticated(tmp_path: Path) -> None:
    """x-goog-api-key and authorization: Bearer are accepted; none or a wrong one: UNAUTHENTICATED."""
    request = v1.RecognizeRequest(config=google_config(), audio=v1.RecognitionAudio(content=JFK))
    async with grpc_app(tmp_path, api_keys=["k1"]) as (_, channel):
        call = recognize(channel)
        for metadata in ((), (("x-goog-api-key", "wrong"),)):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(request, metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        for metadata in ((("x-goog-api-key", "k1"),), (("authorization", "Bearer k1"),)):
            assert (await call(request, metadata=metadata)).results
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING  # probes need no key


async def test_a_refused_config_is_invalid_argument_naming_the_field(tmp_path: Path) -> None:
    async with grpc_app(tmp_path) as (_, channel):
        bad = google_config(encoding=v1.RecognitionConfig.AudioEncoding.AMR)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await recognize(channel)(v1.RecognizeRequest(config=bad, audio=v1.RecognitionAudio(content=JFK)))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "AMR" in (refused.value.details() or "")
    (bad_request,) = details(refused.value)
    assert bad_request.field_violations[0].field == "config.encoding"


async def test_past_the_key_quota_resource_exhausted_with_retry_info(tmp_path: Path) -> None:
    request = v1.RecognizeRequest(config=google_config(), audio=v1.RecognitionAudio(content=JFK))
    async with grpc_app(tmp_path, api_keys=["k1"], key_rate_limit=1) as (_, channel):
        await recognize(channel)(request, metadata=(("x-goog-api-key", "k1"),))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await recognize(channel)(request, metadata=(("x-goog-api-key", "k1"),))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    (retry,) = details(refused.value)
    assert isinstance(retry, error_details_pb2.RetryInfo) and retry.retry_delay.seconds >= 1


async def test_a_crashed_worker_is_internal_and_a_passed_deadline_is_deadline_exceeded(tmp_path: Path) -> None:
    """Riva's custom_configuration prompt reaches the engine: the fake crashes its worker on it."""
    slow = FakeEngineFactory(seconds_per_segment=2.0)
    async with grpc_app(tmp_path, slow, job_retries=0) as (app, channel):
        riva = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(channel)
        crash = riva_asr_pb2.RecognitionConfig(language_code="en-US", custom_configuration={"prompt": CRASH_PROMPT})
        with pytest.raises(grpc.aio.AioRpcError) as crashed:
            await riva.Recognize(riva_asr_pb2.RecognizeRequest(config=crash, audio=JFK))
        assert crashed.value.code() == grpc.StatusCode.INTERNAL
        await wait_ready(app)  # the crashed worker's replacement
        with pytest.raises(grpc.aio.AioRpcError) as late:
            request = v1.RecognizeRequest(config=google_config(), audio=v1.RecognitionAudio(content=JFK))
            await recognize(channel)(request, timeout=0.5)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_a_cancelled_call_frees_its_decode_at_once(tmp_path: Path) -> None:
    """The client cancels a 6-segment (12 s) decode after 1 s: the worker is free again within 3 s."""
    slow = FakeEngineFactory(seconds_per_segment=2.0, segment_seconds=2.0)
    async with grpc_app(tmp_path, slow) as (app, channel):
        pool = app.state.service.pool
        call = recognize(channel)(v1.RecognizeRequest(config=google_config(), audio=v1.RecognitionAudio(content=JFK)))
        await asyncio.sleep(1.0)
        assert not pool.idle
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await call.code() == grpc.StatusCode.CANCELLED
        for _ in range(30):
            if pool.idle:
                break
            await asyncio.sleep(0.1)
        assert pool.idle


async def test_operations_get_list_wait_and_cancel(tmp_path: Path) -> None:
    """LongRunningRecognize stores a job; Operations Get/Wait/List show it, an unknown name is NOT_FOUND."""
    async with grpc_app(tmp_path) as (_, channel):
        request = v1.LongRunningRecognizeRequest(config=google_config(), audio=v1.RecognitionAudio(content=JFK))
        started = await long_running(channel)(request)
        operations = operations_pb2_grpc.OperationsStub(channel)
        done = await operations.WaitOperation(operations_pb2.WaitOperationRequest(name=started.name))
        assert done.done
        response = v1.LongRunningRecognizeResponse.pb()()
        assert done.response.Unpack(response)
        assert response.results[0].alternatives[0].transcript == "segment 0 fake"
        metadata = v1.LongRunningRecognizeMetadata.pb()()
        assert done.metadata.Unpack(metadata) and metadata.progress_percent == 100
        listed = await operations.ListOperations(operations_pb2.ListOperationsRequest(page_size=10))
        assert [op.name for op in listed.operations] == [started.name]
        await operations.CancelOperation(operations_pb2.CancelOperationRequest(name=started.name))  # done: stays
        again = await operations.GetOperation(operations_pb2.GetOperationRequest(name=started.name))
        assert again.done and again.HasField("response")
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await operations.GetOperation(operations_pb2.GetOperationRequest(name="123"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def chunks(pcm_bytes: bytes, size: int = 3200) -> list[bytes]:
    return [pcm_bytes[i : i + size] for i in range(0, len(pcm_bytes), size)]


SPEECH_PCM = (read_pcm("ps_librivox_0870.wav") * 32767).astype("<i2").tobytes()


async def stream(
    channel: grpc.aio.Channel, config: v1.StreamingRecognitionConfig, audio: list[bytes], pause: float = 0.0
) -> list[Any]:
    async def requests() -> AsyncIterator[v1.StreamingRecognizeRequest]:
        yield v1.StreamingRecognizeRequest(streaming_config=config)
        for chunk in audio:
            yield v1.StreamingRecognizeRequest(audio_content=chunk)
            await asyncio.sleep(pause)

    return [response async for response in streaming(channel)(requests())]


def pcm_config(**fields: Any) -> v1.StreamingRecognitionConfig:
    config = google_config(encoding=v1.RecognitionConfig.AudioEncoding.LINEAR16, sample_rate_hertz=16000)
    return v1.StreamingRecognitionConfig(config=config, **fields)


async def test_streaming_recognize_gives_finals_with_end_times(tmp_path: Path) -> None:
    silence = bytes(32000)  # 1 s, so the VAD hears the end
    async with grpc_app(tmp_path) as (_, channel):
        responses = await stream(channel, pcm_config(interim_results=False), chunks(SPEECH_PCM + silence))
    finals = [r.results[0] for r in responses if r.results]
    assert finals and all(f.is_final for f in finals)
    assert finals[0].alternatives[0].transcript.startswith("segment 0 fake")
    assert 0 < finals[-1].result_end_time.total_seconds() <= len(SPEECH_PCM) / 32000 + 1
    assert finals[0].language_code == "en-us"


async def test_single_utterance_ends_the_stream_after_its_final(tmp_path: Path) -> None:
    twice = SPEECH_PCM + bytes(32000) + SPEECH_PCM + bytes(32000)
    async with grpc_app(tmp_path) as (_, channel):
        responses = await stream(channel, pcm_config(single_utterance=True), chunks(twice))
    kinds = [r.speech_event_type for r in responses]
    assert v1.StreamingRecognizeResponse.SpeechEventType.END_OF_SINGLE_UTTERANCE in kinds
    finals = [r for r in responses if r.results and r.results[0].is_final]
    assert len(finals) == 1
    assert kinds.index(v1.StreamingRecognizeResponse.SpeechEventType.END_OF_SINGLE_UTTERANCE) < responses.index(
        finals[0]
    )


@pytest.mark.parametrize(
    ("settings", "audio", "message"),
    [
        ({"google_stream_max_seconds": 1.0}, [bytes(3200)] * 20, "Exceeded maximum allowed stream duration"),
        ({"google_stream_idle_seconds": 0.3}, [], "Audio Timeout Error"),
    ],
)
async def test_stream_limits_end_with_out_of_range(
    tmp_path: Path, settings: dict[str, Any], audio: list[bytes], message: str
) -> None:
    async with grpc_app(tmp_path, **settings) as (_, channel):

        async def requests() -> AsyncIterator[v1.StreamingRecognizeRequest]:
            yield v1.StreamingRecognizeRequest(streaming_config=pcm_config())
            for chunk in audio:
                yield v1.StreamingRecognizeRequest(audio_content=chunk)
            await asyncio.sleep(2)  # then silence on the wire

        with pytest.raises(grpc.aio.AioRpcError) as ended:
            _ = [r async for r in streaming(channel)(requests())]
    assert ended.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert message in (ended.value.details() or "")


async def test_malordered_streams_and_a_full_house_are_refused(tmp_path: Path) -> None:
    """Audio before the config: INVALID_ARGUMENT; past ASR_REALTIME_MAX_SESSIONS: UNAVAILABLE."""
    async with grpc_app(tmp_path, realtime_max_sessions=1) as (_, channel):

        async def audio_first() -> AsyncIterator[v1.StreamingRecognizeRequest]:
            yield v1.StreamingRecognizeRequest(audio_content=b"\0\0")

        with pytest.raises(grpc.aio.AioRpcError) as malordered:
            _ = [r async for r in streaming(channel)(audio_first())]
        assert malordered.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        opened = asyncio.Event()

        async def slow() -> AsyncIterator[v1.StreamingRecognizeRequest]:
            yield v1.StreamingRecognizeRequest(streaming_config=pcm_config())
            opened.set()
            await asyncio.sleep(1.5)

        first = asyncio.ensure_future(stream_all(streaming(channel)(slow())))
        await opened.wait()
        await asyncio.sleep(0.3)
        with pytest.raises(grpc.aio.AioRpcError) as full:
            await stream(channel, pcm_config(), [bytes(3200)])
        assert full.value.code() == grpc.StatusCode.UNAVAILABLE
        await first


async def stream_all(call: Any) -> list[Any]:
    return [r async for r in call]


async def test_riva_streaming_and_its_config_mapping(tmp_path: Path) -> None:
    async with grpc_app(tmp_path) as (_, channel):
        riva = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(channel)
        models = await riva.GetRivaSpeechRecognitionConfig(riva_asr_pb2.RivaSpeechRecognitionConfigRequest())
        assert {m.model_name for m in models.model_config} == {"whisper-base", "whisper-tiny.en"}
        config = riva_asr_pb2.RecognitionConfig(
            encoding=1, sample_rate_hertz=16000, language_code="en-US", enable_word_time_offsets=True
        )
        config.endpointing_config.stop_history = 800

        async def requests() -> AsyncIterator[riva_asr_pb2.StreamingRecognizeRequest]:
            streaming_config = riva_asr_pb2.StreamingRecognitionConfig(config=config, interim_results=True)
            yield riva_asr_pb2.StreamingRecognizeRequest(streaming_config=streaming_config)
            for chunk in chunks(SPEECH_PCM + bytes(32000)):
                yield riva_asr_pb2.StreamingRecognizeRequest(audio_content=chunk)

        responses = [r async for r in riva.StreamingRecognize(requests())]
        finals = [r.results[0] for r in responses if r.results and r.results[0].is_final]
        assert finals and finals[0].alternatives[0].words[0].word == "segment-0"
        for field, value in (("custom_configuration", {"decoder": "x"}), ("diarization_config", None)):
            bad = riva_asr_pb2.RecognitionConfig(language_code="en-US")
            if value is None:
                bad.diarization_config.enable_speaker_diarization = True
            else:
                bad.custom_configuration.update(value)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await riva.Recognize(riva_asr_pb2.RecognizeRequest(config=bad, audio=JFK))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field in (refused.value.details() or "")


async def test_grpc_calls_are_counted_in_the_metrics(tmp_path: Path) -> None:
    async with grpc_app(tmp_path) as (app, channel):
        await recognize(channel)(v1.RecognizeRequest(config=google_config(), audio=v1.RecognitionAudio(content=JFK)))
        async with running_app_client(app) as client:
            text = (await client.get("/metrics")).text
    assert 'request_success_total{route="/google.cloud.speech.v1.Speech/Recognize"} 1.0' in text


def running_app_client(app: FastAPI) -> Any:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_every_api_method_needs_the_key(tmp_path: Path) -> None:
    """The route walk of gRPC: each method of each API service, called without a key, is refused."""
    from google.protobuf import descriptor_pool

    services = [
        "google.cloud.speech.v1.Speech",
        "google.cloud.speech.v1p1beta1.Speech",
        "google.longrunning.Operations",
        "nvidia.riva.asr.RivaSpeechRecognition",
    ]
    async with grpc_app(tmp_path, api_keys=["k1"]) as (_, channel):
        called = 0
        for name in services:
            for method in descriptor_pool.Default().FindServiceByName(name).methods:
                path = f"/{name}/{method.name}"
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    if method.client_streaming:
                        call = channel.stream_stream(path)
                        _ = [r async for r in call(iter([b""]))]
                    else:
                        await channel.unary_unary(path)(b"")
                if path == "/google.longrunning.Operations/DeleteOperation":  # not offered (operations expire)
                    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
                    continue
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, path
                called += 1
    assert called == 3 + 3 + 4 + 3


async def test_streaming_takes_ogg_opus_and_a_wav_header(tmp_path: Path) -> None:
    """OGG_OPUS is decoded as it streams; with no encoding the first chunk's WAV header gives the rate."""
    pcm = read_pcm("ps_librivox_0870.wav")
    opus = encode(np.concatenate([pcm, np.zeros(16000, np.float32)])[:, None], "ogg", "libopus", rate=48000)
    wav = wav_bytes(np.concatenate([pcm, np.zeros(16000, np.float32)]))
    async with grpc_app(tmp_path) as (_, channel):
        for config, audio in (
            (google_config(encoding=v1.RecognitionConfig.AudioEncoding.OGG_OPUS), opus),
            (google_config(), wav),
        ):
            responses = await stream(channel, v1.StreamingRecognitionConfig(config=config), chunks(audio, 4000))
            finals = [r.results[0] for r in responses if r.results and r.results[0].is_final]
            assert finals and finals[0].alternatives[0].transcript.startswith("segment 0 fake"), config


async def test_a_message_over_the_limit_is_resource_exhausted(tmp_path: Path) -> None:
    """ASR_GRPC_MAX_MESSAGE_BYTES: a Recognize request bigger than it is refused before it is read whole."""
    async with grpc_app(tmp_path, grpc_max_message_bytes=64 * 1024) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await recognize(channel)(
                v1.RecognizeRequest(config=google_config(), audio=v1.RecognitionAudio(content=JFK))
            )
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_stream_open_at_shutdown_ends_with_a_status(tmp_path: Path) -> None:
    """The gRPC server stops before the pool: an open stream ends (UNAVAILABLE), it never hangs."""
    port = free_port()
    settings = fake_settings(tmp_path, grpc_port=port)
    app = create_app(settings, engine_factory=FakeEngineFactory(), registry=fake_registry())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        opened = asyncio.Event()

        async def requests() -> AsyncIterator[v1.StreamingRecognizeRequest]:
            yield v1.StreamingRecognizeRequest(streaming_config=pcm_config())
            for chunk in chunks(SPEECH_PCM):
                yield v1.StreamingRecognizeRequest(audio_content=chunk)
                opened.set()
                await asyncio.sleep(0.1)

        async with app.router.lifespan_context(app):
            await wait_ready(app)
            call = asyncio.ensure_future(stream_all(streaming(channel)(requests())))
            await opened.wait()
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await asyncio.wait_for(call, 10)
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, ended.value
    assert "restarting" in (ended.value.details() or "")


async def test_v1p1beta1_and_a_file_uri_over_grpc(tmp_path: Path) -> None:
    """The v1p1beta1 service answers its own types; audio.uri goes through the same fetcher and
    allow-list as REST (a scheme not allowed is INVALID_ARGUMENT)."""
    from google.cloud.speech_v1p1beta1.types import cloud_speech as beta

    root = tmp_path / "audio"
    root.mkdir()
    (root / "jfk.wav").write_bytes(JFK)
    async with grpc_app(tmp_path, allowed_uri_schemes="file", file_uri_root=str(root)) as (_, channel):
        call = channel.unary_unary(
            "/google.cloud.speech.v1p1beta1.Speech/Recognize",
            request_serializer=beta.RecognizeRequest.serialize,
            response_deserializer=beta.RecognizeResponse.deserialize,
        )
        config = beta.RecognitionConfig(language_code="en-US", enable_word_confidence=True)
        uri = f"file://{root / 'jfk.wav'}"
        answer = await call(beta.RecognizeRequest(config=config, audio=beta.RecognitionAudio(uri=uri)))
        assert answer.results[0].alternatives[0].words[0].confidence == pytest.approx(0.9)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(
                beta.RecognizeRequest(config=config, audio=beta.RecognitionAudio(uri="https://example.com/a.wav"))
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_riva_offline_takes_raw_pcm_flac_and_n_best(tmp_path: Path) -> None:
    pcm = read_pcm("jfk.wav")
    flac = encode(pcm[:, None], "flac", "flac")
    raw = (pcm * 32767).astype("<i2").tobytes()
    async with grpc_app(tmp_path) as (_, channel):
        riva = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(channel)
        for encoding, audio in ((1, raw), (2, flac), (0, flac)):
            config = riva_asr_pb2.RecognitionConfig(
                encoding=encoding, sample_rate_hertz=16000, language_code="en-US", max_alternatives=2
            )
            answer = await riva.Recognize(riva_asr_pb2.RecognizeRequest(config=config, audio=audio))
            assert [a.transcript for a in answer.results[0].alternatives] == ["segment 0 fake", "segment 0 fake v1"]
            assert answer.results[-1].audio_processed == pytest.approx(11.0, abs=0.01)
        headerless = riva_asr_pb2.RecognitionConfig(encoding=1, language_code="en-US")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await riva.Recognize(riva_asr_pb2.RecognizeRequest(config=headerless, audio=raw))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "sample_rate_hertz" in (refused.value.details() or "")

"""The Open API (EkStep) on the fake engine: REST and gRPC recognize (every checklist error text,
srt, raw PCM, audioUri, ITN, AI4Bharat's dialect), punctuate, and recognize_audio's semantics."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from google.protobuf import json_format

from app.main import create_app
from app.protocols.ekstep import messages as pb
from tests.audio_tools import DATA, read_pcm, wav_bytes
from tests.conftest import fake_registry, fake_settings, free_port, wait_ready
from tests.fakes import FakeEngineFactory

JFK = (DATA / "jfk.wav").read_bytes()
GO = (DATA / "ps_goforward.wav").read_bytes()
SERVICE = "/ekstep.speech_recognition.SpeechRecognizer/"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def body(*contents: bytes, **config: Any) -> dict[str, Any]:
    return {"config": {"audioFormat": "wav", **config}, "audio": [{"audioContent": b64(c)} for c in contents]}


@asynccontextmanager
async def open_speech(
    tmp_path: Path, engine: FakeEngineFactory | None = None, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, grpc.aio.Channel]]:
    port = free_port()
    settings = fake_settings(tmp_path, grpc_port=port, **overrides)
    app = create_app(settings, engine_factory=engine or FakeEngineFactory(), registry=fake_registry())
    async with app.router.lifespan_context(app):
        await wait_ready(app)
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client,
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            yield app, client, channel


def rpc(channel: grpc.aio.Channel, name: str, request: Any, response: Any) -> Any:
    return channel.unary_unary(
        SERVICE + name, request_serializer=request.SerializeToString, response_deserializer=response.FromString
    )


def stream(channel: grpc.aio.Channel) -> Any:
    return channel.stream_stream(
        SERVICE + "recognize_audio",
        request_serializer=pb.Message.SerializeToString,
        response_deserializer=pb.Response.FromString,
    )


async def test_recognize_answers_one_output_per_item_in_order(tmp_path: Path) -> None:
    async with open_speech(tmp_path) as (_, client, _):
        answer = await client.post("/v1/recognize/en", json=body(JFK, GO))
        assert answer.status_code == 200
        # 11 s -> three 5 s fake segments; the 2.8 s clip -> one. No punctuation unless asked, as the seed.
        assert answer.json() == {
            "status": "SUCCESS",
            "output": [{"source": "segment 0 fake segment 1 fake segment 2 fake"}, {"source": "segment 0 fake"}],
        }
        punctuated = await client.post("/v1/recognize/en", json=body(GO, punctuation=True))
        assert punctuated.json()["output"] == [{"source": "Segment 0, fake."}]


async def test_srt_cues_are_standard_subrip(tmp_path: Path) -> None:
    async with open_speech(tmp_path) as (_, client, _):
        answer = await client.post("/v1/recognize/hi", json=body(JFK, transcriptionFormat={"value": "srt"}))
        source = answer.json()["output"][0]["source"]
        assert source == (
            "1\n00:00:00,000 --> 00:00:05,000\nsegment 0 fake\n\n"
            "2\n00:00:05,000 --> 00:00:10,000\nsegment 1 fake\n\n"
            "3\n00:00:10,000 --> 00:00:11,000\nsegment 2 fake\n\n"
        )


async def test_headerless_audio_content_is_pcm_at_the_sampling_rate(tmp_path: Path) -> None:
    """No container magic: s16le mono at config.samplingRate (16 kHz by default), as the seed."""
    pcm16 = (read_pcm("jfk.wav") * 32767).astype("<i2")
    at_8k = pcm16[::2].tobytes()
    async with open_speech(tmp_path) as (_, client, _):
        srt = {"transcriptionFormat": {"value": "srt"}}
        raw = await client.post("/v1/recognize/en", json=body(pcm16.tobytes(), **srt))
        assert raw.json()["output"][0]["source"].endswith("00:00:10,000 --> 00:00:11,000\nsegment 2 fake\n\n")
        slow = await client.post("/v1/recognize/en", json=body(at_8k, samplingRate=8000, **srt))
        assert slow.json()["output"][0]["source"].endswith("00:00:10,000 --> 00:00:11,000\nsegment 2 fake\n\n")


@pytest.mark.parametrize(
    ("path", "payload", "status", "text"),
    [
        ("/v1/recognize/brx", body(GO), 400, "Language brx not implemented yet"),
        ("/v1/recognize/xx", body(GO), 404, "Not Found: 'xx' is not a language code of this API"),
        (
            "/v1/recognize/en",
            body(GO, transcriptionFormat={"value": "alternatives"}),
            400,
            "Transcription Format not implemented yet",
        ),
        (
            "/v1/recognize/en",
            body(GO, transcriptionFormat={"value": "vtt"}),
            400,
            "Transcription Format not implemented yet",
        ),
        ("/v1/recognize/en", body(GO, audioFormat="pcm"), 400, "Audio Format not implemented yet"),
        ("/v1/recognize/en", body(GO, audioFormat="ogg"), 400, "Audio Format not implemented yet"),
        ("/v1/recognize/en", {"config": {}, "audio": []}, 400, "Audio input not specified"),
        ("/v1/recognize/en", {"config": {}}, 400, "Audio input not specified"),
        (
            "/v1/recognize/en",
            {"config": {}, "audio": [{}]},
            400,
            "empty audio source is not implemented yet, send valid attributes only for audioUri or audioContent",
        ),
        ("/v1/recognize/en", {"config": {}, "audio": [{"audioContent": ""}]}, 400, "Audio input size is 0."),
        ("/v1/recognize/en", {"config": {"punctuation": "yes"}, "audio": [{}]}, 400, "Invalid input value!"),
        ("/v1/recognize/en", body(GO, postProcessors=["emoji"]), 400, "postProcessors: 'emoji' is not one of"),
        ("/v1/recognize/en/extra", body(GO), 404, "No route POST /v1/recognize/en/extra"),
    ],
)
async def test_checklist_errors_in_the_envelope(
    tmp_path: Path, path: str, payload: dict[str, Any], status: int, text: str
) -> None:
    async with open_speech(tmp_path) as (_, client, _):
        answer = await client.post(path, json=payload)
        assert answer.status_code == status
        got = answer.json()
        assert got["status"] == "ERROR" and got["output"] == [] and got["status_text"].startswith(text)


async def test_json_only_and_cors_preflight(tmp_path: Path) -> None:
    async with open_speech(tmp_path) as (_, client, _):
        refused = await client.post(
            "/v1/recognize/en", content=json.dumps(body(GO)), headers={"content-type": "text/plain"}
        )
        assert refused.status_code == 406
        assert refused.json()["status_text"] == "Given Content-type is not allowed"
        charset = await client.post(
            "/v1/punctuate/hi", content=b'{"text": "x"}', headers={"content-type": "application/json; charset=utf-8"}
        )
        assert charset.status_code == 200 and charset.headers["access-control-allow-origin"] == "*"
        assert refused.headers["access-control-allow-origin"] == "*"
        preflight = await client.options(
            "/v1/recognize/hi", headers={"Origin": "http://page", "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "POST" in preflight.headers["access-control-allow-methods"]


async def test_keys_and_body_limit(tmp_path: Path) -> None:
    async with open_speech(tmp_path, api_keys=["k1"], openspeech_max_request_bytes=1000) as (_, client, channel):
        missing = await client.post("/v1/recognize/en", json=body(GO))
        assert missing.status_code == 401 and missing.json()["status"] == "ERROR"
        bare = await client.post("/v1/punctuate/hi", json={"text": "a"}, headers={"authorization": "k1"})
        assert bare.status_code == 200
        big = await client.post("/v1/recognize/en", json=body(GO), headers={"x-api-key": "k1"})
        assert big.status_code == 413 and big.json()["status"] == "ERROR"
        call = rpc(channel, "punctuate", pb.PunctuateRequest, pb.PunctuateResponse)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(pb.PunctuateRequest(text="a", language="hi"))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        seed_header = await call(pb.PunctuateRequest(text="a", language="hi"), metadata=(("rpc-auth-header", "k1"),))
        assert seed_header.text == "a"


async def test_itn_and_the_ai4bharat_dialect(tmp_path: Path) -> None:
    engine = FakeEngineFactory(text="Go forward ten meters, twenty {index} times.")
    async with open_speech(tmp_path, engine) as (_, client, _):
        plain = await client.post("/v1/recognize/en", json=body(GO))
        assert plain.json()["output"] == [{"source": "go forward ten meters twenty 0 times"}]
        itn = await client.post("/v1/recognize/en", json=body(GO, enableInverseTextNormalization=True))
        assert itn.json()["output"] == [{"source": "go forward 10 meters 20 0 times"}]
        dialect = await client.post(
            "/v1/recognize/en",
            json=body(
                GO, samplingRate=16000, postProcessors=["itn", "punctuations"], language={"sourceLanguage": "en"}
            ),
        )
        assert dialect.json()["output"] == [{"source": "Go forward 10 meters, 20 0 times."}]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the fetcher hangs up on a file over its cap, on purpose


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = tmp_path / "www"
    folder.mkdir()
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


async def test_audio_uri_through_the_fetcher_with_the_seeds_checks(tmp_path: Path, files: tuple[str, Path]) -> None:
    base, folder = files
    (folder / "go.wav").write_bytes(GO)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.txt").write_bytes(b"not audio at all")
    (folder / "big.wav").write_bytes(wav_bytes(np.zeros(16000 * 5, np.float32)))

    def uri(name: str, audio_format: str = "wav") -> dict[str, Any]:
        return {"config": {"audioFormat": audio_format}, "audio": [{"audioUri": f"{base}/{name}"}]}

    web = {"allowed_uri_schemes": ["http"]}
    async with open_speech(tmp_path, fetch_allow_private=True, openspeech_max_uri_bytes=120_000, **web) as (
        _,
        client,
        _,
    ):
        ok = await client.post("/v1/recognize/en", json=uri("go.wav"))
        assert ok.json() == {"status": "SUCCESS", "output": [{"source": "segment 0 fake"}]}
        for name, audio_format, text in [
            ("go.wav", "mp3", "Mismatch between audio format specified and audio format of file given."),
            ("notes.txt", "wav", "Invalid audio input format. Only supported formats are allowed."),
            ("empty.wav", "wav", "Audio input size is 0."),
            ("big.wav", "wav", "Audio input size exceeds limit of 120000 bytes."),
            ("missing.wav", "wav", "Audio file url is incorrect or can't be accessed"),
        ]:
            answer = await client.post("/v1/recognize/en", json=uri(name, audio_format))
            assert (answer.status_code, answer.json()["status_text"]) == (400, text), name
    async with open_speech(tmp_path, **web) as (_, client, _):  # the SSRF guard: loopback refused by default
        guarded = await client.post("/v1/recognize/en", json=uri("go.wav"))
        assert guarded.status_code == 400 and "non-public address" in guarded.json()["status_text"]


async def test_punctuate_rest_and_grpc(tmp_path: Path) -> None:
    async with open_speech(tmp_path) as (_app, client, channel):
        assert (await client.get("/v1/metadata")).json()["punctuationLanguages"] == ["en"]
        for text in ("", "null", "Null"):
            same = await client.post("/v1/punctuate/en", json={"text": text, "language": "en", "enabledItn": False})
            assert same.json() == {"text": text, "language": "en"}
        hindi = await client.post("/v1/punctuate/hi", json={"text": "मैं भारत देश का निवासी हूँ", "language": "hi"})
        assert hindi.json() == {"text": "मैं भारत देश का निवासी हूँ", "language": "hi"}  # no model: unchanged
        assert hindi.headers["x-punctuation-model"] == "none"
        english = await client.post(
            "/v1/punctuate/en", json={"text": "hello how are you i have twenty apples", "enableITN": True}
        )
        text = english.json()["text"]
        assert text[0] == "H" and "20" in text and text[-1] in ".?"
        bad = await client.post("/v1/punctuate/en", json={"text": 5})
        assert bad.status_code == 400 and bad.json()["status_text"].startswith("Invalid input value! text")
        too_long = await client.post("/v1/punctuate/en", json={"text": "a " * 20_001})
        assert too_long.status_code == 400 and "at most 20000" in too_long.json()["status_text"]
        call = rpc(channel, "punctuate", pb.PunctuateRequest, pb.PunctuateResponse)
        answer = await call(
            pb.PunctuateRequest(text="hello how are you i have twenty apples", language="en", enabledItn=True)
        )
        assert (answer.text, answer.language) == (text, "en")


async def test_grpc_recognize_answers_what_rest_answers(tmp_path: Path) -> None:
    async with open_speech(tmp_path) as (_, client, channel):
        payload = body(JFK, GO, punctuation=True, language={"sourceLanguage": "en"})
        rest = (await client.post("/v1/recognize/en", json=payload)).json()
        request = json_format.ParseDict(payload, pb.SpeechRecognitionRequest())
        call = rpc(channel, "recognize", pb.SpeechRecognitionRequest, pb.SpeechRecognitionResult)
        answer = await call(request, metadata=(("language", "en"),))
        assert json_format.MessageToDict(answer, always_print_fields_with_no_presence=True) == rest
        for config, text in [
            ({"language": {"sourceLanguage": "kha"}}, "Language kha not implemented yet"),
            ({"audioFormat": "pcm"}, "Audio Format not implemented yet"),
        ]:
            bad = json_format.ParseDict(
                {"config": config, "audio": [{"audioContent": b64(GO)}]}, pb.SpeechRecognitionRequest()
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(bad)
            assert (refused.value.code(), refused.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, text)


def _chunks(pcm: np.ndarray, user: str, *, speaking: bool = True, language: str = "en") -> list[Any]:
    data = (pcm * 32767).astype("<i2").tobytes()
    return [
        pb.Message(audio=data[i : i + 8000], user=user, language=language, speaking=speaking)
        for i in range(0, len(data), 8000)
    ]


async def test_recognize_audio_cumulative_per_user_and_terminate(tmp_path: Path) -> None:
    speech = read_pcm("ps_goforward.wav")
    async with open_speech(tmp_path) as (_, _, channel):
        messages = [
            *_chunks(speech, "ana"),
            *_chunks(speech[:8000], "bo"),
            pb.Message(user="ana", language="en", speaking=False),
            *_chunks(speech, "ana"),
            pb.Message(audio=b"\0\0" * 800, user="ana", language="en", speaking=False),
            pb.Message(user="bo", language="en", speaking=False),
            pb.Message(user="bo", language="en", speaking=False),  # nothing new: the same text again
            pb.Message(user="ana", language="en", isEnd=True),
        ]
        call = stream(channel)(iter(messages))
        answers = [r async for r in call]
    bodies = [(r.user, r.action, json.loads(r.transcription)) for r in answers]
    assert [(user, action) for user, action, _ in bodies] == [
        ("ana", "True"), ("ana", "True"), ("bo", "True"), ("bo", "True"), ("ana", "terminate"),
    ]  # fmt: skip
    texts = [b.get("transcription") for _, _, b in bodies]
    assert texts[0] == texts[2] == texts[3] == "segment 0 fake"  # bo's own, said again when nothing is new
    assert texts[1].startswith(texts[0] + " segment")  # ana's second utterance extends her first
    assert all(b["success"] for _, _, b in bodies) and bodies[0][2]["status"] == "OK"
    assert bodies[-1][2] == {"id": 5, "success": True}
    assert all(r.language == "en" for r in answers)


async def test_recognize_audio_refusals_and_partials(tmp_path: Path) -> None:
    speech = read_pcm("jfk.wav")
    async with open_speech(tmp_path, FakeEngineFactory(seconds_per_segment=0.3)) as (_, _, channel):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            _ = [r async for r in stream(channel)(iter(_chunks(speech[:8000], "u", language="sat")))]
        assert (refused.value.code(), refused.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Language sat not implemented yet",
        )

        async def paced() -> AsyncIterator[Any]:
            for message in _chunks(speech, "u"):
                yield message
                await asyncio.sleep(0.25)  # 0.25 s of audio each: real time
            yield pb.Message(user="u", language="en", speaking=False)
            yield pb.Message(user="u", language="en", isEnd=True)

        call = stream(channel)(paced(), metadata=(("partials", "true"),))
        answers = [r async for r in call]
    actions = [r.action for r in answers]
    assert actions[-2:] == ["True", "terminate"] and "partial" in actions
    partial = json.loads(answers[actions.index("partial")].transcription)
    assert partial["transcription"].startswith("segment 0 fake")

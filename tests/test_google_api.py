"""Google STT v1 REST in process on the fake engine: request parsing, response shapes, envelopes, operations."""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from google.protobuf import duration_pb2

from tests.audio_tools import wav_bytes
from tests.conftest import AppFactory, running_app
from tests.fakes import FakeEngineFactory

PCM_12S = np.zeros(12 * 16000, np.float32)
WAV_12S = wav_bytes(PCM_12S)
RAW_12S = (PCM_12S * 0).astype("<i2").tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def body(config: dict[str, Any] | None = None, content: bytes = WAV_12S, **audio: Any) -> dict[str, Any]:
    return {"config": {"languageCode": "en-US"} | (config or {}), "audio": audio or {"content": b64(content)}}


def assert_google_error(response: httpx.Response, status: int, name: str, text: str = "") -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "status"} and error["code"] == status and error["status"] == name
    assert text in error["message"]
    return str(error["message"])


async def test_recognize_shape(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post("/v1/speech:recognize", json=body({"encoding": "LINEAR16", "sampleRateHertz": 16000}))
    assert r.status_code == 200, r.text
    data = r.json()
    assert [a["alternatives"][0]["transcript"] for a in data["results"]] == [
        "segment 0 fake",
        " segment 1 fake",
        " segment 2 fake",
    ]
    first = data["results"][0]
    assert first["resultEndTime"] == "5.000s" and first["languageCode"] == "en-us" and "channelTag" not in first
    assert "words" not in first["alternatives"][0] and 0 < first["alternatives"][0]["confidence"] <= 1
    assert data["totalBilledTime"] == "12s" and re.fullmatch(r"\d{19}", data["requestId"])


async def test_punctuation_on_request_and_enum_numbers_and_snake_case(fake_client: httpx.AsyncClient) -> None:
    config = {
        "encoding": 1,
        "sample_rate_hertz": 16000,
        "enable_automatic_punctuation": True,
        "enable_word_time_offsets": True,
    }
    r = await fake_client.post("/v1/speech:recognize?%24alt=json%3Benum-encoding%3Dint", json=body(config))
    alternative = r.json()["results"][0]["alternatives"][0]
    assert alternative["transcript"] == "Segment 0, fake."
    assert alternative["words"] == [{"startTime": "0.000s", "endTime": "5.000s", "word": "segment-0"}]
    for field in ("startTime", "endTime"):
        duration_pb2.Duration().FromJsonString(alternative["words"][0][field])


async def test_word_confidence_and_n_best(fake_client: httpx.AsyncClient) -> None:
    config = {"enableWordConfidence": True, "maxAlternatives": 3}
    alternatives = (await fake_client.post("/v1/speech:recognize", json=body(config))).json()["results"][0][
        "alternatives"
    ]
    assert len(alternatives) == 3 and alternatives[0]["words"][0] == {"word": "segment-0", "confidence": 0.9}
    assert "words" not in alternatives[1]


@pytest.mark.parametrize("count", [0, 1])
async def test_zero_or_one_alternative(fake_client: httpx.AsyncClient, count: int) -> None:
    results = (await fake_client.post("/v1/speech:recognize", json=body({"maxAlternatives": count}))).json()["results"]
    assert all(len(r["alternatives"]) == 1 for r in results)


async def test_more_than_30_alternatives_only_on_mod9_paths(fake_client: httpx.AsyncClient) -> None:
    assert_google_error(
        await fake_client.post("/v1/speech:recognize", json=body({"maxAlternatives": 31})),
        400,
        "INVALID_ARGUMENT",
        "maxAlternatives",
    )
    r = await fake_client.post("/speech:recognize", json=body({"maxAlternatives": 40}))
    assert len(r.json()["results"][0]["alternatives"]) == 40


async def test_audio_must_have_exactly_one_source(fake_client: httpx.AsyncClient) -> None:
    both = {"config": {}, "audio": {"content": b64(WAV_12S), "uri": "gs://b/o"}}
    assert_google_error(
        await fake_client.post("/v1/speech:recognize", json=both), 400, "INVALID_ARGUMENT", "exactly one"
    )
    assert_google_error(
        await fake_client.post("/v1/speech:recognize", json={"config": {}, "audio": {}}), 400, "INVALID_ARGUMENT"
    )
    assert_google_error(await fake_client.post("/v1/speech:recognize", json={"config": {}}), 400, "INVALID_ARGUMENT")
    assert_google_error(
        await fake_client.post("/v1/speech:recognize", content=b"{not json"), 400, "INVALID_ARGUMENT", "Invalid JSON"
    )
    bad = {"config": {}, "audio": {"content": "***"}}
    assert_google_error(await fake_client.post("/v1/speech:recognize", json=bad), 400, "INVALID_ARGUMENT", "Base64")


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"encoding": "FLAC"}, "encoding"),
        ({"sampleRateHertz": 8000}, "sampleRateHertz"),
        ({"audioChannelCount": 2}, "audioChannelCount"),
        ({"encoding": "AMR", "sampleRateHertz": 8000}, "encoding"),
        ({"encoding": "NOPE"}, "encoding"),
        ({"unknownField": 1}, "unknownField"),
        ({"diarizationConfig": {"enableSpeakerDiarization": True}}, "diarizationConfig"),
        ({"enableSpokenPunctuation": True}, "enableSpokenPunctuation"),
        ({"adaptation": {"customClasses": [{"items": []}]}}, "customClasses"),
        ({"maxWordAlternatives": 3}, "maxWordAlternatives"),
        ({"languageCode": "xx-XX"}, "languageCode"),
        ({"model": "medical_dictation"}, "model"),
        ({"speed": 12}, "speed"),
        ({"intervalsJson": "[[3, 1]]"}, "intervalsJson"),
        ({"intervalsJson": "[[0, 1e308]]"}, "intervalsJson"),
        ({"intervalsJson": "[[0, 1e400]]"}, "intervalsJson"),
        ({"intervalsJson": str([[i * 0.05, i * 0.05 + 0.01] for i in range(200)])}, "intervalsJson"),
        ({"intervalsJson": str([[0, 12]] * 10)}, "intervalsJson"),  # 120 s asked of 12 s: refused once decoded
        ({"speechContexts": [{"phrases": ["x" * 3000]}]}, "speechContexts"),
        ({"speechContexts": ["x"]}, "speechContexts"),
        ({"speechContexts": {"phrases": ["x"]}}, "speechContexts"),
        ({"adaptation": ["x"]}, "adaptation"),
        ({"adaptation": {"phraseSets": [{"phrases": ["a"]}]}}, "phraseSets"),
        ({"diarizationConfig": True}, "diarizationConfig"),
        ({"alternativeLanguageCodes": [{"x": 1}]}, "alternativeLanguageCodes"),
    ],
)
async def test_config_refusals_name_the_field(
    fake_client: httpx.AsyncClient, config: dict[str, Any], field: str
) -> None:
    r = await fake_client.post("/v1/speech:recognize", json=body(config))
    assert field in assert_google_error(
        r, 400 if field != "model" else 404, "INVALID_ARGUMENT" if field != "model" else "NOT_FOUND"
    )


async def test_headerless_pcm_needs_a_rate(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post("/v1/speech:recognize", json=body({"encoding": "LINEAR16"}, content=RAW_12S))
    assert_google_error(r, 400, "INVALID_ARGUMENT", "sampleRateHertz")
    r = await fake_client.post(
        "/v1/speech:recognize", json=body({"encoding": "LINEAR16", "sampleRateHertz": 8000}, content=RAW_12S)
    )
    assert r.json()["totalBilledTime"] == "24s"  # 12 s of 16 kHz samples read as 8 kHz
    r = await fake_client.post(
        "/v1/speech:recognize", json=body({"encoding": "MULAW", "sampleRateHertz": 8000}, content=b"\xff" * 8000)
    )
    assert r.json()["totalBilledTime"] == "1s"


async def test_missing_language_code_detects(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post("/v1/speech:recognize", json={"config": {}, "audio": {"content": b64(WAV_12S)}})
    assert r.json()["results"][0]["languageCode"] == "en"


async def test_separate_channels_carry_channel_tags(fake_client: httpx.AsyncClient) -> None:
    stereo = wav_bytes(np.zeros((6 * 16000, 2), np.float32))
    config = {"audioChannelCount": 2, "enableSeparateRecognitionPerChannel": True}
    results = (await fake_client.post("/v1/speech:recognize", json=body(config, content=stereo))).json()["results"]
    assert [r["channelTag"] for r in results] == [1, 1, 2, 2]
    assert results[2]["alternatives"][0]["transcript"] == "segment 0 fake"


async def test_intervals_and_speed(fake_client: httpx.AsyncClient) -> None:
    config = {"intervalsJson": "[[1, 3], [8, 12]]", "speed": 9}
    results = (await fake_client.post("/speech:recognize", json=body(config))).json()["results"]
    assert [r["resultEndTime"] for r in results] == ["3.000s", "12.000s"]


async def test_limits(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(google_max_request_bytes=200_000, google_sync_max_seconds=5)) as client:
        big = await client.post("/v1/speech:recognize", json=body(content=wav_bytes(np.zeros(200_000, np.float32))))
        assert_google_error(big, 400, "INVALID_ARGUMENT", "Request payload size exceeds the limit: 200000 bytes.")
        small = wav_bytes(np.zeros(6 * 8000, np.float32), rate=8000)
        long = await client.post("/v1/speech:recognize", json=body(content=small))
        assert_google_error(long, 400, "INVALID_ARGUMENT", "Sync input too long")
        op = (await client.post("/v1/speech:longrunningrecognize", json=body(content=small))).json()
        assert (await wait_done(client, "/v1/operations/" + op["name"]))["response"]["totalBilledTime"] == "6s"


async def test_overload_is_429_resource_exhausted(make_fake_app: AppFactory) -> None:
    app = make_fake_app(FakeEngineFactory(seconds_per_segment=0.5), queue_size=0, retry_after_seconds=4)
    async with running_app(app) as client:
        busy = asyncio.ensure_future(client.post("/v1/speech:recognize", json=body()))
        while app.state.pool.in_flight == 0:
            await asyncio.sleep(0.01)
        r = await client.post("/v1/speech:recognize", json=body())
        assert_google_error(r, 429, "RESOURCE_EXHAUSTED")
        assert r.headers["retry-after"] == "4"
        assert (await busy).status_code == 200


async def test_api_keys_in_google_forms(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(api_keys="gk")) as client:
        assert_google_error(await client.post("/v1/speech:recognize", json=body()), 401, "UNAUTHENTICATED")
        assert (await client.post("/v1/speech:recognize?key=gk", json=body())).status_code == 200
        assert (
            await client.post("/v1/speech:recognize", headers={"x-goog-api-key": "gk"}, json=body())
        ).status_code == 200
        assert_google_error(await client.get("/v1/operations/1"), 401, "UNAUTHENTICATED")


async def wait_done(client: httpx.AsyncClient, path: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        operation: dict[str, Any] = (await client.get(path)).json()
        if operation.get("done"):
            return operation
        assert time.monotonic() < deadline, operation
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("prefix", "version"), [("/v1", "v1"), ("/v1p1beta1", "v1p1beta1"), ("", "v1p1beta1")])
async def test_long_running_operation(fake_client: httpx.AsyncClient, prefix: str, version: str) -> None:
    started = (
        await fake_client.post(f"{prefix}/speech:longrunningrecognize", json=body({"enableWordTimeOffsets": True}))
    ).json()
    assert re.fullmatch(r"\d{19}", started["name"]) and "done" not in started
    assert (
        started["metadata"]["@type"]
        == f"type.googleapis.com/google.cloud.speech.{version}.LongRunningRecognizeMetadata"
    )
    done = await wait_done(fake_client, f"{prefix}/operations/{started['name']}")
    assert done["metadata"]["progressPercent"] == 100 and "error" not in done
    assert done["metadata"]["startTime"].endswith("Z") and done["metadata"]["lastUpdateTime"].endswith("Z")
    assert done["metadata"]["startTime"] == started["metadata"]["startTime"]  # one start time in POST and GET
    response = done["response"]
    assert response["@type"] == f"type.googleapis.com/google.cloud.speech.{version}.LongRunningRecognizeResponse"
    assert response["results"][0]["alternatives"][0]["words"][0]["startTime"] == "0.000s"


async def test_long_running_headerless_audio_keeps_its_declared_format(fake_client: httpx.AsyncClient) -> None:
    """The job stores options without audio; the format comes from the config when the job runs,
    by the same rules as synchronous recognition (12 s of 16 kHz samples read as 8 kHz: 24 s)."""
    config = {"encoding": "LINEAR16", "sampleRateHertz": 8000}
    started = (await fake_client.post("/v1/speech:longrunningrecognize", json=body(config, content=RAW_12S))).json()
    done = await wait_done(fake_client, "/v1/operations/" + started["name"])
    assert done["response"]["totalBilledTime"] == "24s", done
    refused = await fake_client.post(
        "/v1/speech:longrunningrecognize", json=body({"encoding": "FLAC", "sampleRateHertz": 16000})
    )
    assert_google_error(refused, 400, "INVALID_ARGUMENT", "does not match the audio header")


async def test_failed_operation_has_an_rpc_error(fake_client: httpx.AsyncClient) -> None:
    started = (
        await fake_client.post(
            "/v1/speech:longrunningrecognize", json=body(content=b"fLaC" + bytes(40) + b"not audio" * 50)
        )
    ).json()
    done = await wait_done(fake_client, "/v1/operations/" + started["name"])
    assert done["done"] is True and "response" not in done
    assert done["error"]["code"] == 3 and "could not be decoded" in done["error"]["message"]


async def test_unknown_operation_is_404(fake_client: httpx.AsyncClient) -> None:
    assert_google_error(await fake_client.get("/v1/operations/1234567890123456789"), 404, "NOT_FOUND")
    assert_google_error(await fake_client.get("/operations/42/"), 404, "NOT_FOUND")


async def test_list_operations_pages(fake_client: httpx.AsyncClient) -> None:
    names = [(await fake_client.post("/v1/speech:longrunningrecognize", json=body())).json()["name"] for _ in range(3)]
    seen, token = [], None
    while True:
        params = {"pageSize": "2"} | ({"pageToken": token} if token else {})
        page = (await fake_client.get("/v1/operations", params=params)).json()
        seen += [op["name"] for op in page["operations"]]
        assert all("metadata" in op for op in page["operations"])
        token = page.get("nextPageToken")
        if not token:
            break
    assert seen == list(reversed(names))
    assert_google_error(await fake_client.get("/v1/operations", params={"pageSize": "0"}), 400, "INVALID_ARGUMENT")


async def test_listing_parses_and_renders_operations_off_the_event_loop(
    fake_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """M11: a page of up to 1000 finished operations (full transcripts) is parsed and rendered in a
    thread, so one listing never stalls the loop every other request shares."""
    from app.core.jobs import JobRecord
    from app.protocols.google import speech as router

    started = [(await fake_client.post("/v1/speech:longrunningrecognize", json=body())).json() for _ in range(2)]
    for op in started:
        await wait_done(fake_client, "/v1/operations/" + op["name"])
    loop_thread = threading.get_ident()
    threads: dict[str, list[int]] = {"parse": [], "render": []}
    parse, render = JobRecord.from_dict.__func__, router.operation  # type: ignore[attr-defined]

    def spying_parse(cls: type[JobRecord], data: dict[str, Any]) -> JobRecord:
        threads["parse"].append(threading.get_ident())
        return parse(cls, data)  # type: ignore[no-any-return]

    def spying_render(record: JobRecord) -> dict[str, Any]:
        threads["render"].append(threading.get_ident())
        return render(record)

    monkeypatch.setattr(JobRecord, "from_dict", classmethod(spying_parse))
    monkeypatch.setattr(router, "operation", spying_render)
    listing = (await fake_client.get("/v1/operations")).json()
    assert {op["name"] for op in listing["operations"]} == {op["name"] for op in started}
    assert all(op["done"] and op["response"]["results"] for op in listing["operations"])
    assert len(threads["parse"]) >= 2 and len(threads["render"]) == 2
    assert loop_thread not in threads["parse"] + threads["render"]


async def test_file_uri(make_fake_app: AppFactory, tmp_path: Path) -> None:
    root = tmp_path / "audio"
    root.mkdir()
    (root / "a.wav").write_bytes(WAV_12S)
    async with running_app(make_fake_app(allowed_uri_schemes="file", file_uri_root=str(root))) as client:
        r = await client.post("/v1/speech:recognize", json=body(uri=f"file://{root}/a.wav"))
        assert r.json()["totalBilledTime"] == "12s"
        refused = await client.post("/v1/speech:recognize", json=body(uri=f"file://{root}/../secret.wav"))
        assert_google_error(refused, 400, "INVALID_ARGUMENT", "..")
        off = await client.post("/v1/speech:longrunningrecognize", json=body(uri="https://example.com/a.wav"))
        assert_google_error(off, 400, "INVALID_ARGUMENT", "not enabled")
        op = (await client.post("/v1/speech:longrunningrecognize", json=body(uri=f"file://{root}/a.wav"))).json()
        done = await wait_done(client, "/v1/operations/" + op["name"])
        assert done["metadata"]["uri"] == f"file://{root}/a.wav" and done["response"]["totalBilledTime"] == "12s"


def test_request_ids_are_19_digit_int64() -> None:
    from app.protocols.google.render import new_request_id

    for _ in range(2000):
        value = new_request_id()
        assert len(value) == 19 and int(value) < 2**63


async def test_operations_expire_after_the_retention(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(job_retention_seconds=1)) as client:
        name = (await client.post("/v1/speech:longrunningrecognize", json=body())).json()["name"]
        await wait_done(client, "/v1/operations/" + name)
        await asyncio.sleep(1.2)
        assert_google_error(await client.get("/v1/operations/" + name), 404, "NOT_FOUND")
        assert (await client.get("/v1/operations")).json()["operations"] == []


def test_mod9_uri_scheme_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import Settings

    monkeypatch.setenv("ASR_REST_API_ALLOWED_URI_SCHEMES", "http, https")
    assert Settings().allowed_uri_schemes == ["http", "https"]


async def test_hints_profanity_and_asr_model_reach_the_engine(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(FakeEngineFactory(text="oh shit {index}"))) as client:
        config = {
            "profanityFilter": True,
            "speechContexts": [{"phrases": ["Dashwood"], "boost": 10}],
            "adaptation": {"phraseSets": [{"phrases": [{"value": "Norland", "boost": 5}]}]},
        }
        text = (await client.post("/v1/speech:recognize", json=body(config))).json()["results"][0]["alternatives"][0][
            "transcript"
        ]
        assert text == "oh s*** 0 hints dashwood norland"
        plain = (await client.post("/v1/speech:recognize", json=body())).json()["results"][0]["alternatives"][0][
            "transcript"
        ]
        assert plain == "oh shit 0"
        tiny = await client.post("/speech:recognize", json=body({"asrModel": "whisper-tiny.en"}))
        assert tiny.status_code == 200
        assert_google_error(await client.post("/speech:recognize", json=body({"asrModel": "nope"})), 404, "NOT_FOUND")


async def test_unavailable_while_loading(make_fake_app: AppFactory) -> None:
    app = make_fake_app(FakeEngineFactory(load_seconds=1.5))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/v1/speech:recognize", json=body())
        assert_google_error(r, 503, "UNAVAILABLE", "loading")
        assert r.headers["retry-after"]


async def test_request_past_its_lane_deadline_is_deadline_exceeded(make_fake_app: AppFactory) -> None:
    app = make_fake_app(FakeEngineFactory(seconds_per_segment=0.5), interactive_deadline_seconds=0.3)
    async with running_app(app) as client:
        assert_google_error(await client.post("/v1/speech:recognize", json=body()), 504, "DEADLINE_EXCEEDED")


async def test_malformed_requests_are_400_not_500(fake_client: httpx.AsyncClient) -> None:
    deep = b'{"config": ' + b"[" * 500 + b"]" * 500 + b"}"
    response = await fake_client.post(
        "/v1/speech:recognize", content=deep, headers={"content-type": "application/json"}
    )
    assert_google_error(response, 400, "INVALID_ARGUMENT", "nested deeper")
    for token in ("99999999999999999999", "1" * 60_000, "abc"):
        response = await fake_client.get("/v1/operations", params={"pageToken": token})
        assert_google_error(response, 400, "INVALID_ARGUMENT", "pageToken")
    uri_body = {"config": {"languageCode": "en-US"}, "audio": {"uri": "https://a:1:2/x.wav"}}
    response = await fake_client.post("/v1/speech:longrunningrecognize", json=uri_body)
    assert response.status_code == 400 and "URI" in response.json()["error"]["message"]

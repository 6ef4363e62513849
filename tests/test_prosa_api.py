"""Prosa /v2/speech/stt in process on the fake engine: wait semantics, polling, cancel, auth, pages."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from typing import Any

import httpx
import numpy as np
import pytest

from tests.audio_tools import wav_bytes
from tests.conftest import AppFactory, running_app
from tests.fakes import FakeEngineFactory

WAV_12S = wav_bytes(np.zeros(12 * 16000, np.float32))
URL = "/v2/speech/stt"


def job(wait: bool, audio: bytes = WAV_12S, **config: Any) -> dict[str, Any]:
    return {
        "config": {"model": "stt-general", "wait": wait} | config,
        "request": {"label": "test", "data": base64.b64encode(audio).decode()},
    }


def assert_prosa_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message"] and "detail" not in body and "request_id" in body


async def poll(client: httpx.AsyncClient, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (await client.get(f"{URL}/{job_id}")).json()
        if body["status"] in ("complete", "failed", "cancelled"):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


async def test_wait_true_answers_the_result(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post(URL, json=job(True, auto_punctuation=True))
    body = r.json()
    assert r.status_code == 200 and body["status"] == "complete" and re.fullmatch(r"[0-9a-f]{32}", body["job_id"])
    assert body["result"]["data"][0] == {
        "transcript": "Segment 0, fake.",
        "final": True,
        "time_start": 0.0,
        "time_end": 5.0,
        "channel": 0,
        "speaker_tag": 1,
    }
    assert len(body["result"]["data"]) == 3 and body["result"]["speaker_count"] == 1
    assert body["request"] == {"label": "test"} and body["job_config"]["model"] == "stt-general"
    assert body["progress"]["total"] == 100.0 and body["model"]["name"] == "stt-general"
    assert body["created_at"].endswith("Z") and body["modified_at"].endswith("Z")


async def test_wait_false_answers_at_once_then_polls_to_complete(fake_client: httpx.AsyncClient) -> None:
    body = (await fake_client.post(URL, json=job(False))).json()
    assert body["status"] in ("queued", "in_progress") and "result" not in body
    done = await poll(fake_client, body["job_id"])
    assert done["status"] == "complete" and done["result"]["data"][2]["transcript"] == "segment 2 fake"
    status = (await fake_client.get(f"{URL}/{body['job_id']}/status")).json()
    assert set(status) == {"job_id", "status", "created_at", "modified_at"} and status["status"] == "complete"


async def test_engine_and_audio_aliases(fake_client: httpx.AsyncClient) -> None:
    payload = {
        "config": {"engine": "stt-general", "wait": True},
        "request": {"audio": base64.b64encode(WAV_12S).decode()},
    }
    body = (await fake_client.post(URL, json=payload)).json()
    assert body["status"] == "complete" and body["job_config"]["model"] == "stt-general"


async def test_wait_falls_back_to_a_job_past_the_budget(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(FakeEngineFactory(seconds_per_segment=0.5), prosa_sync_seconds=0.3)) as client:
        body = (await client.post(URL, json=job(True))).json()
        assert body["status"] in ("queued", "in_progress") and "result" not in body
        assert (await poll(client, body["job_id"]))["status"] == "complete"


async def test_cancel(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(FakeEngineFactory(seconds_per_segment=0.5), job_lease_seconds=1)) as client:
        running = (await client.post(URL, json=job(False, audio=wav_bytes(np.zeros(60 * 16000, np.float32))))).json()
        queued = (await client.post(URL, json=job(False))).json()
        await asyncio.sleep(0.3)
        for item in (queued, running):
            cancelled = (await client.delete(f"{URL}/{item['job_id']}")).json()
            assert cancelled["status"] == "cancelled" and cancelled["result"]["code"] == "cancelled"
        assert (await poll(client, running["job_id"]))["status"] == "cancelled"
        after = (await client.post(URL, json=job(True))).json()  # the decoder was freed
        assert after["status"] == "complete"
        assert (await client.delete(f"{URL}/{after['job_id']}")).json()["status"] == "complete"


async def test_failed_job_is_200_with_its_error(fake_client: httpx.AsyncClient) -> None:
    r = await fake_client.post(URL, json=job(True, audio=b"not audio at all" * 64))
    body = r.json()
    assert r.status_code == 200 and body["status"] == "failed"
    assert body["result"]["code"] == "unsupported_audio" and "could not be decoded" in body["result"]["message"]


async def test_api_key(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(api_keys="pk")) as client:
        assert_prosa_error(await client.post(URL, json=job(True)), 401, "unauthorized")
        assert_prosa_error(await client.post(URL, json=job(True), headers={"x-api-key": "nope"}), 401, "unauthorized")
        assert_prosa_error(await client.get(f"{URL}/abc"), 401, "unauthorized")
        assert (await client.post(URL, json=job(True), headers={"x-api-key": "pk"})).json()["status"] == "complete"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"config": {"model": "stt-general"}, "request": {}}, 422, "validation_error"),
        (
            {"config": {"model": "stt-general"}, "request": {"data": "AAAA", "uri": "https://x/a.wav"}},
            422,
            "validation_error",
        ),
        ({"config": {}, "request": {"data": "AAAA"}}, 422, "validation_error"),
        ({"config": {"model": "nope"}, "request": {"data": "AAAA"}}, 404, "not_found"),
        ({"config": {"model": "stt-general"}, "request": {"data": "***"}}, 422, "validation_error"),
        (
            {"config": {"model": "stt-general", "speaker_count": 2}, "request": {"data": "AAAA"}},
            422,
            "validation_error",
        ),
        (
            {"config": {"model": "stt-general", "enable_speech_insights": True}, "request": {"data": "AAAA"}},
            422,
            "validation_error",
        ),
        ({"config": {"model": "stt-general"}, "request": {"uri": "https://example.com/a.wav"}}, 422, "uri_refused"),
        ({"request": {"data": "AAAA"}}, 422, "validation_error"),
        *(
            ({"config": {"model": "stt-general", field: value}, "request": {"data": "AAAA"}}, 422, "validation_error")
            for field, value in [
                ("speaker_count", "two"),
                ("speaker_count", [2]),
                ("speaker_count", 1.5),
                ("wait", "no"),
                ("wait", "false"),
                ("auto_punctuation", "false"),
                ("include_partial_results", 1),
            ]
        ),
        ({"config": "stt-general", "request": {"data": "AAAA"}}, 422, "validation_error"),
        ({"config": {"model": "stt-general"}, "request": ["AAAA"]}, 422, "validation_error"),
        ({"config": {"model": "stt-general"}, "request": {"uri": "http://a:1:2/x.wav"}}, 422, "uri_refused"),
    ],
)
async def test_validation(fake_client: httpx.AsyncClient, payload: dict[str, Any], status: int, code: str) -> None:
    assert_prosa_error(await fake_client.post(URL, json=payload), status, code)


async def test_malformed_bodies_name_the_field(fake_client: httpx.AsyncClient) -> None:
    huge = b'{"config": {"model": "stt-general", "speaker_count": 1e400}, "request": {"data": "AAAA"}}'
    response = await fake_client.post(URL, content=huge, headers={"content-type": "application/json"})
    assert_prosa_error(response, 422, "validation_error")
    assert response.json()["context"] == {"param": "config.speaker_count"}
    deep = b"[" * 500 + b"]" * 500
    response = await fake_client.post(
        URL, content=b'{"config": ' + deep + b"}", headers={"content-type": "application/json"}
    )
    assert_prosa_error(response, 422, "validation_error")
    assert "nested deeper" in response.json()["message"]
    for page in ("99999999999999999999", "1" * 60_000, "0", "-1"):
        assert_prosa_error(await fake_client.get(URL, params={"page": page}), 422, "validation_error")


async def test_unknown_job_and_body_limit(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(prosa_max_request_bytes=10_000)) as client:
        assert_prosa_error(await client.get(f"{URL}/{'0' * 32}"), 404, "not_found")
        assert_prosa_error(await client.get(f"{URL}/{'0' * 32}/status"), 404, "not_found")
        assert_prosa_error(await client.post(URL, json=job(True)), 413, "request_too_large")


async def test_list_pages_without_results(fake_client: httpx.AsyncClient) -> None:
    ids = [(await fake_client.post(URL, json=job(True))).json()["job_id"] for _ in range(3)]
    first = (await fake_client.get(URL, params={"page": 1, "per_page": 2})).json()
    assert first["pagination"] == {"page": 1, "per_page": 2, "page_count": 2} and first["length"] == 3
    assert [j["job_id"] for j in first["data"]] == ids[:0:-1]
    assert all("result" not in j and "data" not in j["request"] for j in first["data"])
    second = (await fake_client.get(URL, params={"page": 2, "per_page": 2})).json()
    assert [j["job_id"] for j in second["data"]] == ids[:1]
    assert_prosa_error(await fake_client.get(URL, params={"from_date": "2026-01-01"}), 422, "validation_error")


async def test_models(fake_client: httpx.AsyncClient) -> None:
    models = {m["name"]: m for m in (await fake_client.get(f"{URL}/models")).json()}
    assert next(iter(models)) == "stt-general" and "whisper-base" in models
    assert models["whisper-tiny.en"]["language"] == "en"
    assert models["whisper-base"]["language"] == "multilingual (detected)"


async def test_async_duration_limit(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(prosa_max_audio_seconds=5)) as client:
        body = (await client.post(URL, json=job(True))).json()
        assert body["status"] == "failed" and body["result"]["code"] == "audio_too_long"
        assert "longer than the limit of 5 seconds" in body["result"]["message"]

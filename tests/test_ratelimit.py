"""Requests per key (figure 19 of docs/reliability.md): past the quota a 429 with Retry-After in
1-60 s in each protocol's envelope, other keys unaffected, the OpenAI SDK's own retries get
through, replicas share the counts through Redis, and a Redis outage does not block the API."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import openai
import pytest

from app.core.ratelimit import RateLimited, RateLimiter
from app.main import create_app
from tests.audio_tools import wav_bytes
from tests.conftest import fake_registry, fake_settings, free_port, running_app, serve_in_thread
from tests.fakes import FakeEngineFactory

A, B = "key-a", "key-b"
WAV = wav_bytes(np.zeros(8000, np.float32))


def calls(key: str) -> list[tuple[str, str, dict[str, object]]]:
    return [
        ("openai", "GET", {"url": "/v1/models", "headers": {"Authorization": f"Bearer {key}"}}),
        ("google", "GET", {"url": "/v1/operations", "params": {"key": key}}),
        ("prosa", "GET", {"url": "/v2/speech/stt/models", "headers": {"x-api-key": key}}),
        (
            "yandex",
            "POST",
            {
                "url": "/asr_xml",
                "params": {"uuid": "0" * 32, "key": key, "topic": "queries"},
                "content": WAV,
                "headers": {"content-type": "audio/x-wav"},
            },
        ),
    ]


@pytest.mark.parametrize("protocol", ["openai", "google", "prosa", "yandex"])
async def test_past_its_quota_a_key_gets_429_in_its_protocols_envelope(tmp_path: Path, protocol: str) -> None:
    app = create_app(
        fake_settings(tmp_path, api_keys=[A, B], key_rate_limit=2),
        engine_factory=FakeEngineFactory(),
        registry=fake_registry(),
    )
    (method, request), (_, other) = (next((m, r) for n, m, r in calls(k) if n == protocol) for k in (A, B))
    async with running_app(app) as c:
        for _ in range(2):
            assert (await c.request(method, **request)).status_code == 200  # type: ignore[arg-type]
        refused = await c.request(method, **request)  # type: ignore[arg-type]
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert (await c.request(method, **other)).status_code == 200  # type: ignore[arg-type]  # another key
    if protocol == "openai":
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    elif protocol == "google":
        assert refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    elif protocol == "prosa":
        assert "Rate limit reached" in refused.text and "detail" not in refused.json()
    else:
        assert refused.text.startswith("<?xml") and "Rate limit reached" in refused.text


def test_the_openai_sdk_waits_out_the_window_and_succeeds(tmp_path: Path) -> None:
    app = create_app(
        fake_settings(tmp_path, api_keys=[A]), engine_factory=FakeEngineFactory(), registry=fake_registry()
    )
    app.state.rate_limiter = RateLimiter(1, window_seconds=2.0)
    with serve_in_thread(app) as url:
        sdk = openai.OpenAI(base_url=url + "/v1", api_key=A)  # default retries
        sdk.models.list()
        raw = sdk.with_options(max_retries=0).models.with_raw_response
        with pytest.raises(openai.RateLimitError):
            raw.list()
        assert [m.id for m in sdk.models.list()]  # retried after Retry-After, then answered


async def test_replicas_share_the_quota_through_redis(request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_url")
    first, second = (RateLimiter(3, window_seconds=600, redis_url=url) for _ in range(2))
    key = f"shared-{id(first)}"
    try:
        await first.check(key)
        await second.check(key)
        await first.check(key)
        with pytest.raises(RateLimited) as refused:
            await second.check(key)
        assert 1 <= refused.value.retry_after <= 600
        await second.check(key + "-other")
    finally:
        await first.close()
        await second.close()


async def test_a_redis_outage_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(1, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        with caplog.at_level(logging.WARNING, logger="asr.ratelimit"):
            for _ in range(3):
                await limiter.check("k")
        assert "not limiting" in caplog.text
    finally:
        await limiter.close()

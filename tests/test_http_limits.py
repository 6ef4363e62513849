"""Limits through a real uvicorn socket (fake engine): the exact 25 MiB boundary, seen by real clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from app.main import create_app
from tests.audio_tools import wav_bytes
from tests.conftest import fake_registry, fake_settings, serve_in_thread
from tests.fakes import FakeEngineFactory

LIMIT = 26_214_400
BOUNDARY = "limit-boundary"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = fake_settings(tmp_path_factory.mktemp("limits"))
    app = create_app(settings, engine_factory=FakeEngineFactory(), registry=fake_registry())
    with serve_in_thread(app) as url:
        yield url


def multipart_of_size(total: int) -> bytes:
    """A valid multipart body of exactly `total` bytes: 1 s of WAV padded with a trailing chunk."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    wav = wav_bytes(np.zeros(16000, np.float32))
    padding = total - len(head) - len(tail) - len(wav)
    return head + wav + b"\0" * padding + tail


def post(url: str, body: bytes) -> httpx.Response:
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    return httpx.post(url + "/v1/audio/transcriptions", content=body, headers=headers, timeout=120)


def test_exactly_the_limit_is_accepted(server: str) -> None:
    r = post(server, multipart_of_size(LIMIT))
    assert r.status_code == 200, r.text


def test_one_byte_over_is_413_in_the_openai_envelope(server: str) -> None:
    r = post(server, multipart_of_size(LIMIT + 1))
    assert r.status_code == 413
    assert r.json()["error"]["message"] == f"Maximum content size limit ({LIMIT}) exceeded ({LIMIT + 1} bytes read)"
    assert r.json()["error"]["type"] == "server_error"


def test_chunked_upload_over_the_limit_is_413(server: str) -> None:
    body = multipart_of_size(LIMIT + 500_000)
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    r = httpx.post(server + "/v1/audio/transcriptions", content=chunks, headers=headers, timeout=120)
    assert "content-length" not in r.request.headers
    assert r.status_code == 413


def test_the_openai_sdk_sees_the_413(server: str, tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    big.write_bytes(wav_bytes(np.zeros(16000, np.float32)) + b"\0" * LIMIT)
    sdk = openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught, big.open("rb") as f:
        sdk.audio.transcriptions.create(model="whisper-1", file=f)
    assert caught.value.status_code == 413
    assert "Maximum content size limit" in caught.value.message

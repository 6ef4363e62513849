"""Generated requests on every protocol through a real socket (the server `python -m app` runs, fake
engine): 1000 per protocol, any JSON where the protocol expects JSON, any text where it expects form
fields or query parameters. No answer may be a server error, and every refusal is in the protocol's
own envelope (never FastAPI's {"detail"})."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app
from app.protocols.google.config import HONOURED
from tests.audio_tools import wav_bytes
from tests.conftest import fake_registry, fake_settings, serve_in_thread
from tests.fakes import FakeEngineFactory

EXAMPLES = 1000
WAV = wav_bytes(np.zeros(8000, np.float32))
B64 = base64.b64encode(WAV).decode()
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None, derandomize=True
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
field_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)


def any_of_fields(names: list[str], typical: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of the protocol's own field names, each with a typical value or anything at all."""
    return st.dictionaries(
        st.sampled_from(names), st.one_of(*(st.just(v) for v in typical.values()), json_values), max_size=5
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    options = fake_settings(tmp_path_factory.mktemp("fuzz"), queue_size=64, allowed_uri_schemes="https")
    app = create_app(options, engine_factory=FakeEngineFactory(), registry=fake_registry())
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def assert_handled(response: httpx.Response) -> None:
    assert response.status_code < 500 or response.status_code == 503, (response.status_code, response.text[:500])
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        assert not (isinstance(body, dict) and "detail" in body), body


GOOGLE_TYPICAL = {"languageCode": "en-US", "encoding": "LINEAR16", "maxAlternatives": 2, "intervalsJson": "[[0, 1]]"}


@FUZZ
@given(config=any_of_fields([*sorted(HONOURED), "bogus"], GOOGLE_TYPICAL), audio=st.one_of(st.just(None), json_values))
def test_google(server: httpx.Client, config: dict[str, Any], audio: Any) -> None:
    body = {"config": config, "audio": {"content": B64} if audio is None else audio}
    assert_handled(server.post("/v1/speech:recognize", json=body))


PROSA_CONFIG = ["model", "engine", "wait", "auto_punctuation", "speaker_count", "include_partial_results", "x"]
PROSA_REQUEST = ["data", "audio", "uri", "label", "duration", "mime_type", "sample_rate", "channels"]


@FUZZ
@given(
    config=any_of_fields(PROSA_CONFIG, {"model": "stt-general", "wait": False}),
    request=any_of_fields(PROSA_REQUEST, {"data": B64, "uri": "https://example.com/a.wav"}),
)
def test_prosa(server: httpx.Client, config: dict[str, Any], request: dict[str, Any]) -> None:
    assert_handled(server.post("/v2/speech/stt", json={"config": config, "request": request}))


OPENAI_FIELDS = [
    "model", "language", "prompt", "response_format", "temperature", "timestamp_granularities[]", "stream", "x",
]  # fmt: skip


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(OPENAI_FIELDS), field_text, max_size=5), with_file=st.booleans())
def test_openai(server: httpx.Client, fields: dict[str, str], with_file: bool) -> None:
    files = {"file": ("a.wav", WAV, "audio/wav")} if with_file else None
    data = {"model": "whisper-1"} | fields
    assert_handled(server.post("/v1/audio/transcriptions", data=data, files=files))


YANDEX_QUERY = ["uuid", "key", "topic", "lang", "disableAntimat", "x"]


@FUZZ
@given(
    query=st.dictionaries(st.sampled_from(YANDEX_QUERY), field_text, max_size=6),
    content_type=st.one_of(st.just("audio/x-wav"), st.just("audio/x-pcm;bit=16;rate=16000"), field_text),
)
def test_yandex(server: httpx.Client, query: dict[str, str], content_type: str) -> None:
    params = {"uuid": "0" * 32, "key": "k", "topic": "queries"} | query
    sendable = content_type.isascii() and content_type.isprintable() and content_type.strip() == content_type
    headers = {"content-type": content_type} if sendable and content_type else {}
    response = server.post("/asr_xml", params=params, content=WAV, headers=headers)
    assert response.status_code < 500 or response.status_code == 503, response.text[:500]
    assert response.headers["content-type"].startswith("text/xml")

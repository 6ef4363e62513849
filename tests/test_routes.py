"""Properties of every route at once: the API key, the protocol's own error envelope for unknown
paths and methods, HEAD on probes, and the API reference served offline."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.main import create_app
from app.page import router as page
from app.protocols import docs
from tests.conftest import fake_registry, fake_settings
from tests.fakes import FakeEngineFactory

# "/" is the page: no data until a key is typed into it (tests/test_page.py).
OPEN = {"/", "/v1/health/live", "/healthz", "/v1/health/ready", "/readyz", "/v1/metrics", "/metrics"}
KEY = "sesame"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(
        fake_settings(tmp_path, api_keys=[KEY]), engine_factory=FakeEngineFactory(), registry=fake_registry()
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def routes_of(routes: list[Any]) -> Iterator[Any]:
    """Every route, through included routers (FastAPI >= 0.16x keeps them as wrappers)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from routes_of(included.routes) if included is not None else [route]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def assert_envelope(response: httpx.Response) -> None:
    if response.headers["content-type"].startswith("text/xml"):
        assert "<error" in response.text or "<recognitionResults" in response.text
        return
    body = response.json()
    assert "detail" not in body
    assert "error" in body or "code" in body or body.get("status") == "ERROR"  # the last: the Open API's


async def test_every_route_but_probes_and_metrics_needs_the_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    checked, websockets = [], []
    for route in routes_of(app.routes):
        if isinstance(route, Mount):
            # Public scripts and styles: Swagger UI's and the page's, nothing else.
            assert route.path in (docs.ASSETS, page.ASSETS)
            continue
        if isinstance(route, APIWebSocketRoute):
            websockets.append(route.path)
            continue
        assert isinstance(route, APIRoute)
        for method in sorted(route.methods - {"HEAD"}):
            response = await client.request(method, concrete(route.path))
            if method == "OPTIONS":  # a CORS preflight: browsers send it without credentials
                assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"
            elif route.path in OPEN:
                assert response.status_code in (200, 503), route.path  # 503: readiness while not started
            else:
                assert response.status_code == 401, (method, route.path, response.text)
                assert_envelope(response)
                checked.append(route.path)
    assert {"/v1/models", "/v1/metadata", "/v1/version", "/docs", "/openapi.json", "/asr_xml"} <= set(checked)
    assert sorted(websockets) == ["/mod9", "/v1/realtime"]
    for path in websockets:  # refused in the protocol's words (OpenAI's error event, Mod9's failed), close 1008
        with TestClient(app).websocket_connect(path) as ws:
            refusal = ws.receive_json()
            assert refusal.get("status") == "failed" or refusal["error"]["code"] == "invalid_api_key"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1008
    assert len(checked) > 25


async def test_the_key_opens_the_reference_and_its_assets_are_local(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs", params={"key": KEY})
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and f"/openapi.json?key={KEY}" in page.text
    for asset in re.findall(r"(/docs/assets/[\w./-]+)", page.text):
        assert (await client.get(asset)).status_code == 200
    schema = await client.get("/openapi.json", headers={"Authorization": f"Bearer {KEY}"})
    assert "/v1/audio/transcriptions" in schema.json()["paths"]
    metadata = await client.get("/v1/metadata", headers={"Authorization": f"Bearer {KEY}"})
    assert all("/" not in asset for asset in metadata.json()["assetInfo"])


async def test_the_reference_shows_every_request_body_and_is_a_valid_openapi_document(app: FastAPI) -> None:
    """The routes read their bodies themselves (depth limit, envelopes, chunked audio), so the
    reference is given the wire models: a user of /docs sees the real fields of each body."""
    from openapi_spec_validator import validate

    from app.protocols.google.config import HONOURED

    schema = app.openapi()
    validate(schema)  # type: ignore[arg-type]
    components = schema["components"]["schemas"]

    def body(path: str, media: str) -> dict[str, Any]:
        ref: str = schema["paths"][path]["post"]["requestBody"]["content"][media]["schema"]["$ref"]
        found: dict[str, Any] = components[ref.rsplit("/", 1)[1]]
        return found

    for path in ("/v1/speech:recognize", "/v1p1beta1/speech:longrunningrecognize"):
        assert set(body(path, "application/json")["properties"]) == {"config", "audio"}
    assert set(components["RecognitionConfig"]["properties"]) == HONOURED  # every field config.py reads
    assert set(components["RecognitionAudio"]["properties"]) == {"content", "uri"}
    prosa = body("/v2/speech/stt", "application/json")
    assert set(prosa["properties"]) == {"config", "request"} and "wait" in components["JobConfig"]["properties"]
    for path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        form = body(path, "multipart/form-data")
        assert form["properties"]["file"]["format"] == "binary" and "file" in form["required"]
        assert "timestamp_granularities[]" in form["properties"]
    audio = schema["paths"]["/asr_xml"]["post"]["requestBody"]["content"]
    assert "audio/x-pcm;bit=16;rate=16000" in audio and "audio/ogg;codecs=opus" in audio


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", "/asr_xml", 405, "xml"),
        ("PUT", "/asr_xml", 405, "xml"),
        ("GET", "/v2/speech/stt/nothing/here", 404, "prosa"),
        ("PUT", "/v2/speech/stt/models", 405, "prosa"),
        ("GET", "/v1/speech:recognize", 405, "google"),
        ("GET", "/v1/nothing", 404, "openai"),
        ("PATCH", "/v1/audio/transcriptions", 405, "openai"),
    ],
)
async def test_unknown_paths_and_methods_answer_in_the_protocols_envelope(
    client: httpx.AsyncClient, method: str, path: str, status: int, kind: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    if kind == "xml":
        assert response.headers["content-type"].startswith("text/xml") and "<error" in response.text
    elif kind == "prosa":
        assert {"code", "message", "recovery", "request_id"} <= set(response.json())
    elif kind == "google":
        assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    else:
        assert response.json()["error"]["type"] == "invalid_request_error"
    if status == 405:
        assert response.headers["allow"]


async def test_probes_answer_head(client: httpx.AsyncClient) -> None:
    assert (await client.head("/v1/health/live")).status_code == 200
    assert (await client.head("/readyz")).status_code == 503  # not started in this test

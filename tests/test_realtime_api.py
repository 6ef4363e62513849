"""/v1/realtime on the fake engine over a real socket: the first event per dialect, keys (close
1008), capacity (close 1013), NIM's minted session token, the idle timeout, and the session's
decodes cancelled when the client goes."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app.core.stream_decode import MULAW
from app.main import create_app
from tests.audio_tools import read_pcm
from tests.conftest import fake_registry, fake_settings, serve_in_thread
from tests.fakes import FakeEngineFactory

KEY = "sesame"


def serve(tmp_path: Path, **overrides: Any) -> Iterator[str]:
    app = create_app(
        fake_settings(tmp_path, **overrides),
        engine_factory=FakeEngineFactory(seconds_per_segment=0.05, segment_seconds=2.0),
        registry=fake_registry(),
    )
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    yield from serve(tmp_path, api_keys=[KEY], realtime_max_sessions=2, realtime_idle_seconds=1.5)


def ws_url(url: str, query: str = "intent=transcription") -> str:
    return url.replace("http://", "ws://") + "/v1/realtime?" + query


def refused(ws: ClientConnection) -> tuple[dict[str, Any], int | None]:
    event = json.loads(ws.recv(timeout=5))
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)
    return event, ws.close_code


def test_each_dialect_gets_the_first_event_its_client_waits_for(url: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    with connect(ws_url(url, "intent=transcription&model=gpt-4o-transcribe"), additional_headers=auth) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "session.created"
    with connect(ws_url(url), additional_headers=auth | {"OpenAI-Beta": "realtime=v1"}) as ws:
        first = json.loads(ws.recv(timeout=5))
        assert first["type"] == "transcription_session.created"
        assert first["session"]["input_audio_format"] == "pcm16" and first["session"]["id"].startswith("sess_")
    with connect(ws_url(url), additional_headers={"X-API-Key": KEY}) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "conversation.created"
        ws.send(
            json.dumps(
                {"type": "transcription_session.update", "session": {"input_audio_params": {"sample_rate_hz": 8000}}}
            )
        )
        updated = json.loads(ws.recv(timeout=5))
        assert updated["type"] == "transcription_session.updated"
        assert updated["session"]["input_audio_params"]["sample_rate_hz"] == 8000
        assert updated["session"]["turn_detection"]["silence_duration_ms"] == 800


def test_a_missing_or_wrong_key_is_an_error_then_close_1008(url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        with connect(ws_url(url), additional_headers=headers) as ws:
            event, code = refused(ws)
        assert code == 1008 and event["type"] == "error" and event["error"]["code"] == "invalid_api_key"
    # A browser cannot set headers: the key rides in a subprotocol, or the query (as speaches).
    with connect(ws_url(url), subprotocols=["realtime", f"openai-insecure-api-key.{KEY}"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "realtime"
        assert json.loads(ws.recv(timeout=5))["type"] == "conversation.created"
    with connect(ws_url(url, f"intent=transcription&api_key={KEY}")) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "conversation.created"


def test_nim_mints_a_session_secret_for_the_websocket(url: str) -> None:
    assert httpx.post(url + "/v1/realtime/transcription_sessions", json={}).status_code == 401
    session = httpx.post(
        url + "/v1/realtime/transcription_sessions", json={}, headers={"Authorization": f"Bearer {KEY}"}
    ).json()
    assert (
        session["object"] == "realtime.transcription_session"
        and session["input_audio_params"]["sample_rate_hz"] == 16000
    )
    token = session["client_secret"]["value"]
    with connect(ws_url(url), subprotocols=["realtime", f"realtime-token.{token}"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "realtime"
        assert json.loads(ws.recv(timeout=5))["type"] == "conversation.created"
    with connect(ws_url(url), subprotocols=["realtime", "realtime-token.forged"]) as ws:  # type: ignore[list-item]
        assert refused(ws)[1] == 1008


def test_past_the_session_cap_an_error_then_close_1013(url: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    with connect(ws_url(url), additional_headers=auth) as one, connect(ws_url(url), additional_headers=auth) as two:
        one.recv(timeout=5), two.recv(timeout=5)
        with connect(ws_url(url), additional_headers=auth) as three:
            event, code = refused(three)
        assert code == 1013 and "2 live sessions" in event["error"]["message"]
    with connect(ws_url(url), additional_headers=auth) as again:  # the slots came back
        assert json.loads(again.recv(timeout=5))["type"] == "conversation.created"


def test_an_idle_session_is_closed_with_an_error_event(url: str) -> None:
    with connect(ws_url(url), additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        ws.recv(timeout=5)
        began = time.monotonic()
        event = json.loads(ws.recv(timeout=10))
        assert event["type"] == "error" and "No message for 1.5 seconds" in event["error"]["message"]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1000 and time.monotonic() - began >= 1.4


def test_a_manual_session_commits_and_transcribes_g711(tmp_path: Path) -> None:
    """turn_detection null: nothing is transcribed until the commit; mu-law at 8 kHz (audio/pcmu)."""
    speech = read_pcm("ps_goforward.wav")[::2]  # 16 kHz -> 8 kHz by dropping samples: fine for the fake
    ulaw = np.abs(MULAW[None, :] - speech[:, None]).argmin(axis=1).astype(np.uint8).tobytes()
    for url in serve(tmp_path):
        with connect(ws_url(url, "intent=transcription&model=whisper-1")) as ws:
            ws.recv(timeout=5)
            audio_input = {"format": {"type": "audio/pcmu"}, "turn_detection": None}
            ws.send(
                json.dumps(
                    {"type": "session.update", "session": {"type": "transcription", "audio": {"input": audio_input}}}
                )
            )
            updated = json.loads(ws.recv(timeout=5))["session"]["audio"]["input"]
            assert updated["format"] == {"type": "audio/pcmu"} and updated["turn_detection"] is None
            for start in range(0, len(ulaw), 800):
                ws.send(
                    json.dumps(
                        {
                            "type": "input_audio_buffer.append",
                            "audio": base64.b64encode(ulaw[start : start + 800]).decode(),
                        }
                    )
                )
            with pytest.raises(TimeoutError):
                ws.recv(timeout=1)  # no VAD: nothing happens until the commit
            ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            kinds, completed = [], None
            while completed is None:
                event = json.loads(ws.recv(timeout=10))
                kinds.append(event["type"])
                if event["type"].endswith("completed"):
                    completed = event
            assert kinds == [
                "input_audio_buffer.committed",
                "conversation.item.added",
                "conversation.item.done",
                "conversation.item.input_audio_transcription.completed",
            ]
            assert completed["transcript"] == "Segment 0, fake. Segment 1, fake."
            assert completed["usage"] == {"type": "duration", "seconds": pytest.approx(len(speech) / 8000, abs=0.01)}
            metrics = httpx.get(url + "/v1/metrics").text
            assert "asr_live_sessions 1.0" in metrics  # this one, still open
            assert "asr_live_final_latency_seconds_count 1.0" in metrics


def test_audio_in_a_gone_client_is_not_decoded_on(tmp_path: Path) -> None:
    """The client leaves mid-utterance: its session's decodes are cancelled (the pool drains)."""
    slow = FakeEngineFactory(seconds_per_segment=2.0, segment_seconds=1.0)  # 10 s of audio: 20 s to decode
    app = create_app(fake_settings(tmp_path), engine_factory=slow, registry=fake_registry())
    speech = read_pcm("ps_librivox_0870.wav")
    audio = (speech * 32767).astype("<i2").tobytes()
    with serve_in_thread(app) as url:
        with connect(ws_url(url, "intent=transcription&model=whisper-1")) as ws:
            ws.recv(timeout=5)
            manual = {
                "type": "transcription",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None}},
            }
            ws.send(json.dumps({"type": "session.update", "session": manual}))
            ws.recv(timeout=5)
            ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}))
            ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            assert json.loads(ws.recv(timeout=5))["type"] == "input_audio_buffer.committed"
            deadline = time.monotonic() + 5
            while app.state.service.pool.in_flight == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert app.state.service.pool.in_flight == 1
        deadline = time.monotonic() + 5
        while app.state.service.pool.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.service.pool.in_flight == 0 and app.state.live_sessions == 0

"""Mod9's WebSocket at /mod9 on the fake engine over a real socket: options, binary audio, an empty
message to end, Mod9's replies and its failures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app.main import create_app
from tests.audio_tools import read_pcm, wav_bytes
from tests.conftest import fake_registry, fake_settings, serve_in_thread
from tests.fakes import FakeEngineFactory

KEY = "sesame"
SPEECH = np.concatenate([read_pcm("ps_goforward.wav"), np.zeros(16000, np.float32), read_pcm("ps_librivox_0880.wav")])


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    app = create_app(
        fake_settings(tmp_path, api_keys=[KEY]),
        engine_factory=FakeEngineFactory(segment_seconds=2.0),
        registry=fake_registry(),
    )
    with serve_in_thread(app) as base:
        yield base.replace("http://", "ws://") + "/mod9"


def replies(ws: ClientConnection) -> list[dict[str, Any]]:
    out = []
    with pytest.raises(ConnectionClosed):
        while True:
            out.append(json.loads(ws.recv(timeout=20)))
    return out


def test_a_wav_stream_gets_mod9_results_then_completed(url: str) -> None:
    with connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        ws.send(json.dumps({"word-intervals": True, "transcript-alternatives": 2}))
        audio = wav_bytes(SPEECH)
        for start in range(0, len(audio), 3200):
            ws.send(audio[start : start + 3200])
        ws.send(b"")
        got = replies(ws)
    assert got[0]["status"] == "processing" and "uuid" in got[0] and got[0]["asr_model"] == "whisper-base"
    assert got[-1] == {"status": "completed"}
    results = got[1:-1]
    assert [r["result_index"] for r in results] == [0, 1] and all(r["final"] for r in results)
    first = results[0]
    for result in results:  # Mod9's transcript: the formatted one lower-cased, without punctuation
        formatted = result["transcript_formatted"]
        assert result["transcript"] == formatted.lower().replace(",", "").replace(".", "")
        assert result["alternatives"][0]["transcript"] == result["transcript"]
        assert all(w["interval"][0] < w["interval"][1] for w in result["words"]) and result["words"]
    assert first["interval"][0] < first["interval"][1] <= 3.5
    assert results[1]["interval"][0] > 3.5  # stream time


def test_partial_results_come_before_the_final(url: str) -> None:
    with connect(url, additional_headers={"X-API-Key": KEY}) as ws:
        ws.send(json.dumps({"partial": True, "format": "raw", "rate": 8000, "encoding": "pcm_s16le"}))
        raw = (read_pcm("ps_librivox_0870.wav")[::2] * 32767).astype("<i2").tobytes()
        for start in range(0, len(raw), 1600):  # 100 ms at 8 kHz, paced so partials are due
            ws.send(raw[start : start + 1600])
            if start % 16000 == 0:
                time.sleep(0.3)
        ws.send(b"")
        got = replies(ws)
    kinds = [r.get("final") for r in got if "result_index" in r]
    assert False in kinds and kinds[-1] is True and kinds.index(False) < kinds.index(True)


@pytest.mark.parametrize(
    ("first", "error"),
    [
        ("{not json", "[WebSocket] Could not parse options from first message (JSON decode error:"),
        (json.dumps({"rate": "fast"}), "[WebSocket] Invalid option 'rate'"),
        (json.dumps({"format": "raw", "rate": 4000}), "live audio rate 4000 Hz"),
        (json.dumps({"asr-model": "nope"}), "nope"),
    ],
)
def test_bad_options_fail_in_mod9_words(url: str, first: str, error: str) -> None:
    with connect(url, additional_headers={"X-API-Key": KEY}) as ws:
        ws.send(first)
        (reply,) = replies(ws)
    assert (reply["status"] == "failed" and reply["error"].startswith(error)) or error in reply["error"], reply


def test_text_after_the_options_and_a_bad_key_fail(url: str) -> None:
    with connect(url, additional_headers={"X-API-Key": KEY}) as ws:
        ws.send("{}")
        ws.send("not audio")
        got = replies(ws)
    assert got[-1] == {"status": "failed", "error": "[WebSocket] audio must be sent as binary messages"}
    with connect(url) as ws:
        (reply,) = replies(ws)
        assert reply["status"] == "failed" and ws.close_code == 1008

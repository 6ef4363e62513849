"""Yandex /asr_xml in process on the fake engine: query, content types, limits, XML answers."""

from __future__ import annotations

import asyncio
import random
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest

from app.core.types import Segment, Transcript
from app.protocols.yandex.render import document, variants
from tests.audio_tools import encode, read_pcm, wav_bytes
from tests.conftest import AppFactory, running_app
from tests.fakes import FakeEngineFactory

UUID = "01ae13cb744628b58fb536d496daa1e6"
QUERY = f"/asr_xml?uuid={UUID}&key=developers-key&topic=queries&lang=en-US"
# Real speech (chunked uploads are cut where the server's VAD hears pauses), 12 s with the silence.
PCM_12S = np.concatenate([read_pcm("jfk.wav"), np.zeros(16000, np.float32)])


def parsed(response: httpx.Response) -> ET.Element:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n')
    return ET.fromstring(response.content)


def decoded_seconds(app: Any) -> float:
    """Audio the decoders have finished, from the metric (of the app, or of a test client's app)."""
    app = getattr(getattr(app, "_transport", None), "app", app)
    value = app.state.metrics.registry.get_sample_value("asr_audio_seconds_total", {"model": "whisper-base"})
    return float(value or 0.0)


def texts(root: ET.Element) -> list[str]:
    return [v.text or "" for v in root.findall("variant")]


def bodies() -> dict[str, tuple[str, bytes]]:
    at_48k = np.interp(np.arange(len(PCM_12S) * 3) / 3, np.arange(len(PCM_12S)), PCM_12S).astype(np.float32)[:, None]
    at_8k = PCM_12S[::2]
    return {
        "wav": ("audio/x-wav", wav_bytes(PCM_12S)),
        "mp3": ("audio/x-mpeg-3", encode(PCM_12S[:, None], "mp3", "libmp3lame", 16000)),
        "ogg": ("audio/ogg;codecs=opus", encode(at_48k, "ogg", "libopus", 48000)),
        "webm": ("audio/webm; codecs=opus", encode(at_48k, "webm", "libopus", 48000)),
        "pcm16k": ("audio/x-pcm;bit=16;rate=16000", (PCM_12S * 32767).astype("<i2").tobytes()),
        "pcm8k": ("audio/x-pcm;rate=8000;bit=16", (at_8k * 32767).astype("<i2").tobytes()),
        "alaw": ("audio/x-alaw;bit=13;rate=8000", encode(at_8k[:, None], "alaw", "pcm_alaw", 8000)),
    }


async def chunks(data: bytes, size: int = 3200) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
@pytest.mark.parametrize("name", list(bodies()))
async def test_every_content_type(fake_client: httpx.AsyncClient, name: str, chunked: bool) -> None:
    content_type, data = bodies()[name]
    content = chunks(data) if chunked else data
    r = await fake_client.post(QUERY, content=content, headers={"content-type": content_type})
    assert r.status_code == 200, r.text
    assert ("content-length" in r.request.headers) is not chunked
    root = parsed(r)
    assert root.get("success") == "1" and 1 <= len(root.findall("variant")) <= 5
    if chunked:
        # Decoded as utterances while it arrived: all 11 s of speech, read at the right rate.
        assert 10.5 <= decoded_seconds(fake_client) <= 40, decoded_seconds(fake_client)
    else:
        # 12 s of audio at the right rate: the fake engine's segments cover it to the end.
        assert "Segment 2, fake." in texts(root)[0] or "segment 2" in texts(root)[0].lower(), texts(root)
    assert r.headers["x-yauuid"] == UUID and r.headers["x-yarequestid"]


async def test_streamed_upload_starts_recognition_before_the_end(make_fake_app: AppFactory) -> None:
    app = make_fake_app(FakeEngineFactory(segment_seconds=2.0))
    speech = np.tile(PCM_12S, 2)
    data = (speech * 32767).astype("<i2").tobytes()
    seen_before_end: list[float] = []

    async def paced() -> AsyncIterator[bytes]:
        async for chunk in chunks(data):
            yield chunk
        for _ in range(100):  # wait until a window has been decoded, while the upload is still open
            if decoded_seconds(app):
                break
            await asyncio.sleep(0.02)
        seen_before_end.append(decoded_seconds(app))

    async with running_app(app) as client:
        r = await client.post(QUERY, content=paced(), headers={"content-type": "audio/x-pcm;bit=16;rate=16000"})
        assert r.status_code == 200
    assert seen_before_end[0] > 0
    assert parsed(r).get("success") == "1"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("/asr_xml?key=k&topic=queries", 400),
        ("/asr_xml?uuid=xyz&key=k&topic=queries", 400),
        (f"/asr_xml?uuid={UUID}&topic=queries", 401),
        (f"/asr_xml?uuid={UUID}&key=k", 400),
        (f"/asr_xml?uuid={UUID}&key=k&topic=klingon-poetry", 400),
        (f"/asr_xml?uuid={UUID}&key=k&topic=queries&lang=xx-XX", 400),
        (f"/asr_xml?uuid={UUID}&key=k&topic=queries&disableAntimat=maybe", 400),
    ],
)
async def test_bad_query(fake_client: httpx.AsyncClient, query: str, status: int) -> None:
    r = await fake_client.post(query, content=wav_bytes(PCM_12S), headers={"content-type": "audio/x-wav"})
    assert r.status_code == status
    root = parsed(r)
    assert root.get("success") == "0" and root.find("error") is not None


@pytest.mark.parametrize(
    "content_type",
    [None, "audio/x-speex", "video/mp4", "audio/x-pcm;bit=8;rate=16000", "audio/x-alaw;bit=13;rate=16000"],
)
async def test_unsupported_content_types_are_415(fake_client: httpx.AsyncClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = await fake_client.post(QUERY, content=b"\0" * 1000, headers=headers)
    assert r.status_code == 415 and parsed(r).get("success") == "0"


async def test_one_megabyte_rule(fake_client: httpx.AsyncClient) -> None:
    pcm = (np.tile(PCM_12S, 3) * 32767).astype("<i2").tobytes()  # 36 s, 1.15 MB
    assert len(pcm) > 1_048_576
    headers = {"content-type": "audio/x-pcm;bit=16;rate=16000"}
    assert (await fake_client.post(QUERY, content=pcm, headers=headers)).status_code == 413
    r = await fake_client.post(QUERY, content=chunks(pcm, 65536), headers=headers)
    assert r.status_code == 200 and texts(parsed(r))[0].lower().count("segment") >= 7  # 36 s


async def test_chunked_stream_cap(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(yandex_max_stream_bytes=100_000)) as client:
        data = (PCM_12S * 32767).astype("<i2").tobytes()
        r = await client.post(QUERY, content=chunks(data), headers={"content-type": "audio/x-pcm;bit=16;rate=16000"})
        assert r.status_code == 413 and parsed(r).get("success") == "0"


async def test_profanity_masked_unless_disabled(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(FakeEngineFactory(text="oh shit {index}"))) as client:
        headers = {"content-type": "audio/x-wav"}
        masked = texts(parsed(await client.post(QUERY, content=wav_bytes(PCM_12S), headers=headers)))[0]
        kept = texts(
            parsed(await client.post(QUERY + "&disableAntimat=true", content=wav_bytes(PCM_12S), headers=headers))
        )[0]
        assert "s***" in masked and "shit" not in masked and "shit" in kept


async def test_api_key_checked_when_configured(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(api_keys="yk")) as client:
        headers = {"content-type": "audio/x-wav"}
        assert (await client.post(QUERY, content=wav_bytes(PCM_12S), headers=headers)).status_code == 401
        ok = await client.post(QUERY.replace("developers-key", "yk"), content=wav_bytes(PCM_12S), headers=headers)
        assert ok.status_code == 200


def test_nothing_recognised_is_success_0() -> None:
    empty = Transcript(segments=(), language="en", language_probability=1.0, duration=3.0)
    assert document(variants(empty, 5)) == b'<?xml version="1.0" encoding="utf-8"?>\n<recognitionResults success="0"/>'


def test_xml_is_always_well_formed() -> None:
    alphabet = "<>&\"' \x00\x01\x08\x0b\x0c\x1f\t\nabcя中😀\u202e\ud800\udfff\ufffe\uffff"
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        segment = Segment(start=0, end=1, text=text, confidence=0.5)
        transcript = Transcript(segments=(segment,), language="en", language_probability=1.0, duration=1.0)
        root = ET.fromstring(document(variants(transcript, 5)))
        kept = "".join(ch for ch in text if ch in "<>&\"' \t\nabcя中😀\u202e")
        assert root.get("success") == "1" and (root.find("variant").text or "") == kept.replace("\r", "")  # type: ignore[union-attr]

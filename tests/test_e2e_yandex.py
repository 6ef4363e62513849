"""End to end: a Yandex client's chunked upload paced at real time, recognised while it arrives."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.audio_tools import DATA, ENGLISH, read_pcm, references, wav_bytes
from tests.conftest import RealServer
from tests.wer import wer

pytestmark = pytest.mark.e2e
UUID = "01ae13cb744628b58fb536d496daa1e6"
CLIPS = ["jfk.wav", "moonshine_beckett.wav", "ps_librivox_0870.wav"]  # 28 s of speech


def decoded_seconds(server: RealServer) -> float:
    text = httpx.get(server.url + "/v1/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("asr_audio_seconds_total{")
    )


def test_chunked_upload_at_real_time_is_recognised_while_it_arrives(real_server: RealServer) -> None:
    silence = np.zeros(8000, np.float32)
    pcm = np.concatenate([p for name in CLIPS for p in (read_pcm(name), silence)])
    raw = (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()
    progress: dict[str, float] = {}

    def paced() -> Iterator[bytes]:
        step = 3200  # 100 ms of 16 kHz 16-bit audio
        start = time.perf_counter()
        progress["before"] = decoded_seconds(real_server)
        for i in range(0, len(raw), step):
            delay = start + i / 32000 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if i + step >= len(raw):
                progress["at_last_chunk"] = decoded_seconds(real_server)
            yield raw[i : i + step]
        progress["sent"] = time.perf_counter()

    query = f"/asr_xml?uuid={UUID}&key=k&topic=notes&lang=en-US"
    headers = {"content-type": "audio/x-pcm;bit=16;rate=16000"}
    response = httpx.post(real_server.url + query, content=paced(), headers=headers, timeout=600)
    latency = time.perf_counter() - progress["sent"]
    print(f"answer {latency:.2f} s after the last byte of {len(pcm) / 16000:.0f} s")
    assert response.status_code == 200
    assert "transfer-encoding" in response.request.headers
    root = ET.fromstring(response.content)
    assert root.get("success") == "1"
    best = root.findall("variant")[0].text or ""
    refs = references()
    assert wer([" ".join(refs[name] for name in CLIPS)], [best]) <= 0.1
    # More than 15 s had been decoded before the upload ended: recognition ran during it.
    assert progress["at_last_chunk"] - progress["before"] > 15


def test_wav_and_silence(real_server: RealServer) -> None:
    query = real_server.url + f"/asr_xml?uuid={UUID}&key=k&topic=queries&lang=en-US"
    r = httpx.post(
        query, content=(DATA / "ps_goforward.wav").read_bytes(), headers={"content-type": "audio/x-wav"}, timeout=120
    )
    variants = [v.text or "" for v in ET.fromstring(r.content).findall("variant")]
    assert 1 <= len(variants) <= 5 and "go forward" in variants[0].lower() and "10" in variants[0]
    silent = (np.zeros(3 * 16000, np.int16)).tobytes()
    r = httpx.post(query, content=silent, headers={"content-type": "audio/x-pcm;bit=16;rate=16000"}, timeout=120)
    assert r.status_code == 200 and ET.fromstring(r.content).get("success") == "0"


def _jfk_bodies() -> dict[str, tuple[str, bytes]]:
    from tests.audio_tools import encode, wav_bytes

    pcm = read_pcm("jfk.wav")
    at_48k = np.interp(np.arange(len(pcm) * 3) / 3, np.arange(len(pcm)), pcm).astype(np.float32)[:, None]
    at_8k = read_pcm_at("jfk.wav", 8000)
    return {
        "wav": ("audio/x-wav", wav_bytes(pcm)),
        "mp3": ("audio/x-mpeg-3", encode(pcm[:, None], "mp3", "libmp3lame", 16000)),
        "ogg-opus": ("audio/ogg;codecs=opus", encode(at_48k, "ogg", "libopus", 48000)),
        "webm-opus": ("audio/webm;codecs=opus", encode(at_48k, "webm", "libopus", 48000)),
        "pcm-16k": ("audio/x-pcm;bit=16;rate=16000", (pcm * 32767).astype("<i2").tobytes()),
        "pcm-8k": ("audio/x-pcm;bit=16;rate=8000", (at_8k * 32767).astype("<i2").tobytes()),
        "alaw-8k": ("audio/x-alaw;bit=13;rate=8000", encode(at_8k[:, None], "alaw", "pcm_alaw", 8000)),
    }


def read_pcm_at(name: str, rate: int) -> np.ndarray:
    import av

    with av.open(str(DATA / name)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [o.to_ndarray()[0] for f in container.decode(audio=0) for o in resampler.resample(f)]
        parts += [o.to_ndarray()[0] for o in resampler.resample(None)]
    return np.concatenate(parts)


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
@pytest.mark.parametrize("name", list(_jfk_bodies()))
def test_real_speech_in_every_content_type(real_server: RealServer, name: str, chunked: bool) -> None:
    content_type, body = _jfk_bodies()[name]
    content: bytes | Iterator[bytes] = (body[i : i + 4096] for i in range(0, len(body), 4096)) if chunked else body
    query = real_server.url + f"/asr_xml?uuid={UUID}&key=k&topic=queries&lang=en-US"
    r = httpx.post(query, content=content, headers={"content-type": content_type}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    variants = [v.text or "" for v in ET.fromstring(r.content).findall("variant")]
    assert 1 <= len(variants) <= 5
    assert "what your country can do for you" in variants[0].lower()


def test_a_chunked_upload_is_as_accurate_as_the_same_audio_whole(real_server: RealServer) -> None:
    """The live session's cutting and context: within 1 WER point of decoding the file whole."""
    silence = np.zeros(8000, np.float32)
    pcm = np.concatenate([p for name in ENGLISH for p in (read_pcm(name), silence)])
    raw = (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()

    def pieces() -> Iterator[bytes]:  # as fast as the network allows
        for i in range(0, len(raw), 32000):
            yield raw[i : i + 32000]

    query = f"/asr_xml?uuid={UUID}&key=k&topic=notes&lang=en-US"
    headers = {"content-type": "audio/x-pcm;bit=16;rate=16000"}
    response = httpx.post(real_server.url + query, content=pieces(), headers=headers, timeout=600)
    assert response.status_code == 200, response.text
    chunked = ET.fromstring(response.content).findall("variant")[0].text or ""
    whole = httpx.post(
        real_server.url + "/v1/audio/transcriptions",
        files={"file": ("all.wav", wav_bytes(pcm), "audio/wav")},
        data={"model": "whisper-1", "language": "en"},
        timeout=600,
    ).json()["text"]
    reference = [" ".join(references()[name] for name in ENGLISH)]
    chunked_wer, whole_wer = wer(reference, [chunked]), wer(reference, [whole])
    print(f"WER chunked {chunked_wer:.2%}, whole {whole_wer:.2%} ({len(pcm) / 16000:.0f} s)")
    assert chunked_wer <= whole_wer + 0.01, (chunked, whole)

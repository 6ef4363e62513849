"""A client that hangs up stops the work it asked for, on every protocol: after the disconnect the
decoders spend less CPU (read from /proc) than one window's decode, where finishing the 200 s file
would cost several. Measured on the shared real server (2 workers and a reserve)."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio_tools import long_clip, wav_bytes
from tests.conftest import RealServer

pytestmark = pytest.mark.e2e
TICKS = os.sysconf("SC_CLK_TCK")
LONG = wav_bytes(long_clip()[0])
WINDOW = wav_bytes(long_clip()[0][: 30 * 16000])  # about one window of speech


def cpu(pids: list[int]) -> dict[int, float]:
    seconds = {}
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        seconds[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


def spent(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    return {pid: after[pid] - before[pid] for pid in before if pid in after}


def settle(server: RealServer) -> None:
    deadline = time.monotonic() + 120
    while "asr_in_flight_requests 0.0" not in httpx.get(server.url + "/v1/metrics").text:
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.fixture(scope="module")
def one_window_cpu(real_server: RealServer) -> float:
    """What one window costs a worker here: the bound for the work left after a disconnect."""
    pids = real_server.worker_pids()
    before = cpu(pids)
    response = httpx.post(
        real_server.url + "/v1/audio/transcriptions",
        files={"file": ("w.wav", WINDOW)},
        data={"model": "whisper-1"},
        timeout=300,
    )
    assert response.status_code == 200
    return max(spent(before, cpu(pids)).values())


def openai(url: str) -> None:
    httpx.post(
        url + "/v1/audio/transcriptions", files={"file": ("l.wav", LONG)}, data={"model": "whisper-1"}, timeout=4
    )


def openai_sse(url: str) -> None:
    form = {"model": "whisper-1", "stream": "true"}
    with httpx.stream("POST", url + "/v1/audio/transcriptions", files={"file": ("l.wav", LONG)}, data=form, timeout=30):
        time.sleep(4)  # the response has started; hang up without reading it


def google(url: str) -> None:
    body = {"config": {"languageCode": "en-US"}, "audio": {"content": base64.b64encode(LONG).decode()}}
    httpx.post(url + "/v1/speech:recognize", json=body, timeout=4)


def yandex_chunked(url: str) -> None:
    def pieces() -> Iterator[bytes]:
        for i in range(0, len(LONG), 1 << 16):
            yield LONG[i : i + (1 << 16)]

    query = "uuid=" + "1" * 32 + "&key=k&topic=queries&lang=en-US"
    headers = {"content-type": "audio/x-wav", "transfer-encoding": "chunked"}
    httpx.post(f"{url}/asr_xml?{query}", content=pieces(), headers=headers, timeout=4)


@pytest.mark.parametrize("hang_up", [openai, openai_sse, google, yandex_chunked], ids=lambda f: f.__name__)
def test_a_disconnect_stops_the_decode(
    real_server: RealServer, one_window_cpu: float, hang_up: Callable[[str], Any]
) -> None:
    settle(real_server)
    pids = real_server.worker_pids()
    try:
        hang_up(real_server.url)
    except httpx.TimeoutException:
        pass  # the client gave up: its connection is closed now
    at_disconnect = cpu(pids)
    settle(real_server)
    time.sleep(1)
    after = spent(at_disconnect, cpu(pids))
    print(f"{hang_up.__name__}: worker CPU after the disconnect {sorted(after.values())}, one window {one_window_cpu}")
    assert max(after.values()) < one_window_cpu, (after, one_window_cpu)
    metrics = httpx.get(real_server.url + "/v1/metrics").text
    assert 'asr_cancelled_requests_total{stage="decoding"}' in metrics

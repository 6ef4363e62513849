"""SIGTERM on the real server: readiness 503 at once while requests are still served, then new
connections refused, then whatever is still decoding answered with a retryable 503 in its own
envelope (never a 500), running jobs handed back and finished by the next server."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.audio_tools import long_clip, wav_bytes
from tests.conftest import RealServer
from tests.test_e2e_google import assert_transcribed, start_jobs, wait_all_done, wait_running

pytestmark = pytest.mark.e2e
ENV = {
    "ASR_WORKERS": "1",
    "ASR_RESERVE_WORKERS": "0",
    "ASR_MODELS": "whisper-base",
    "ASR_DRAIN_SECONDS": "3",
    "ASR_GRACE_SECONDS": "3",
}


def test_sigterm_drains_then_answers_what_is_left_with_a_retryable_503(tmp_path: Path) -> None:
    first = RealServer(tmp_path, **ENV)
    answers: list[httpx.Response] = []
    try:
        first.wait_ready()
        names = start_jobs(first, 1)
        wait_running(first)
        long = wav_bytes(long_clip()[0])

        def transcribe() -> None:
            answers.append(
                httpx.post(
                    first.url + "/v1/audio/transcriptions",
                    files={"file": ("long.wav", long)},
                    data={"model": "whisper-1"},
                    timeout=120,
                )
            )

        caller = threading.Thread(target=transcribe)
        caller.start()
        time.sleep(1.0)  # the request is admitted and waits behind the job's window
        first.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        ready = httpx.get(first.url + "/v1/health/ready", timeout=5)
        assert ready.status_code == 503  # draining: not a refused connection
        assert httpx.get(first.url + "/v1/health/live", timeout=5).status_code == 200
        time.sleep(4)
        with pytest.raises(httpx.ConnectError):
            httpx.get(first.url + "/v1/health/live", timeout=5)
        caller.join(60)
        assert first.process.wait(60) is not None
    finally:
        first.stop()
    (answer,) = answers
    assert answer.status_code == 503 and answer.headers["retry-after"]
    assert answer.json()["error"]["code"] == "service_unavailable"
    log = first.log.read_text()
    assert "Traceback" not in log and " 500 " not in log
    second = RealServer(tmp_path, **ENV)  # the same data folder: the job was handed back
    try:
        second.wait_ready()
        assert_transcribed(wait_all_done(second, names))
    finally:
        second.stop()

"""End to end: Prosa's getting-started client code (requests, model "stt-general") against `python -m app`,
and Prosa jobs that survive a SIGKILLed server."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.audio_tools import DATA, read_pcm, wav_bytes
from tests.conftest import RealServer

pytestmark = pytest.mark.e2e


def submit_stt_request(url: str, api_key: str, filename: Path, wait: bool) -> dict[str, Any]:
    """As in Prosa's documentation, with only the host changed."""
    with open(filename, "rb") as f:
        b64audio = base64.b64encode(f.read()).decode("utf-8")
    headers = {"x-api-key": api_key}
    payload = {"config": {"model": "stt-general", "wait": wait}, "request": {"data": b64audio}}
    response = requests.post(url, json=payload, headers=headers, timeout=600)
    result: dict[str, Any] = response.json()
    return result


def query_stt_result(url: str, api_key: str, job_id: str) -> dict[str, Any] | None:
    response = requests.get(url + "/" + job_id, headers={"x-api-key": api_key}, timeout=30)
    if response.status_code == 200:
        job = response.json()
        if job["status"] == "complete":
            result: dict[str, Any] = job["result"]
            return result
    return None


def text_of(result: dict[str, Any]) -> str:
    return " ".join(item["transcript"] for item in result["data"])


def test_prosa_client_wait_true_and_false(real_server: RealServer) -> None:
    url = real_server.url + "/v2/speech/stt"
    job = submit_stt_request(url, "any-key", DATA / "jfk.wav", wait=True)
    assert job["status"] == "complete"
    assert "ask not what your country can do for you" in text_of(job["result"])
    job = submit_stt_request(url, "any-key", DATA / "ps_goforward.wav", wait=False)
    deadline = time.monotonic() + 120
    while (result := query_stt_result(url, "any-key", job["job_id"])) is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "go forward" in text_of(result)


def test_prosa_jobs_survive_a_sigkilled_server(tmp_path: Path) -> None:
    env = {"ASR_WORKERS": "1", "ASR_MODELS": "whisper-base"}
    opening = tmp_path / "opening.wav"  # the first 12 s of the clip: "It was the best of times, ..."
    opening.write_bytes(wav_bytes(read_pcm("moonshine_two_cities.wav")[: 12 * 16000]))
    first = RealServer(tmp_path, **env)
    try:
        first.wait_ready()
        ids = [submit_stt_request(first.url + "/v2/speech/stt", "k", opening, wait=False)["job_id"] for _ in range(2)]
        deadline = time.monotonic() + 60
        while requests.get(f"{first.url}/v2/speech/stt/{ids[0]}/status", timeout=10).json()["status"] != "in_progress":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        first.kill()
    second = RealServer(tmp_path, **env)
    try:
        second.wait_ready()
        for job_id in ids:
            deadline = time.monotonic() + 300
            while (result := query_stt_result(second.url + "/v2/speech/stt", "k", job_id)) is None:
                assert time.monotonic() < deadline
                time.sleep(0.3)
            assert "best of times" in text_of(result).lower()
    finally:
        second.stop()


def test_prosa_node_client(real_server: RealServer) -> None:
    node = shutil.which("node")
    assert node, "Node.js is part of this machine kind; the Prosa Node snippet needs it"
    script = Path(__file__).parent / "clients" / "prosa_client.js"
    run = subprocess.run(
        [node, str(script), real_server.url, str(DATA / "jfk.wav")], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    output = json.loads(run.stdout)
    assert output["wait_status"] == "complete"
    for result in (output["wait_result"], output["polled_result"]):
        assert "ask not what your country" in text_of(result).lower()

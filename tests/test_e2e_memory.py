"""Memory stays bounded whatever the upload: a 200 MB chunked WAV to /asr_xml is spooled to disk as
it arrives, so the server's peak RSS (VmHWM, reset before the upload) grows by far less."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RealServer

pytestmark = pytest.mark.e2e
UPLOAD = 200 * 1024 * 1024


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_200_mb_chunked_upload_does_not_grow_the_server(real_server: RealServer) -> None:
    pid = real_server.process.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets the peak to the current RSS
    before = peak_rss_mb(pid)

    def body() -> Iterator[bytes]:
        chunk = b"\0" * (1 << 20)
        for _ in range(UPLOAD // len(chunk)):
            yield chunk

    response = httpx.post(
        real_server.url + "/asr_xml?uuid=" + "2" * 32 + "&key=k&topic=queries&lang=en-US",
        content=body(),
        headers={"content-type": "audio/x-wav", "transfer-encoding": "chunked"},
        timeout=300,
    )
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/xml")  # not audio
    assert peak_rss_mb(pid) - before < 48, (before, peak_rss_mb(pid))

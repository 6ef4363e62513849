"""Slow and hostile clients against a real socket (the server `python -m app` runs, fake engine):
header and body timeouts, the header-block cap, the connection cap, over-limit Content-Length."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from app.main import create_app
from tests.audio_tools import wav_bytes
from tests.conftest import fake_registry, fake_settings, serve_in_thread
from tests.fakes import FakeEngineFactory

GUARDS = {
    "header_timeout_seconds": 1.0,
    "body_progress_seconds": 1.0,
    "body_min_bytes": 200,
    "max_header_bytes": 4096,
    "max_connections": 24,
    "keep_alive_seconds": 2.0,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = fake_settings(tmp_path_factory.mktemp("slow"), **GUARDS)
    app = create_app(settings, engine_factory=FakeEngineFactory(), registry=fake_registry())
    with serve_in_thread(app) as url:
        yield url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def closed_while_trickling(sock: socket.socket, data: bytes, pause: float) -> bool:
    """Send `data` a byte at a time; True if the server closed the connection before the end."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return True
        sock.settimeout(pause)
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            pass
        except ConnectionResetError:
            return True
    return False


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_headers_sent_a_byte_at_a_time_are_cut_off(server: str) -> None:
    with connect(server) as sock:
        head = b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 40 + b"\r\n\r\n"
        assert closed_while_trickling(sock, head, pause=0.25)  # 80 bytes at 4/s: 20 s unless cut off


def test_a_connection_that_sends_nothing_is_closed(server: str) -> None:
    with connect(server) as sock:
        sock.settimeout(10)
        assert sock.recv(100) == b""  # closed by the header timeout, well before ours


def test_a_body_that_trickles_is_cut_off(server: str) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 1000\r\n\r\n"
        )
        assert closed_while_trickling(sock, b"-" * 100, pause=0.1)  # 10 bytes/s against 200 per second


def test_a_steady_body_is_not_cut_off(server: str) -> None:
    wav = wav_bytes(np.zeros(3 * 16000, np.float32))  # 96 KB sent over about 2 s
    pieces = [wav[i : i + 4800] for i in range(0, len(wav), 4800)]

    def paced() -> Iterator[bytes]:
        for piece in pieces:
            time.sleep(0.1)
            yield piece

    response = httpx.post(
        server + "/v1/audio/transcriptions", files={"file": ("a.wav", b"".join(paced()))}, data={"model": "whisper-1"}
    )
    assert response.status_code == 200
    chunked = httpx.post(
        server + "/asr_xml?uuid=" + "0" * 32 + "&key=k&topic=queries",
        content=paced(),
        headers={"content-type": "audio/x-wav"},
        timeout=30,
    )
    assert chunked.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [b"X-Big: " + b"a" * 100_000 + b"\r\n", b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))],
    ids=["one 100 KB header", "10,000 headers"],
)
def test_an_oversized_header_block_is_431(server: str, headers: bytes) -> None:
    with connect(server) as sock:
        try:
            sock.sendall(b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert read_all(sock).startswith(b"HTTP/1.1 431 ")


def test_an_over_limit_content_length_is_refused_without_reading_the_body(server: str) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 1000000000\r\n\r\nab"
        )
        answer = read_all(sock)  # the server answers and closes; we never send the 1 GB
    assert answer.startswith(b"HTTP/1.1 413 ") and b"Maximum content size limit" in answer


def test_connections_past_the_cap_get_503_and_the_rest_stay_bounded(server: str) -> None:
    held = [connect(server) for _ in range(GUARDS["max_connections"] + 6)]  # type: ignore[operator]
    try:
        refused = 0
        for sock in held[-6:]:
            sock.settimeout(5)
            if sock.recv(200).startswith(b"HTTP/1.1 503 "):
                refused += 1
        assert refused == 6
    finally:
        for sock in held:
            sock.close()
    time.sleep(1.5)  # the held ones are closed by the header timeout; the cap frees up
    assert httpx.get(server + "/v1/health/live").status_code == 200

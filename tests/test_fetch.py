"""Audio by URI (app/core/fetch.py) against real local servers: an http.server, moto's S3 and the GCS emulator.

Every server is started here on a free loopback port and stopped when the module is done. SSRF cases use a
canary server that counts every TCP connection it accepts; they must leave it untouched.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

import app.core.fetch as fetch_module
from app.core.errors import DeadlineExceeded, InvalidArgument, NotFound, PayloadTooLarge
from app.core.fetch import FetchConfig, UriRefused, check_address, fetched, resolve

AUDIO = (Path(__file__).parent / "data" / "jfk.wav").read_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(tmp_dir: Path, **overrides: Any) -> FetchConfig:
    values: dict[str, Any] = {
        "allowed_schemes": frozenset({"http"}),
        "file_root": None,
        "allow_private": False,
        "max_bytes": 10 * len(AUDIO),
        "timeout": 5.0,
        "max_redirects": 3,
        "tmp_dir": tmp_dir,
    } | overrides
    return FetchConfig(**values)


async def fetch_bytes(uri: str, config: FetchConfig) -> bytes:
    async with fetched(uri, config) as audio:
        assert audio.path is not None
        return Path(audio.path).read_bytes()


def leftovers(tmp_dir: Path) -> list[Path]:
    return list(tmp_dir.iterdir()) if tmp_dir.exists() else []


# --- local HTTP servers --------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """Routes: /audio, /big/N, /chunked/N, /endless, /gzip, /missing, /status/N, /redirect/N, /to?url=, /slow."""

    protocol_version = "HTTP/1.1"
    server: LocalServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_body(self, body: bytes, **headers: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        head, arg = segments[0], segments[1] if len(segments) > 1 else ""
        if head == "audio":
            self.send_body(AUDIO)
        elif head == "big":
            self.send_body(b"\0" * int(arg))
        elif head == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            remaining = int(arg)
            while remaining:
                size = min(remaining, 4096)
                self.send_chunk(b"\1" * size)
                remaining -= size
            self.wfile.write(b"0\r\n\r\n")
        elif head == "endless":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(100_000):  # ~400 MB if nobody stops reading; the cap must stop it long before
                    self.send_chunk(b"\2" * 4096)
            except OSError:
                self.close_connection = True
        elif head == "gzip":
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                self.send_body(gzip.compress(AUDIO), Content_Encoding="gzip")
            else:
                self.send_body(AUDIO)
        elif head == "status":
            self.send_response(int(arg))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif head == "redirect":
            hops = int(arg)
            self.redirect(f"/redirect/{hops - 1}" if hops > 1 else "/audio")
        elif head == "to":
            self.redirect(parse_qs(parts.query)["url"][0])
        elif head == "slow":
            time.sleep(2)
            self.send_body(AUDIO)
        elif head == "trickle":  # a byte every 0.2 s: each read is quick, the whole is not
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily = socket.AF_INET) -> None:
        self.address_family = family
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections = 0
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that stop reading (cap reached, timeout) break the pipe on purpose

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1  # every accepted TCP connection, even one that never sends a request
        return True


@pytest.fixture(scope="module")
def servers() -> Iterator[list[LocalServer]]:
    """Two HTTP servers on 127.0.0.1: [origin, canary]; the canary also listens on ::1 when it can."""
    started: list[LocalServer] = [LocalServer(("127.0.0.1", 0)), LocalServer(("127.0.0.1", 0))]
    try:
        started.append(LocalServer(("::1", started[1].server_address[1]), socket.AF_INET6))
    except OSError:
        pass
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in started]
    for thread in threads:
        thread.start()
    try:
        yield started
    finally:
        for server in started:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(10)


@pytest.fixture
def origin(servers: list[LocalServer]) -> LocalServer:
    servers[0].requests.clear()
    return servers[0]


@pytest.fixture
def origin_url(origin: LocalServer) -> str:
    return f"http://127.0.0.1:{origin.server_address[1]}"


class Canary:
    def __init__(self, servers: list[LocalServer]) -> None:
        self.servers = servers
        self.port = servers[0].server_address[1]
        for server in servers:
            server.connections = 0

    @property
    def hits(self) -> int:
        return sum(server.connections for server in self.servers)


@pytest.fixture
def canary(servers: list[LocalServer]) -> Canary:
    return Canary(servers[1:])


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request httpx is asked to send (so a refused URI provably never reached the network layer)."""
    seen: list[str] = []
    original = httpx.AsyncClient.send

    async def recording(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        seen.append(str(request.url))
        return await original(self, request, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", recording)
    return seen


# --- http:// -------------------------------------------------------------------------------------------------


async def test_http_exact_bytes_and_temp_file_removed(origin_url: str, tmp_path: Path) -> None:
    config = make_config(tmp_path / "fetch", allow_private=True)
    async with fetched(f"{origin_url}/audio", config) as audio:
        assert audio.path is not None
        path = Path(audio.path)
        assert path.parent == config.tmp_dir
        assert path.read_bytes() == AUDIO
    assert not path.exists()
    assert leftovers(config.tmp_dir) == []


async def test_temp_file_removed_when_the_block_raises(origin_url: str, tmp_path: Path) -> None:
    config = make_config(tmp_path / "fetch", allow_private=True)
    with pytest.raises(RuntimeError):
        async with fetched(f"{origin_url}/audio", config) as audio:
            assert audio.path is not None and Path(audio.path).exists()
            raise RuntimeError("consumer failed")
    assert leftovers(config.tmp_dir) == []


async def test_http_sends_host_header_of_the_uri(origin: LocalServer, origin_url: str, tmp_path: Path) -> None:
    config = make_config(tmp_path, allow_private=True)
    assert await fetch_bytes(f"{origin_url}/audio", config) == AUDIO
    path, headers = origin.requests[-1]
    assert path == "/audio"
    assert headers["Host"] == urlsplit(origin_url).netloc


async def test_http_body_is_not_left_content_encoded(origin_url: str, tmp_path: Path) -> None:
    """A server that compresses when the client offers it: the file must still hold the audio bytes."""
    config = make_config(tmp_path / "fetch", allow_private=True)
    assert await fetch_bytes(f"{origin_url}/gzip", config) == AUDIO


async def test_http_404_is_not_found(origin_url: str, tmp_path: Path) -> None:
    config = make_config(tmp_path / "fetch", allow_private=True)
    with pytest.raises(NotFound):
        await fetch_bytes(f"{origin_url}/missing", config)
    assert leftovers(config.tmp_dir) == []


@pytest.mark.parametrize("status", [500, 403, 204])
async def test_http_other_status_is_invalid_argument(origin_url: str, tmp_path: Path, status: int) -> None:
    config = make_config(tmp_path / "fetch", allow_private=True)
    with pytest.raises(InvalidArgument) as info:
        await fetch_bytes(f"{origin_url}/status/{status}", config)
    assert type(info.value) is InvalidArgument
    assert leftovers(config.tmp_dir) == []


@pytest.mark.parametrize("status", [300, 302, 304, 307])
async def test_http_3xx_without_location_is_invalid_argument(
    origin: LocalServer, origin_url: str, tmp_path: Path, status: int
) -> None:
    """Not a redirect to follow: one request, then an error (not the same URL again until 'too many redirects')."""
    with pytest.raises(InvalidArgument) as info:
        await fetch_bytes(f"{origin_url}/status/{status}", make_config(tmp_path, allow_private=True))
    assert type(info.value) is InvalidArgument
    assert len(origin.requests) == 1


async def test_http_connection_refused_and_timeout_are_invalid_argument(origin_url: str, tmp_path: Path) -> None:
    config = make_config(tmp_path / "fetch", allow_private=True, timeout=0.5)
    with pytest.raises(InvalidArgument) as info:
        await fetch_bytes(f"http://127.0.0.1:{free_port()}/audio", config)
    assert type(info.value) is InvalidArgument
    with pytest.raises(InvalidArgument) as info:
        await fetch_bytes(f"{origin_url}/slow", config)
    assert type(info.value) is InvalidArgument
    assert leftovers(config.tmp_dir) == []


async def test_an_origin_that_trickles_is_cut_at_the_total_deadline(origin_url: str, tmp_path: Path) -> None:
    config = make_config(tmp_path / "fetch", allow_private=True, timeout=5, total_timeout=1.5)
    with pytest.raises(DeadlineExceeded, match=r"longer than 1\.5 s"):  # 100 bytes at 5/s: 20 s
        await fetch_bytes(f"{origin_url}/trickle", config)
    assert leftovers(config.tmp_dir) == []


@pytest.mark.parametrize("hops", [1, 2, 3])
async def test_http_redirects_within_the_limit_are_followed(
    origin: LocalServer, origin_url: str, tmp_path: Path, hops: int
) -> None:
    config = make_config(tmp_path / "fetch", allow_private=True, max_redirects=3)
    assert await fetch_bytes(f"{origin_url}/redirect/{hops}", config) == AUDIO
    assert [path for path, _ in origin.requests] == [f"/redirect/{n}" for n in range(hops, 0, -1)] + ["/audio"]
    assert leftovers(config.tmp_dir) == []


@pytest.mark.parametrize(("max_redirects", "hops"), [(3, 4), (0, 1), (1, 5)])
async def test_http_too_many_redirects_refused(
    origin: LocalServer, origin_url: str, tmp_path: Path, max_redirects: int, hops: int
) -> None:
    config = make_config(tmp_path / "fetch", allow_private=True, max_redirects=max_redirects)
    with pytest.raises(UriRefused):
        await fetch_bytes(f"{origin_url}/redirect/{hops}", config)
    assert len(origin.requests) == max_redirects + 1
    assert "/audio" not in [path for path, _ in origin.requests]
    assert leftovers(config.tmp_dir) == []


async def test_http_absolute_redirect_to_same_server_followed(origin_url: str, tmp_path: Path) -> None:
    target = quote(f"{origin_url}/audio", safe="")
    config = make_config(tmp_path, allow_private=True)
    assert await fetch_bytes(f"{origin_url}/to?url={target}", config) == AUDIO


@pytest.mark.parametrize("route", ["big", "chunked"])
async def test_http_over_max_bytes(origin_url: str, tmp_path: Path, route: str) -> None:
    """Exactly max_bytes passes; one more byte fails, with Content-Length declared and with chunked transfer."""
    config = make_config(tmp_path / "fetch", allow_private=True, max_bytes=100_000)
    assert len(await fetch_bytes(f"{origin_url}/{route}/100000", config)) == 100_000
    assert leftovers(config.tmp_dir) == []
    with pytest.raises(PayloadTooLarge) as info:
        await fetch_bytes(f"{origin_url}/{route}/100001", config)
    assert info.value.limit == 100_000
    assert leftovers(config.tmp_dir) == []


async def test_http_endless_chunked_body_stops_at_the_cap(origin_url: str, tmp_path: Path) -> None:
    config = make_config(tmp_path / "fetch", allow_private=True, max_bytes=1 << 20)
    started = time.monotonic()
    with pytest.raises(PayloadTooLarge) as info:
        await fetch_bytes(f"{origin_url}/endless", config)
    assert info.value.seen <= (1 << 20) + fetch_module.CHUNK
    assert time.monotonic() - started < 20
    assert leftovers(config.tmp_dir) == []


async def test_capped_writer_counts_while_streaming(tmp_path: Path) -> None:
    with (tmp_path / "sink").open("wb") as sink:
        capped = fetch_module._Capped(sink, 10)
        await capped.write(b"12345")
        await capped.write(b"67890")
        with pytest.raises(PayloadTooLarge):
            await capped.write(b"x")
    assert (tmp_path / "sink").read_bytes() == b"1234567890"


# --- SSRF ----------------------------------------------------------------------------------------------------

NON_PUBLIC = "non-public address"
CREDENTIALS = "user credentials"
UNSUPPORTED = "is not supported"
NOT_ENABLED = "is not enabled"


def ssrf_uris(port: int) -> list[tuple[str, str]]:
    return [
        (f"http://127.0.0.1:{port}/", NON_PUBLIC),
        (f"HTTP://127.0.0.1:{port}/", NON_PUBLIC),
        (f"http://localhost:{port}/", NON_PUBLIC),
        (f"http://[::1]:{port}/", NON_PUBLIC),
        (f"http://0.0.0.0:{port}/", NON_PUBLIC),
        (f"http://[::]:{port}/", NON_PUBLIC),
        (f"http://2130706433:{port}/", NON_PUBLIC),
        (f"http://0x7f000001:{port}/", NON_PUBLIC),
        (f"http://0177.0.0.1:{port}/", NON_PUBLIC),
        (f"http://127.1:{port}/", NON_PUBLIC),
        (f"http://127.0.0.2:{port}/", NON_PUBLIC),
        ("http://169.254.169.254/latest/meta-data/", NON_PUBLIC),
        ("http://[fd00:ec2::254]/latest/meta-data/", NON_PUBLIC),
        ("http://10.0.0.1/", NON_PUBLIC),
        ("http://172.16.0.1/", NON_PUBLIC),
        ("http://192.168.1.1/", NON_PUBLIC),
        ("http://100.64.0.1/", NON_PUBLIC),
        ("http://198.18.0.1/", NON_PUBLIC),
        ("http://192.0.2.1/", NON_PUBLIC),
        ("http://240.0.0.1/", NON_PUBLIC),
        ("http://255.255.255.255/", NON_PUBLIC),
        ("http://[fc00::1]/", NON_PUBLIC),
        ("http://[fe80::1]/", NON_PUBLIC),
        ("http://[2001:db8::1]/", NON_PUBLIC),
        (f"http://[::ffff:127.0.0.1]:{port}/", NON_PUBLIC),
        (f"http://[::ffff:7f00:1]:{port}/", NON_PUBLIC),
        (f"http://[::127.0.0.1]:{port}/", NON_PUBLIC),
        (f"http://[64:ff9b::7f00:1]:{port}/", NON_PUBLIC),
        ("http://[64:ff9b::a9fe:a9fe]/", NON_PUBLIC),
        (f"http://[2002:7f00:1::]:{port}/", NON_PUBLIC),
        ("http://224.0.0.1/", NON_PUBLIC),
        ("http://[ff02::1]/", NON_PUBLIC),
        ("http://user:pw@example.com/", CREDENTIALS),
        ("http://user@8.8.8.8/", CREDENTIALS),
        (f"http://127.0.0.1:{port}@example.com/", CREDENTIALS),
        (f"gopher://127.0.0.1:{port}/", UNSUPPORTED),
        (f"ftp://127.0.0.1:{port}/", UNSUPPORTED),
        (f"dict://127.0.0.1:{port}/", UNSUPPORTED),
        ("jar:http://x/", UNSUPPORTED),
        (f"ws://127.0.0.1:{port}/", UNSUPPORTED),
        ("file:///etc/passwd", NOT_ENABLED),
        (f"https://127.0.0.1:{port}/", NOT_ENABLED),  # supported, but not enabled here
        (f"//127.0.0.1:{port}/", UNSUPPORTED),
        ("/etc/passwd", UNSUPPORTED),
    ]


async def test_ssrf_targets_refused_without_touching_anything(canary: Canary, sends: list[str], tmp_path: Path) -> None:
    config = make_config(tmp_path / "fetch")  # allow_private=False, only http enabled
    uris = ssrf_uris(canary.port)
    assert len(uris) >= 25
    for uri, reason in uris:
        with pytest.raises(UriRefused, match=re.escape(reason)):
            await fetch_bytes(uri, config)
    assert sends == []
    assert canary.hits == 0
    assert leftovers(config.tmp_dir) == []


async def test_ssrf_refused_over_https_too(canary: Canary, sends: list[str], tmp_path: Path) -> None:
    config = make_config(tmp_path / "fetch", allowed_schemes=frozenset({"http", "https"}))
    for uri in [f"https://127.0.0.1:{canary.port}/", f"https://[::1]:{canary.port}/", "https://169.254.169.254/"]:
        with pytest.raises(UriRefused, match=re.escape(NON_PUBLIC)):
            await fetch_bytes(uri, config)
    assert sends == []
    assert canary.hits == 0


async def test_canary_counts_connections(canary: Canary, tmp_path: Path) -> None:
    """The canary is a real listener: the same URI with private addresses allowed does reach it."""
    with pytest.raises(NotFound):
        await fetch_bytes(f"http://127.0.0.1:{canary.port}/", make_config(tmp_path, allow_private=True))
    assert canary.hits == 1


@pytest.fixture
def public_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name public.test resolves to a public-looking answer that lands on 127.0.0.1; all else is real."""
    real_resolve = fetch_module.resolve

    async def fake_resolve(host: str, port: int, allow_private: bool) -> str:
        if host == "public.test":
            return "127.0.0.1"
        return await real_resolve(host, port, allow_private)

    monkeypatch.setattr(fetch_module, "resolve", fake_resolve)


async def test_pinned_connection_keeps_the_host_name(public_test: None, origin: LocalServer, tmp_path: Path) -> None:
    port = origin.server_address[1]
    assert await fetch_bytes(f"http://public.test:{port}/audio", make_config(tmp_path)) == AUDIO
    assert origin.requests[-1][1]["Host"] == f"public.test:{port}"


REDIRECT_REFUSED = "redirect to a"


def redirect_targets(port: int) -> list[tuple[str, str]]:
    return [
        (f"http://127.0.0.1:{port}/", NON_PUBLIC),
        (f"http://localhost:{port}/", NON_PUBLIC),
        (f"http://[::1]:{port}/", NON_PUBLIC),
        (f"http://2130706433:{port}/", NON_PUBLIC),
        (f"http://[::ffff:127.0.0.1]:{port}/", NON_PUBLIC),
        ("http://169.254.169.254/latest/meta-data/", NON_PUBLIC),
        ("http://10.0.0.1/", NON_PUBLIC),
        ("http://user:pw@public.test/", CREDENTIALS),
        (f"https://127.0.0.1:{port}/", REDIRECT_REFUSED),  # https is not enabled
        (f"https://public.test:{port}/", REDIRECT_REFUSED),
        ("file:///etc/passwd", REDIRECT_REFUSED),
        (f"gopher://127.0.0.1:{port}/", REDIRECT_REFUSED),
        (f"ftp://127.0.0.1:{port}/", REDIRECT_REFUSED),
    ]


async def test_redirect_to_internal_refused(
    public_test: None, origin: LocalServer, canary: Canary, sends: list[str], tmp_path: Path
) -> None:
    config = make_config(tmp_path / "fetch")
    origin_port = origin.server_address[1]
    for target, reason in redirect_targets(canary.port):
        sends.clear()
        with pytest.raises(UriRefused, match=re.escape(reason)):
            await fetch_bytes(f"http://public.test:{origin_port}/to?url={quote(target, safe='')}", config)
        assert len(sends) == 1, target  # the first hop only
    assert canary.hits == 0
    assert leftovers(config.tmp_dir) == []


REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.255",
    "192.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::127.0.0.1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",
    "64:ff9b::a00:1",
    "2002:7f00:1::",
    "2002:a9fe:a9fe::1",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "fe80::1%eth0",
    "ff02::1",
    "ff0e::1",
    "2001:db8::1",
    "2001::1",
    "100::1",
]

ALLOWED_ADDRESSES = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_check_address_refuses_non_public(address: str) -> None:
    with pytest.raises(UriRefused):
        check_address("host", address, allow_private=False)
    check_address("host", address, allow_private=True)


@pytest.mark.parametrize("address", ALLOWED_ADDRESSES)
def test_check_address_allows_public(address: str) -> None:
    check_address("host", address, allow_private=False)


async def test_resolve_checks_every_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: dict[str, list[str]] = {
        "public.test": ["8.8.8.8", "8.8.4.4"],
        "mixed.test": ["8.8.8.8", "127.0.0.1"],
        "mixed6.test": ["2606:4700:4700::1111", "::1"],
    }

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers[host]]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    assert await resolve("public.test", 80, allow_private=False) == "8.8.8.8"
    for host in ("mixed.test", "mixed6.test"):
        with pytest.raises(UriRefused):
            await resolve(host, 80, allow_private=False)
    assert await resolve("mixed.test", 80, allow_private=True) == "8.8.8.8"
    with pytest.raises(InvalidArgument) as info:
        await resolve("nowhere.test", 80, allow_private=False)
    assert type(info.value) is InvalidArgument


async def test_resolve_real_loopback_names() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1"):
        with pytest.raises(UriRefused):
            await resolve(host, 80, allow_private=False)
    assert await resolve("127.1", 80, allow_private=True) == "127.0.0.1"


# --- file:// -------------------------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.wav").write_bytes(AUDIO)
    (root / "sub" / "b.wav").write_bytes(AUDIO[:1000])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    return root.resolve()


DOTDOT_OR_NUL = "may not contain '..' or NUL"
OUTSIDE = "outside the allowed root"
NOT_REGULAR = "must name a regular file"
NO_HOST = "name no host"
CANNOT_OPEN = "cannot open"


def file_config(root: Path | None, tmp_path: Path, **overrides: Any) -> FetchConfig:
    return make_config(tmp_path / "fetch", allowed_schemes=frozenset({"file"}), file_root=root, **overrides)


async def test_file_returns_the_checked_path(root: Path, tmp_path: Path) -> None:
    config = file_config(root, tmp_path)
    for uri in (f"file://{root}/a.wav", f"file://localhost{root}/a.wav", f"file:{root}/a.wav"):
        async with fetched(uri, config) as audio:
            assert opened(audio.path) == str(root / "a.wav")
            assert Path(audio.path).read_bytes() == AUDIO
    async with fetched(f"file://{root}/sub/b.wav", config) as audio:
        assert opened(audio.path) == str(root / "sub" / "b.wav")
    assert (root / "a.wav").exists()  # the caller's file is never deleted
    assert not config.tmp_dir.exists()  # and nothing is copied


def opened(path: str | None) -> str:
    """The file behind the descriptor path a file:// fetch yields."""
    assert path is not None and path.startswith(f"/proc/{os.getpid()}/fd/")
    return os.readlink(path)


async def test_file_is_read_as_checked_even_when_swapped_for_a_symlink_meanwhile(root: Path, tmp_path: Path) -> None:
    async with fetched(f"file://{root}/a.wav", file_config(root, tmp_path)) as audio:
        (root / "a.wav").unlink()
        (root / "a.wav").symlink_to(tmp_path / "outside" / "secret")  # while the request waits in the queue
        assert audio.path is not None
        assert Path(audio.path).read_bytes() == AUDIO


async def test_file_root_given_through_a_symlink(root: Path, tmp_path: Path) -> None:
    (tmp_path / "root-link").symlink_to(root)
    async with fetched(f"file://{root}/a.wav", file_config(tmp_path / "root-link", tmp_path)) as audio:
        assert opened(audio.path) == str(root / "a.wav")


async def test_file_symlink_to_a_file_inside_root_resolves_to_its_target(root: Path, tmp_path: Path) -> None:
    """Policy (settings.file_uri_root: 'symlinks resolved'): a link whose target stays in the root is read as the
    target; O_NOFOLLOW only guards the already-resolved path."""
    (root / "link.wav").symlink_to(root / "a.wav")
    (root / "sub" / "up.wav").symlink_to("../a.wav")
    config = file_config(root, tmp_path)
    for name in ("link.wav", "sub/up.wav"):
        async with fetched(f"file://{root}/{name}", config) as audio:
            assert opened(audio.path) == str(root / "a.wav")


@pytest.fixture
def traps(root: Path, tmp_path: Path) -> Path:
    """Things inside the root that must not be read: links out, a FIFO, /dev/zero, a link loop."""
    (root / "out.wav").symlink_to(tmp_path / "outside" / "secret")
    (root / "outdir").symlink_to(tmp_path / "outside")
    (root / "passwd").symlink_to("/etc/passwd")
    (root / "zero.wav").symlink_to("/dev/zero")
    (root / "dev").symlink_to("/dev")
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    (root / "dangling.wav").symlink_to(tmp_path / "outside" / "nothing")
    os.mkfifo(root / "fifo.wav")
    return root


def refused_file_uris(root: Path) -> list[tuple[str, str]]:
    return [
        (f"file://{root}/../outside/secret", DOTDOT_OR_NUL),
        (f"file://{root}/%2e%2e/outside/secret", DOTDOT_OR_NUL),
        (f"file://{root}/%2E%2E/outside/secret", DOTDOT_OR_NUL),
        (f"file://{root}/..%2foutside%2fsecret", DOTDOT_OR_NUL),
        (f"file://{root}/sub/../../outside/secret", DOTDOT_OR_NUL),
        (f"file://{root}/sub/%2e%2e/a.wav", DOTDOT_OR_NUL),  # '..' is refused even when it would stay inside
        (f"file://{root}/out.wav", OUTSIDE),
        (f"file://{root}/outdir/secret", OUTSIDE),
        (f"file://{root}/passwd", OUTSIDE),
        (f"file://{root}/zero.wav", OUTSIDE),
        (f"file://{root}/dev/zero", OUTSIDE),
        (f"file://{root}/loop1", CANNOT_OPEN),
        (f"file://{root}/dangling.wav", OUTSIDE),
        (f"file://{root}/fifo.wav", NOT_REGULAR),
        (f"file://{root}/sub", NOT_REGULAR),
        (f"file://{root}/sub/", NOT_REGULAR),
        (f"file://{root}", NOT_REGULAR),
        (f"file://{root}/", NOT_REGULAR),
        (f"file://{root}/a.wav%00.txt", DOTDOT_OR_NUL),
        (f"file://{root}/a.wav%00", DOTDOT_OR_NUL),
        ("file:///etc/hostname", OUTSIDE),
        ("file:///etc/passwd", OUTSIDE),
        ("file:///dev/zero", OUTSIDE),
        ("file:///proc/self/environ", OUTSIDE),
        (f"file://{root.parent}/outside/secret", OUTSIDE),
        (f"file://{root}-evil/a.wav", OUTSIDE),  # a sibling that shares the root's prefix
        (f"file://otherhost{root}/a.wav", NO_HOST),
        (f"file://127.0.0.1{root}/a.wav", NO_HOST),
        (f"file://user@localhost{root}/a.wav", NO_HOST),
        (f"file://localhost:21{root}/a.wav", NO_HOST),
        ("file:a.wav", OUTSIDE),  # relative to the server's working directory, which is outside the root
    ]


async def test_file_refusals(traps: Path, tmp_path: Path) -> None:
    (tmp_path / "root-evil").mkdir()
    (tmp_path / "root-evil" / "a.wav").write_bytes(AUDIO)
    root = traps
    config = file_config(root, tmp_path)
    fifo = root / "fifo.wav"
    unblocked: list[bool] = []

    def unblock() -> None:  # should a read-open of the FIFO ever block, give it a writer and record that
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            unblocked.append(True)
        except OSError:
            pass

    watchdog = threading.Timer(5, unblock)
    watchdog.start()
    try:
        for uri, reason in refused_file_uris(root):
            with pytest.raises(UriRefused, match=re.escape(reason)):
                await fetch_bytes(uri, config)
    finally:
        watchdog.cancel()
    assert unblocked == []
    assert not config.tmp_dir.exists()


async def test_file_scheme_off_or_root_unset(root: Path, tmp_path: Path) -> None:
    uri = f"file://{root}/a.wav"
    with pytest.raises(UriRefused):
        await fetch_bytes(uri, make_config(tmp_path, file_root=root))  # only http enabled
    with pytest.raises(UriRefused):
        await fetch_bytes(uri, file_config(None, tmp_path))


async def test_file_missing_is_not_found(root: Path, tmp_path: Path) -> None:
    config = file_config(root, tmp_path)
    for uri in (f"file://{root}/nothing.wav", f"file://{root}/sub/nothing.wav"):
        with pytest.raises(NotFound):
            await fetch_bytes(uri, config)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
async def test_file_device_node_inside_root_refused(root: Path, tmp_path: Path) -> None:
    os.mknod(root / "zero.wav", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    with pytest.raises(UriRefused):
        await fetch_bytes(f"file://{root}/zero.wav", file_config(root, tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
async def test_file_unreadable_refused(root: Path, tmp_path: Path) -> None:
    (root / "a.wav").chmod(0)
    with pytest.raises(UriRefused):
        await fetch_bytes(f"file://{root}/a.wav", file_config(root, tmp_path))


async def test_file_over_max_bytes(root: Path, tmp_path: Path) -> None:
    uri = f"file://{root}/a.wav"
    assert await fetch_bytes(uri, file_config(root, tmp_path, max_bytes=len(AUDIO))) == AUDIO
    with pytest.raises(PayloadTooLarge) as info:
        await fetch_bytes(uri, file_config(root, tmp_path, max_bytes=len(AUDIO) - 1))
    assert info.value.seen == len(AUDIO)


# --- s3:// against moto --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    empty = tmp_path_factory.mktemp("aws") / "none"
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_CONFIG_FILE", str(empty))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            endpoint = f"http://127.0.0.1:{port}"
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            client.create_bucket(Bucket="bucket")
            client.put_object(Bucket="bucket", Key="jfk.wav", Body=AUDIO)
            client.put_object(Bucket="bucket", Key="dir/with space.wav", Body=AUDIO[:5000])
            yield endpoint
        finally:
            server.stop()


def cloud_config(tmp_path: Path, **overrides: Any) -> FetchConfig:
    return make_config(tmp_path / "fetch", allowed_schemes=frozenset({"s3", "gs"}), **overrides)


async def test_s3_exact_bytes(s3_endpoint: str, tmp_path: Path) -> None:
    config = cloud_config(tmp_path, s3_endpoint=s3_endpoint)
    async with fetched("s3://bucket/jfk.wav", config) as audio:
        assert audio.path is not None
        path = Path(audio.path)
        assert path.read_bytes() == AUDIO
    assert not path.exists()
    assert leftovers(config.tmp_dir) == []


async def test_s3_missing_is_not_found(s3_endpoint: str, tmp_path: Path) -> None:
    config = cloud_config(tmp_path, s3_endpoint=s3_endpoint)
    for uri in ("s3://bucket/missing.wav", "s3://no-such-bucket/jfk.wav"):
        with pytest.raises(NotFound):
            await fetch_bytes(uri, config)
    assert leftovers(config.tmp_dir) == []


async def test_s3_over_max_bytes(s3_endpoint: str, tmp_path: Path) -> None:
    config = cloud_config(tmp_path, s3_endpoint=s3_endpoint, max_bytes=len(AUDIO))
    assert await fetch_bytes("s3://bucket/jfk.wav", config) == AUDIO
    with pytest.raises(PayloadTooLarge):
        await fetch_bytes("s3://bucket/jfk.wav", replace(config, max_bytes=len(AUDIO) - 1))
    assert leftovers(config.tmp_dir) == []


async def test_s3_over_max_bytes_counted_while_streaming(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the declared length is not trusted (here: hidden), the stream is cut at the cap."""
    from aiobotocore.client import AioBaseClient

    original = AioBaseClient._make_api_call

    async def without_length(self: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = await original(self, operation, params)
        response.pop("ContentLength", None)
        return response

    monkeypatch.setattr(AioBaseClient, "_make_api_call", without_length)
    config = cloud_config(tmp_path, s3_endpoint=s3_endpoint, max_bytes=len(AUDIO) - 1)
    with pytest.raises(PayloadTooLarge):
        await fetch_bytes("s3://bucket/jfk.wav", config)
    assert leftovers(config.tmp_dir) == []


@pytest.mark.parametrize("uri", ["s3://bucket", "s3://bucket/", "s3:///jfk.wav", "s3:bucket/jfk.wav"])
async def test_s3_malformed_is_invalid_argument(s3_endpoint: str, tmp_path: Path, uri: str) -> None:
    config = cloud_config(tmp_path, s3_endpoint=s3_endpoint)
    with pytest.raises(InvalidArgument) as info:
        await fetch_bytes(uri, config)
    assert type(info.value) is InvalidArgument
    assert leftovers(config.tmp_dir) == []


async def test_s3_scheme_off(s3_endpoint: str, tmp_path: Path) -> None:
    with pytest.raises(UriRefused):
        await fetch_bytes("s3://bucket/jfk.wav", make_config(tmp_path, s3_endpoint=s3_endpoint))


async def test_s3_unreachable_endpoint_is_invalid_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    config = cloud_config(tmp_path, s3_endpoint=f"http://127.0.0.1:{free_port()}", timeout=1.0)
    with pytest.raises(InvalidArgument) as info:
        await fetch_bytes("s3://bucket/jfk.wav", config)
    assert type(info.value) is InvalidArgument
    assert leftovers(config.tmp_dir) == []


# --- gs:// against the GCS emulator --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gcs_endpoint() -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="bucket")
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for name, body in (("jfk.wav", AUDIO), ("dir/b.wav", AUDIO[:5000])):
            response = httpx.post(
                f"{endpoint}/upload/storage/v1/b/bucket/o",
                params={"uploadType": "media", "name": name},
                content=body,
                headers={"Content-Type": "audio/wav"},
                timeout=10,
            )
            response.raise_for_status()
        yield endpoint
    finally:
        server.stop()


async def test_gs_exact_bytes(gcs_endpoint: str, tmp_path: Path) -> None:
    config = cloud_config(tmp_path, gcs_endpoint=gcs_endpoint)
    async with fetched("gs://bucket/jfk.wav", config) as audio:
        assert audio.path is not None
        path = Path(audio.path)
        assert path.read_bytes() == AUDIO
    assert not path.exists()
    assert await fetch_bytes("gs://bucket/dir/b.wav", config) == AUDIO[:5000]
    assert leftovers(config.tmp_dir) == []


async def test_gs_missing_is_not_found(gcs_endpoint: str, tmp_path: Path) -> None:
    config = cloud_config(tmp_path, gcs_endpoint=gcs_endpoint)
    for uri in ("gs://bucket/missing.wav", "gs://no-such-bucket/jfk.wav"):
        with pytest.raises(NotFound):
            await fetch_bytes(uri, config)
    assert leftovers(config.tmp_dir) == []


async def test_gs_over_max_bytes(gcs_endpoint: str, tmp_path: Path) -> None:
    config = cloud_config(tmp_path, gcs_endpoint=gcs_endpoint, max_bytes=len(AUDIO))
    assert await fetch_bytes("gs://bucket/jfk.wav", config) == AUDIO
    with pytest.raises(PayloadTooLarge):
        await fetch_bytes("gs://bucket/jfk.wav", replace(config, max_bytes=len(AUDIO) - 1))
    assert leftovers(config.tmp_dir) == []


async def test_gs_over_max_bytes_counted_while_streaming(
    gcs_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the metadata gives no size, the stream is cut at the cap."""
    from gcloud.aio.storage import Storage

    async def no_size(self: Any, bucket: str, key: str, **kwargs: Any) -> dict[str, Any]:
        return {}

    monkeypatch.setattr(Storage, "download_metadata", no_size)
    config = cloud_config(tmp_path, gcs_endpoint=gcs_endpoint, max_bytes=len(AUDIO) - 1)
    with pytest.raises(PayloadTooLarge) as info:
        await fetch_bytes("gs://bucket/jfk.wav", config)
    assert info.value.seen > len(AUDIO) - 1
    assert leftovers(config.tmp_dir) == []


@pytest.mark.parametrize("uri", ["gs://bucket", "gs://bucket/", "gs:///jfk.wav"])
async def test_gs_malformed_is_invalid_argument(gcs_endpoint: str, tmp_path: Path, uri: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        await fetch_bytes(uri, cloud_config(tmp_path, gcs_endpoint=gcs_endpoint))
    assert type(info.value) is InvalidArgument

"""Audio by URI: file://, http(s)://, s3:// and gs://, each off until a setting turns it on.

http(s) is guarded against SSRF: every address a name resolves to must be public (unless allowed),
the connection is pinned to the checked address (no DNS rebinding), redirects are followed by hand
and each hop is checked again. Every source is read under the byte cap while streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import stat
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from app.core.errors import DeadlineExceeded, InvalidArgument, NotFound, PayloadTooLarge
from app.core.types import AudioInput

SCHEMES = ("file", "http", "https", "s3", "gs")
CHUNK = 1 << 16


class UriRefused(InvalidArgument):
    """The URI points somewhere this server may not read (scheme off, private address, outside root)."""

    kind = "uri_refused"


@dataclass(frozen=True)
class FetchConfig:
    allowed_schemes: frozenset[str]
    file_root: Path | None
    allow_private: bool
    max_bytes: int
    timeout: float
    max_redirects: int
    tmp_dir: Path
    s3_endpoint: str | None = None
    gcs_endpoint: str | None = None
    total_timeout: float = 600.0
    """The whole fetch, however slowly the origin trickles (each read also has `timeout`)."""


def check_scheme(uri: str, config: FetchConfig, *, param: str = "uri") -> str:
    """The URI's scheme, if this server fetches it (checked when a job is submitted and again when run)."""
    try:
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        parts.port  # noqa: B018 - raises on a port that is not one number (e.g. two ports)
    except ValueError:
        raise UriRefused(f"{uri[:200]!r} is not a valid URI", param=param) from None
    if scheme not in SCHEMES:
        raise UriRefused(
            f"URI scheme {scheme or '(none)'!r} is not supported; use one of {', '.join(SCHEMES)}", param=param
        )
    if scheme not in config.allowed_schemes:
        raise UriRefused(f"URI scheme {scheme!r} is not enabled on this server (ASR_ALLOWED_URI_SCHEMES)", param=param)
    return scheme


@contextlib.asynccontextmanager
async def fetched(uri: str, config: FetchConfig) -> AsyncIterator[AudioInput]:
    """The audio behind `uri`, as a local file for the time of the `async with` block."""
    scheme = check_scheme(uri, config)
    if scheme == "file":
        fd = await asyncio.to_thread(_open_local_file, uri, config)
        try:
            # The workers read the descriptor checked here, not the path: a file swapped for a
            # symlink while the request waits is never read (workers are children: /proc allows it).
            yield AudioInput(path=f"/proc/{os.getpid()}/fd/{fd}")
        finally:
            os.close(fd)
        return
    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=config.tmp_dir, prefix="fetch-")
    try:
        with os.fdopen(fd, "wb") as sink:
            reader = {"http": _http, "https": _http, "s3": _s3, "gs": _gs}[scheme]
            try:
                async with asyncio.timeout(config.total_timeout):
                    await reader(uri, config, sink)
            except TimeoutError:
                raise DeadlineExceeded(
                    f"fetching {uri} took longer than {config.total_timeout:g} s", param="uri"
                ) from None
        yield AudioInput(path=name)
    finally:
        os.unlink(name)


class _Capped:
    def __init__(self, sink: IO[bytes], limit: int) -> None:
        self.sink, self.limit, self.seen = sink, limit, 0

    async def write(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        if self.seen > self.limit:
            raise PayloadTooLarge(self.limit, self.seen, param="uri")
        await asyncio.to_thread(self.sink.write, chunk)


def _open_local_file(uri: str, config: FetchConfig) -> int:
    parts = urlsplit(uri)
    if config.file_root is None:
        raise UriRefused("file:// URIs need ASR_FILE_URI_ROOT to be set", param="uri")
    if parts.netloc not in ("", "localhost"):
        raise UriRefused("file:// URIs name no host", param="uri")
    path = unquote(parts.path)
    if "\x00" in path or ".." in Path(path).parts:
        raise UriRefused("file:// path may not contain '..' or NUL", param="uri")
    root = config.file_root.resolve()
    resolved = os.path.realpath(path)
    if not _within(root, Path(resolved)):
        raise UriRefused("file:// path is outside the allowed root", param="uri")
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}", param="uri") from None
    except OSError as exc:
        raise UriRefused(f"cannot open {path}: {exc.strerror}", param="uri") from None
    try:
        # Checked again on what was opened: a directory swapped between the check and the open
        # cannot lead outside the root.
        if not _within(root, Path(os.readlink(f"/proc/self/fd/{fd}"))):
            raise UriRefused("file:// path is outside the allowed root", param="uri")
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UriRefused("file:// must name a regular file", param="uri")
        if info.st_size > config.max_bytes:
            raise PayloadTooLarge(config.max_bytes, info.st_size, param="uri")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _within(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def check_address(host: str, address: str, allow_private: bool) -> None:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        ip = embedded or ip
    if not allow_private and (not ip.is_global or ip.is_multicast or ip.is_reserved):
        raise UriRefused(f"{host} resolves to {ip}, a non-public address; refused", param="uri")


async def resolve(host: str, port: int, allow_private: bool) -> str:
    """One checked address for `host`; every address it resolves to must pass (no mixed answers)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=0)
    except OSError:
        raise InvalidArgument(f"cannot resolve host {host!r}", param="uri") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        check_address(host, address, allow_private)
    return addresses[0]


async def _http(uri: str, config: FetchConfig, sink: IO[bytes]) -> None:
    timeout = httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0))
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=timeout) as client:
        for _ in range(config.max_redirects + 1):
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or parts.scheme not in config.allowed_schemes:
                raise UriRefused(f"redirect to a {parts.scheme!r} URI refused", param="uri")
            if parts.username or parts.password:
                raise UriRefused("URIs with user credentials are refused", param="uri")
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = await resolve(host, port, config.allow_private)
            literal = f"[{address}]" if ":" in address else address
            pinned = parts._replace(netloc=f"{literal}:{port}").geturl()
            # aiter_raw() writes the body as sent, so ask for it uncompressed (httpx offers gzip by default).
            headers = {"Host": parts.netloc, "Accept-Encoding": "identity"}
            request = client.build_request("GET", pinned, headers=headers, extensions={"sni_hostname": host})
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise InvalidArgument(f"could not fetch {uri}: {type(exc).__name__}", param="uri") from None
            try:
                if response.has_redirect_location:
                    uri = urljoin(uri, response.headers.get("location", ""))
                    continue
                if response.status_code == 404:
                    raise NotFound(f"{uri} answered 404", param="uri")
                if response.status_code != 200:
                    raise InvalidArgument(f"{uri} answered HTTP {response.status_code}", param="uri")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > config.max_bytes:
                    raise PayloadTooLarge(config.max_bytes, int(declared), param="uri")
                capped = _Capped(sink, config.max_bytes)
                async for chunk in response.aiter_raw(CHUNK):
                    await capped.write(chunk)
                return
            finally:
                await response.aclose()
        raise UriRefused(f"more than {config.max_redirects} redirects", param="uri")


def _bucket_and_key(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    key = parts.path.lstrip("/")
    if not parts.netloc or not key:
        raise InvalidArgument(f"{uri} must look like {parts.scheme}://bucket/object", param="uri")
    return parts.netloc, key


async def _s3(uri: str, config: FetchConfig, sink: IO[bytes]) -> None:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _bucket_and_key(uri)
    capped = _Capped(sink, config.max_bytes)
    session = get_session()
    try:
        timeouts = AioConfig(connect_timeout=config.timeout, read_timeout=config.timeout, retries={"max_attempts": 2})
        async with session.create_client("s3", endpoint_url=config.s3_endpoint, config=timeouts) as client:
            response = await client.get_object(Bucket=bucket, Key=key)
            if response.get("ContentLength", 0) > config.max_bytes:
                raise PayloadTooLarge(config.max_bytes, response["ContentLength"], param="uri")
            async with response["Body"] as body:
                while chunk := await body.read(CHUNK):
                    await capped.write(chunk)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise NotFound(f"{uri} does not exist", param="uri") from None
        raise InvalidArgument(f"could not read {uri}: {code or exc}", param="uri") from None
    except BotoCoreError as exc:
        raise InvalidArgument(f"could not read {uri}: {exc}", param="uri") from None


async def _gs(uri: str, config: FetchConfig, sink: IO[bytes]) -> None:
    import aiohttp
    from gcloud.aio.storage import Storage

    bucket, key = _bucket_and_key(uri)
    capped = _Capped(sink, config.max_bytes)
    async with aiohttp.ClientSession() as session:
        storage = Storage(session=session, api_root=config.gcs_endpoint)  # type: ignore[arg-type]
        try:
            meta = await storage.download_metadata(bucket, key, timeout=int(config.timeout))
            if int(meta.get("size", 0)) > config.max_bytes:
                raise PayloadTooLarge(config.max_bytes, int(meta["size"]), param="uri")
            stream = await storage.download_stream(bucket, key, timeout=int(config.timeout))
            while chunk := await stream.read(CHUNK):
                await capped.write(chunk)
        except aiohttp.ClientResponseError as exc:
            if exc.status == 404:
                raise NotFound(f"{uri} does not exist", param="uri") from None
            raise InvalidArgument(f"could not read {uri}: HTTP {exc.status}", param="uri") from None
        except aiohttp.ClientError as exc:
            raise InvalidArgument(f"could not read {uri}: {type(exc).__name__}", param="uri") from None

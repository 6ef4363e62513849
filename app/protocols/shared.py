"""Pieces the JSON job APIs (Google, Prosa) share: bounded JSON bodies, base64 audio, job audio."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request

from app.core.errors import Internal, InvalidArgument
from app.core.fetch import FetchConfig, fetched
from app.core.jobs import AudioLoader, JobRecord, JobStore
from app.core.types import AudioInput
from app.web import limit_body


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, refused past `limit` bytes while reading; parsed off the loop."""
    raw = await limit_body(request, limit).body()
    try:
        body = await asyncio.to_thread(json.loads, raw or b"null")
    except ValueError:
        raise InvalidArgument("Invalid JSON payload received.") from None
    if not isinstance(body, dict):
        raise InvalidArgument("Invalid JSON payload received. The body must be a JSON object.")
    return body


async def decode_base64(content: Any, param: str) -> bytes:
    """Standard or URL-safe alphabet, padding optional (what proto3 JSON parsers accept)."""
    if not isinstance(content, str):
        raise InvalidArgument(f"Invalid value at '{param}': expected base64 text.", param=param)

    def decode() -> bytes:
        text = content.strip().replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)

    try:
        return await asyncio.to_thread(decode)
    except (binascii.Error, ValueError):
        raise InvalidArgument(
            f"Invalid value at '{param}' (TYPE_BYTES), Base64 decoding failed.", param=param
        ) from None


Check = Callable[[JobRecord, AudioInput], Awaitable[AudioInput]]


def job_audio_loader(fetch: FetchConfig, check: Check | None = None) -> AudioLoader:
    """A job's audio for the runner: the stored bytes, or its URI fetched now (then `check`ed)."""

    @contextlib.asynccontextmanager
    async def load(record: JobRecord, store: JobStore) -> AsyncIterator[AudioInput]:
        uri = record.meta.get("uri")
        if uri:
            async with fetched(uri, fetch) as audio:
                yield await check(record, audio) if check else audio
            return
        data = await store.audio(record.id)
        if data is None:
            raise Internal("the job's audio is missing from the job store")
        yield AudioInput(data=data)

    return load

"""Pieces the JSON job APIs (Google, Prosa) share: bounded JSON bodies, base64 audio, job audio."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.core.errors import Internal, InvalidArgument
from app.core.fetch import FetchConfig, fetched
from app.core.jobs import JobRecord, JobStore
from app.core.runner import AudioLoader
from app.core.types import AudioInput
from app.web import limit_body

MAX_JSON_DEPTH = 32
"""Deeper JSON is refused: no request of any protocol here nests past 6, and deep nesting only
costs recursion (Python's own parser gives up near 1000 levels)."""


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, refused past `limit` bytes while reading; parsed off the loop."""
    raw = await limit_body(request, limit).body()
    body = await asyncio.to_thread(_parse, raw or b"null")
    if not isinstance(body, dict):
        raise InvalidArgument("Invalid JSON payload received. The body must be a JSON object.")
    return body


def _parse(raw: bytes) -> Any:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidArgument("Invalid JSON payload received.") from None
    level: list[tuple[Any, int]] = [(body, 1)]
    while level:  # iterative, so the check itself cannot recurse
        value, depth = level.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidArgument(f"Invalid JSON payload received: nested deeper than {MAX_JSON_DEPTH} levels.")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        level.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
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


Wire = TypeVar("Wire", bound=BaseModel)


def parse_wire(
    model: type[Wire], body: Any, *, root: str = "", message: Callable[[str, str], str] = "{}: {}".format
) -> Wire:
    """`body` as the protocol's pydantic model, or InvalidArgument naming the first bad field
    (`root.a.b[2]`) in the protocol's words (`message(where, why)`)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        where = where.lstrip(".")
        raise InvalidArgument(message(where, first["msg"]), param=where or None) from None


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
        yield await check(record, AudioInput(data=data)) if check else AudioInput(data=data)

    return load

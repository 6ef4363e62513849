"""A live session fed from an async iterator of audio chunks (a gRPC request stream) while its
events are read: the reader and the listener race both ways, the reader's error ends the stream,
and the reader is cancelled and awaited whatever ends it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from app.core.errors import OutOfRange
from app.core.live import LiveSession
from app.core.live_events import Event


@dataclass(frozen=True)
class FeedLimits:
    idle_seconds: float
    """No chunk for this long: OutOfRange(idle_message)."""
    max_seconds: float
    """More audio than this: OutOfRange(long_message)."""
    idle_message: str
    long_message: str


async def feed(
    live: LiveSession, chunks: AsyncIterator[bytes], limits: FeedLimits, dropping: asyncio.Event | None = None
) -> None:
    """Every chunk into `live`, then `finish()`; once `dropping` is set the rest is read and dropped
    (and no finish: the adapter has ended the utterance itself)."""
    incoming = aiter(chunks)
    while True:
        try:
            chunk = await asyncio.wait_for(anext(incoming), limits.idle_seconds)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise OutOfRange(limits.idle_message) from None
        if dropping is not None and dropping.is_set():
            continue
        await live.feed(chunk)
        if live.seconds_received > limits.max_seconds:
            raise OutOfRange(limits.long_message)
    if dropping is None or not dropping.is_set():
        await live.finish()


async def events(live: LiveSession, reading: Coroutine[Any, Any, None]) -> AsyncGenerator[Event, None]:
    """`live`'s events while `reading` runs (until the caller stops or the reader fails)."""
    reader: asyncio.Task[None] | None = asyncio.ensure_future(reading)
    try:
        while True:
            getter = asyncio.ensure_future(live.events.get())
            waiting: set[asyncio.Future[Any]] = {getter} if reader is None else {getter, reader}
            try:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                got = getter.done()
                if not got:
                    getter.cancel()  # an item it was woken for stays in the queue
            if reader is not None and reader.done():
                reader.result()  # its error ends the stream
                reader = None
            if got:
                yield getter.result()
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

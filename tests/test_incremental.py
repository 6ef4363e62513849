"""The incremental decoder's bounds: a bounded backlog of windows, a latched cancel, and a bounded
wait for room in the live lane."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from app.core.errors import Cancelled, Overloaded
from app.core.incremental import IncrementalTranscriber, StreamConfig
from app.core.types import AudioInput, Lane, Transcript, TranscriptionRequest

TEMPLATE = TranscriptionRequest(audio=AudioInput(data=b""), model="fake")


class HeldService:
    """Windows finish only when released; records the lane each was sent on."""

    def __init__(self, overloaded: bool = False) -> None:
        self.release = asyncio.Event()
        self.lanes: list[Lane] = []
        self.overloaded = overloaded

    async def transcribe(self, request: TranscriptionRequest, lane: Lane = Lane.INTERACTIVE, **_: Any) -> Transcript:
        self.lanes.append(lane)
        if self.overloaded:
            raise Overloaded("full", retry_after=1)
        await self.release.wait()
        return Transcript(segments=(), language="en", language_probability=1.0, duration=1.0)


def speech_with_pauses(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    pcm[(t % 5) > 4.5] = 0.0
    return pcm


async def test_the_reader_waits_while_the_backlog_is_full() -> None:
    service = HeldService()
    config = StreamConfig(min_seconds=4, max_backlog=2, live_burst_seconds=60)
    transcriber = IncrementalTranscriber(service, TEMPLATE, config)  # type: ignore[arg-type]
    pcm = speech_with_pauses(40)
    for start in range(0, len(pcm), 16000):  # as it arrives, one second at a time
        transcriber.feed(pcm[start : start + 16000])
    assert transcriber.windows_started >= 2
    waiting = asyncio.ensure_future(transcriber.room())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the client's body is not read meanwhile
    service.release.set()
    await asyncio.wait_for(waiting, 5)
    assert set(service.lanes) == {Lane.LIVE}
    await transcriber.finish()


async def test_cancel_latches() -> None:
    transcriber = IncrementalTranscriber(HeldService(), TEMPLATE, StreamConfig())  # type: ignore[arg-type]
    transcriber.cancel()
    with pytest.raises(Cancelled):
        transcriber.feed(speech_with_pauses(10))


async def test_a_window_waits_for_the_live_lane_for_a_bounded_time() -> None:
    service = HeldService(overloaded=True)
    config = StreamConfig(min_seconds=4, overload_wait_seconds=0.3)
    transcriber = IncrementalTranscriber(service, TEMPLATE, config)  # type: ignore[arg-type]
    transcriber.feed(speech_with_pauses(10))
    with pytest.raises(Overloaded):
        await asyncio.wait_for(transcriber.finish(), 10)
    assert len(service.lanes) > 1  # it was tried again before giving up


async def test_a_stream_faster_than_real_time_leaves_the_live_lane() -> None:
    """Live is for audio spoken now: a file sent as fast as the network allows is not live."""
    now = [0.0]
    paced, rushed = HeldService(), HeldService()
    pace = IncrementalTranscriber(paced, TEMPLATE, StreamConfig(min_seconds=4), clock=lambda: now[0])  # type: ignore[arg-type]
    rush = IncrementalTranscriber(rushed, TEMPLATE, StreamConfig(min_seconds=4), clock=lambda: now[0])  # type: ignore[arg-type]
    pcm = speech_with_pauses(60)
    for start in range(0, len(pcm), 16000):
        rush.feed(pcm[start : start + 16000])  # all 60 s at once
    for start in range(0, len(pcm), 16000):
        now[0] += 1.0  # a second of audio a second
        pace.feed(pcm[start : start + 16000])
    await asyncio.sleep(0.01)  # the windows' tasks reach the service
    assert set(paced.lanes) == {Lane.LIVE}
    assert rushed.lanes[0] is Lane.LIVE and rushed.lanes[-1] is Lane.INTERACTIVE  # once 10 s ahead
    for service, transcriber in ((paced, pace), (rushed, rush)):
        service.release.set()
        await transcriber.finish()

"""The decoder pool with real worker processes and the fake engine: admission, cancel, crashes."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.core.audio import DecodeLimits
from app.core.engine import PipelineConfig
from app.core.errors import Internal, Overloaded, Unavailable
from app.core.pool import DecoderPool, PoolConfig
from app.core.pool_config import LaneConfig
from app.core.types import AudioInput, Lane, Segment, Transcript, TranscriptionRequest
from tests.audio_tools import wav_bytes
from tests.fakes import CRASH_PROMPT, FakeEngineFactory


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.assignments: list[tuple[Lane, str, int, bool]] = []

    def cancelled(self, stage: str) -> None:
        self.events.append(("cancelled", stage))

    def worker_exited(self, reason: str) -> None:
        self.events.append(("exited", reason))

    def finished(self, transcript: Transcript, waited: float) -> None:
        self.events.append(("finished", transcript.model))

    def assigned(self, lane: Lane, kind: str, windows: int, wide: bool) -> None:
        self.assignments.append((lane, kind, windows, wide))


def request(seconds: float, prompt: str | None = None) -> TranscriptionRequest:
    audio = wav_bytes(np.zeros(int(seconds * 16000), np.float32))
    return TranscriptionRequest(audio=AudioInput(data=audio), model="fake", prompt=prompt)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def make_pool(
    tmp_path: Path,
    recorder: Recorder,
    *,
    workers: int = 1,
    queue: int = 2,
    delay: float = 0.2,
    max_jobs: int = 0,
    **options: Any,
) -> DecoderPool:
    limits = DecodeLimits(max_seconds=3600, max_decoded_bytes=2**31, max_channels=8, max_sample_rate=192000)
    config = PoolConfig(
        workers=workers,
        queue_size=queue,
        retry_after=3,
        job_retries=1,
        worker_max_jobs=max_jobs,
        pipeline=PipelineConfig(limits=limits, tmp_dir=tmp_path, block_seconds=300),
        **options,
    )
    pool = DecoderPool(FakeEngineFactory(seconds_per_segment=delay), config, observer=recorder)
    await pool.start()
    return pool


@pytest.fixture
async def pool(tmp_path: Path, recorder: Recorder) -> AsyncIterator[DecoderPool]:
    p = await make_pool(tmp_path, recorder)
    yield p
    await p.stop()


async def test_transcribes_through_a_worker(pool: DecoderPool, recorder: Recorder) -> None:
    transcript = await pool.transcribe(request(12))
    assert [s.text for s in transcript.segments] == ["Segment 0, fake.", "Segment 1, fake.", "Segment 2, fake."]
    assert transcript.duration == pytest.approx(12)
    assert ("finished", "fake") in recorder.events
    assert pool.in_flight == 0 and pool.queue_depth == 0


async def test_an_ended_request_is_not_kept_alive_by_its_deadline(tmp_path: Path, recorder: Recorder) -> None:
    """The soak's leak: each job's deadline timer held it, audio included, for the lane's deadline
    (30 min) after it ended. Done, failed and cancelled jobs must all be collectable at once."""
    lanes = {lane: LaneConfig(queue_size=2, deadline=1800) for lane in Lane}
    pool = await make_pool(tmp_path, recorder, delay=0.05, lanes=lanes)
    try:
        done = pool.submit(request(5))
        await done.future
        crashed = pool.submit(request(5, prompt=CRASH_PROMPT))
        with pytest.raises(Internal):
            await crashed.future
        cancelled = asyncio.ensure_future(pool.transcribe(request(60)))
        await asyncio.sleep(0.2)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await pool.transcribe(request(5))  # the cancelled one's running window was aborted by now
        refs = [weakref.ref(done), weakref.ref(crashed)]
        del done, crashed, cancelled
        gc.collect()
        assert [r() for r in refs] == [None, None]
        from app.core.scheduler import Job

        assert [o for o in gc.get_objects() if isinstance(o, Job)] == []
    finally:
        await pool.stop()


async def test_full_queue_fails_fast_with_retry_after(pool: DecoderPool) -> None:
    running = pool.submit(request(20))
    queued = [pool.submit(request(5)), pool.submit(request(5))]
    await asyncio.sleep(0.05)
    with pytest.raises(Overloaded) as caught:
        pool.submit(request(5))
    assert caught.value.retry_after == 3
    assert pool.queue_depth == 2
    await asyncio.gather(running.future, *(j.future for j in queued))


async def test_cancelled_queued_request_is_skipped(pool: DecoderPool, recorder: Recorder) -> None:
    running = pool.submit(request(10))
    waiting = asyncio.ensure_future(pool.transcribe(request(10)))
    await asyncio.sleep(0.05)
    assert pool.queue_depth == 1
    waiting.cancel()
    await asyncio.sleep(0.05)
    assert pool.queue_depth == 0
    assert ("cancelled", "queued") in recorder.events
    await running.future
    assert [e for e in recorder.events if e[0] == "finished"] == [("finished", "fake")]


async def test_cancelled_decode_is_aborted_between_segments(pool: DecoderPool, recorder: Recorder) -> None:
    produced: list[Segment] = []
    first = asyncio.Event()

    def on_segment(segment: Segment, done: float, total: float) -> None:
        produced.append(segment)
        first.set()

    task = asyncio.ensure_future(pool.transcribe(request(300), on_segment))  # 60 segments, 12 s
    await first.wait()
    task.cancel()
    # The worker is free again long before the 60 segments would have finished.
    after = await pool.transcribe(request(5))
    assert after.segments
    assert ("cancelled", "decoding") in recorder.events
    assert len(produced) < 60
    assert ("finished", "fake") in recorder.events and len([e for e in recorder.events if e[0] == "finished"]) == 1


async def test_sigkilled_worker_is_replaced_and_its_window_retried(pool: DecoderPool, recorder: Recorder) -> None:
    started = asyncio.Event()
    job = pool.submit(request(70), lambda *_: started.set())  # three windows
    await started.wait()  # the first window is done, the second decoding
    os.kill(pool.worker_pids[0], signal.SIGKILL)
    transcript = await job.future
    assert transcript.segments[-1].end == pytest.approx(70)
    assert ("exited", "crashed") in recorder.events
    assert sum(job.attempts.values()) == 1  # one window ran twice
    await pool.transcribe(request(5))
    assert pool.ready


async def test_poison_job_fails_clearly_after_one_retry(pool: DecoderPool, recorder: Recorder) -> None:
    with pytest.raises(Internal, match="crashed"):
        await pool.transcribe(request(5, prompt=CRASH_PROMPT))
    assert recorder.events.count(("exited", "crashed")) == 2
    healthy = await pool.transcribe(request(5))
    assert healthy.segments and pool.ready


async def test_worker_is_recycled_after_max_jobs(tmp_path: Path, recorder: Recorder) -> None:
    pool = await make_pool(tmp_path, recorder, max_jobs=2, delay=0)
    try:
        for _ in range(3):
            assert (await pool.transcribe(request(5))).segments
        assert ("exited", "recycled") in recorder.events
    finally:
        await pool.stop()


@pytest.mark.parametrize("when", ["loading", "idle"])
async def test_a_worker_killed_outside_a_job_counts_as_crashed_not_recycled(
    tmp_path: Path, recorder: Recorder, when: str
) -> None:
    limits = DecodeLimits(max_seconds=3600, max_decoded_bytes=2**31, max_channels=8, max_sample_rate=192000)
    config = PoolConfig(
        workers=1, queue_size=2, retry_after=3, job_retries=1, worker_max_jobs=0,
        pipeline=PipelineConfig(limits=limits, tmp_dir=tmp_path, block_seconds=300),
    )  # fmt: skip
    pool = DecoderPool(FakeEngineFactory(load_seconds=3 if when == "loading" else 0), config, observer=recorder)
    await pool.start()
    try:
        (worker,) = pool._workers.values()
        while when == "idle" and not pool.ready:
            await asyncio.sleep(0.05)
        while worker.process.pid is None:
            await asyncio.sleep(0.05)
        os.kill(worker.process.pid, signal.SIGKILL)
        while not recorder.events:
            await asyncio.sleep(0.05)
        assert recorder.events == [("exited", "crashed")]
        assert (await pool.transcribe(request(5))).segments  # a replacement took over
    finally:
        await pool.stop()


async def test_two_workers_decode_in_parallel(tmp_path: Path, recorder: Recorder) -> None:
    pool = await make_pool(tmp_path, recorder, workers=2, delay=0.3)
    try:
        jobs = [pool.submit(request(10)) for _ in range(2)]
        await asyncio.sleep(0.1)
        assert pool.in_flight == 2 and pool.queue_depth == 0
        await asyncio.gather(*(j.future for j in jobs))
    finally:
        await pool.stop()


async def test_stop_fails_waiting_requests(tmp_path: Path, recorder: Recorder) -> None:
    pool = await make_pool(tmp_path, recorder, queue=2)
    running = pool.submit(request(10))
    queued = pool.submit(request(10))
    await pool.stop()
    assert queued.future.done() and queued.future.exception() is not None
    assert running.future.done() and isinstance(running.future.exception(), Unavailable)
    assert not pool.ready

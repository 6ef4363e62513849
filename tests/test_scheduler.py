"""The window scheduler through real worker processes and the fake engine: lanes, round-robin,
one request on every worker, deadlines, hung and killed workers, stop. Ordering and state only:
never a wall-clock threshold."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import DeadlineExceeded, Overloaded, Unavailable
from app.core.pipeline import run_request
from app.core.pool import LaneConfig
from app.core.types import AudioInput, Lane, Segment, TranscriptionRequest
from tests.audio_tools import wav_bytes
from tests.fakes import HANG_PROMPT, FakeEngineFactory
from tests.test_pool import Recorder, make_pool, request


def tone(seconds: float) -> bytes:
    """Audio with a pause (quiet) every 10 s, so windows are cut at known places."""
    t = np.arange(int(seconds * 16000)) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    pcm[(t % 10) > 9.5] = 0.0
    return wav_bytes(pcm)


def tone_request(seconds: float, **options: object) -> TranscriptionRequest:
    return TranscriptionRequest(audio=AudioInput(data=tone(seconds)), model="fake", **options)  # type: ignore[arg-type]


async def test_short_request_overtakes_two_long_ones(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=2, delay=0.1)
    try:
        long = [pool.submit(request(300)), pool.submit(request(300))]
        await asyncio.sleep(0.3)
        short = await pool.transcribe(request(5))
        assert short.segments
        assert not any(job.future.done() for job in long)  # each has about 10 windows of work left
        await asyncio.gather(*(job.future for job in long))
    finally:
        await pool.stop()


async def test_background_backlog_delays_interactive_work_by_one_window_at_most(tmp_path: Path) -> None:
    recorder = Recorder()
    lanes = {Lane.BACKGROUND: LaneConfig(8, 0), Lane.INTERACTIVE: LaneConfig(4, 0)}
    pool = await make_pool(tmp_path, recorder, workers=2, delay=0.1, lanes=lanes)
    try:
        jobs = [pool.submit(request(120), lane=Lane.BACKGROUND) for _ in range(6)]
        await asyncio.sleep(0.5)
        before = len(recorder.assignments)
        interactive = pool.submit(request(5), lane=Lane.INTERACTIVE)
        await interactive.future
        after = recorder.assignments[before:]
        # The first piece of work handed out once the interactive request came is its own.
        assert after[0][0] is Lane.INTERACTIVE
        assert not any(job.future.done() for job in jobs)
        for job in jobs:
            pool.cancel(job)
    finally:
        await pool.stop()


async def test_round_robin_within_a_lane(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0.05, queue=4)
    try:
        order: list[str] = []
        first = pool.submit(request(150), lambda *_: order.append("first"))
        second = pool.submit(request(150), lambda *_: order.append("second"))
        await asyncio.gather(first.future, second.future)
        # Windows alternate: neither request runs all its windows before the other starts.
        changes = sum(1 for a, b in itertools.pairwise(order) if a != b)
        assert changes >= 4
    finally:
        await pool.stop()


async def test_one_request_uses_every_idle_worker_and_merges_exactly(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=2, delay=0.1)
    try:
        busy: list[int] = []
        job = pool.submit(tone_request(100, word_timestamps=True))
        while not job.future.done():
            busy.append(pool.in_flight)
            await asyncio.sleep(0.02)
        transcript = job.future.result()
        assert max(busy) == 2  # two windows of the one request decoded at once
        assert len(job.plan.windows) >= 4 if job.plan else False
        alone = run_request(FakeEngineFactory()(), tone_request(100, word_timestamps=True), pool.config.pipeline)
        assert [(s.start, s.end, s.text, s.words) for s in transcript.segments] == [
            (s.start, s.end, s.text, s.words) for s in alone.segments
        ]
        starts = [s.start for s in transcript.segments]
        assert starts == sorted(starts) and transcript.duration == pytest.approx(100)
    finally:
        await pool.stop()


async def test_segments_reach_the_caller_window_by_window_in_order(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=2, delay=0.05)
    try:
        seen: list[tuple[float, bool]] = []

        def on_segment(segment: Segment, done: float, total: float) -> None:
            seen.append((segment.start, pool_job.future.done()))

        pool_job = pool.submit(tone_request(100), on_segment)
        transcript = await pool_job.future
        assert [start for start, _ in seen] == [s.start for s in transcript.segments]
        assert not seen[0][1]  # the first segments arrived long before the end
    finally:
        await pool.stop()


async def test_cancel_drops_waiting_windows_and_aborts_the_running_one(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0.2)
    try:
        first = asyncio.Event()
        task = asyncio.ensure_future(pool.transcribe(request(600), lambda *_: first.set()))
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool.queue_depth == 0 and not pool._jobs
        assert (await pool.transcribe(request(5))).segments  # after the aborted window came back:
        assert not list(tmp_path.glob("pcm-*"))  # its spooled audio is gone (kept while a worker read it)
        assert ("cancelled", "decoding") in recorder.events
        windows = sum(n for lane, kind, n, _ in recorder.assignments if kind == "decode")
        assert windows <= 3  # of about 24
    finally:
        await pool.stop()


async def test_lane_deadline_fails_the_request(tmp_path: Path) -> None:
    recorder = Recorder()
    lanes = {Lane.INTERACTIVE: LaneConfig(2, 0.5)}
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0.2, lanes=lanes)
    try:
        with pytest.raises(DeadlineExceeded):
            await pool.transcribe(request(300))
        assert (await pool.transcribe(request(0.5))).duration == pytest.approx(0.5)
    finally:
        await pool.stop()


async def test_hung_worker_is_killed_replaced_and_readiness_drops(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0, window_deadline=1.0, plan_deadline=1.0)
    try:
        readiness: list[bool] = []
        job = pool.submit(request(5, prompt=HANG_PROMPT))
        while not job.future.done():
            readiness.append(pool.ready)
            await asyncio.sleep(0.01)
        assert isinstance(job.future.exception(), DeadlineExceeded)
        assert recorder.events.count(("exited", "hung")) == 2  # tried once more, then given up
        assert False in readiness  # not ready while its only worker was hung or reloading
        assert (await pool.transcribe(request(5))).segments
        assert pool.ready
    finally:
        await pool.stop()


async def test_worker_killed_mid_window_is_retried_on_another(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=2, delay=0.2)
    try:
        started = asyncio.Event()
        job = pool.submit(tone_request(100), lambda *_: started.set())
        await started.wait()
        os.kill(pool.worker_pids[0], signal.SIGKILL)
        transcript = await job.future
        assert transcript.segments[-1].end == pytest.approx(100, abs=0.5)
        assert ("exited", "crashed") in recorder.events
    finally:
        await pool.stop()


async def test_stop_resolves_every_future(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=2, delay=0.3, queue=4)
    jobs = [pool.submit(request(120)) for _ in range(4)]
    await asyncio.sleep(0.5)
    await pool.stop(timeout=0.5)
    assert all(job.future.done() for job in jobs)
    assert all(isinstance(job.future.exception(), Unavailable) for job in jobs)


async def test_each_lane_has_its_own_bound(tmp_path: Path) -> None:
    recorder = Recorder()
    lanes = {Lane.BACKGROUND: LaneConfig(0, 0), Lane.INTERACTIVE: LaneConfig(1, 0)}
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0.1, lanes=lanes)
    try:
        background = pool.submit(request(20), lane=Lane.BACKGROUND)
        with pytest.raises(Overloaded):
            pool.submit(request(5), lane=Lane.BACKGROUND)
        interactive = [pool.submit(request(5)), pool.submit(request(5))]
        with pytest.raises(Overloaded):
            pool.submit(request(5))
        await asyncio.gather(background.future, *(j.future for j in interactive))
    finally:
        await pool.stop()


async def test_a_lone_window_borrows_the_idle_workers(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=2, delay=0.2, wide=True, queue=4)
    try:
        await pool.transcribe(request(5))
        assert recorder.assignments[-1][3] is True  # alone: planned and decoded on every core
        long = pool.submit(request(120))
        await asyncio.sleep(0.3)  # its windows keep both workers busy
        recorder.assignments.clear()
        await pool.transcribe(request(5))
        await long.future
        assert not any(wide for *_, wide in recorder.assignments)
    finally:
        await pool.stop()


async def test_compatible_windows_are_batched(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0.1, batch_size=4, queue=8)
    try:
        transcript = await pool.transcribe(tone_request(100))
        batches = [n for _, kind, n, _ in recorder.assignments if kind == "decode"]
        assert max(batches) > 1 and transcript.duration == pytest.approx(100)
        assert transcript.segments[-1].end == pytest.approx(100, abs=0.5)
    finally:
        await pool.stop()


async def test_a_new_request_goes_before_the_next_window_of_one_under_way(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0.1, queue=4)
    try:
        produced: list[Segment] = []
        long = pool.submit(request(300), lambda s, *_: produced.append(s))
        while not produced:
            await asyncio.sleep(0.01)
        before = len(produced)
        await pool.transcribe(request(5))
        assert len(produced) - before <= 6  # at most the one window (6 fake segments) already running
        await long.future
    finally:
        await pool.stop()


async def test_interactive_work_preempts_a_background_window_which_runs_again(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0.3, queue=4)
    try:
        produced: list[Segment] = []
        background = pool.submit(request(90), lambda s, *_: produced.append(s), lane=Lane.BACKGROUND)
        while not produced:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.4)  # the second window is decoding
        before = len(produced)
        await pool.transcribe(request(5))
        assert len(produced) == before  # the background window gave its worker up at once
        assert ("cancelled", "preempted") in recorder.events
        transcript = await background.future
        alone = run_request(FakeEngineFactory()(), request(90), pool.config.pipeline)
        assert [(s.start, s.end, s.text) for s in transcript.segments] == [
            (s.start, s.end, s.text) for s in alone.segments
        ]
    finally:
        await pool.stop()


async def test_a_reserve_worker_takes_interactive_work_while_background_holds_the_others(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0.3, queue=4, reserve=1)
    try:
        produced: list[Segment] = []
        background = pool.submit(request(90), lambda s, *_: produced.append(s), lane=Lane.BACKGROUND)
        second = pool.submit(request(90), lane=Lane.BACKGROUND)
        while not produced:
            await asyncio.sleep(0.01)
        assert pool.in_flight == 1  # background work never goes to the reserve
        await pool.transcribe(request(5))
        assert ("cancelled", "preempted") not in recorder.events  # the background window kept its worker
        assert [lane for lane, *_ in recorder.assignments].count(Lane.INTERACTIVE) == 1
        for job in (background, second):
            pool.cancel(job)
    finally:
        await pool.stop()


async def test_a_new_request_takes_the_reserve_only_when_the_regular_workers_hold_long_ones(tmp_path: Path) -> None:
    recorder = Recorder()
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0.2, queue=4, reserve=1)

    async def peak_while(job: object) -> int:
        busy = []
        while not job.future.done():  # type: ignore[attr-defined]
            busy.append(pool.in_flight)
            await asyncio.sleep(0.02)
        return max(busy)

    try:
        produced: list[Segment] = []
        single = pool.submit(request(25), lambda s, *_: produced.append(s))  # one window
        await asyncio.sleep(0.3)
        assert await peak_while(pool.submit(request(5))) == 1  # same lane, a request as short: it waits
        await single.future
        produced.clear()
        long = pool.submit(request(150), lambda s, *_: produced.append(s))  # six windows or so
        while not produced:
            await asyncio.sleep(0.01)
        short = pool.submit(request(5))
        assert await peak_while(short) == 2  # it ran on the reserve beside the long request's window
        assert not long.future.done()
        await long.future
        assert {lane for lane, *_ in recorder.assignments} == {Lane.INTERACTIVE}
    finally:
        await pool.stop()


async def test_regular_workers_run_at_a_lower_os_priority_than_the_reserve(tmp_path: Path) -> None:
    pool = await make_pool(tmp_path, Recorder(), workers=2, reserve=1, nice=7)
    try:
        own = os.getpriority(os.PRIO_PROCESS, 0)
        priorities = sorted(os.getpriority(os.PRIO_PROCESS, pid) for pid in pool.worker_pids)
        assert priorities == [own, min(own + 7, 19), min(own + 7, 19)]
    finally:
        await pool.stop()


async def test_a_flood_in_a_higher_lane_slows_a_lower_one_but_never_stops_it(tmp_path: Path) -> None:
    recorder = Recorder()
    lanes = {Lane.LIVE: LaneConfig(16, 0), Lane.INTERACTIVE: LaneConfig(4, 0)}
    pool = await make_pool(tmp_path, recorder, workers=1, delay=0.2, lanes=lanes, starve_seconds=0.5)
    try:
        live = [pool.submit(request(25), lane=Lane.LIVE) for _ in range(8)]  # about 1 s of decoding each
        await asyncio.sleep(0.1)
        interactive = pool.submit(request(5))
        await interactive.future
        assert sum(job.future.done() for job in live) < len(live) - 2  # it did not wait for the flood
        await asyncio.gather(*(job.future for job in live))
    finally:
        await pool.stop()

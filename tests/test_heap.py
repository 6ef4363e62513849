"""The server hands memory its threads freed back to the system (app/core/heap.py)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import multiprocessing
import threading
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import numpy as np
import pytest

from app.core.audio import DecodeLimits
from app.core.engine import PipelineConfig
from app.core.heap import trim_heap, trim_periodically
from app.core.types import AudioInput, TranscriptionRequest
from app.core.worker import worker_main
from tests.audio_tools import wav_bytes
from tests.fakes import FakeEngineFactory

LIMITS = DecodeLimits(max_seconds=60, max_decoded_bytes=2**26, max_channels=2, max_sample_rate=48000)


class _MallInfo2(ctypes.Structure):
    _FIELDS = (
        "arena",
        "ordblks",
        "smblks",
        "hblks",
        "hblkhd",
        "usmblks",
        "fsmblks",
        "uordblks",
        "fordblks",
        "keepcost",
    )
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS]


def _a_window_buffer_is_mapped() -> bool:
    """After a 4 MB block is mapped and freed, is a 1 MB block (a window's features) mapped too?

    (A block that a free hole of the heap can hold is taken from there whatever the threshold: the
    threshold decides whether the heap grows or a block is mapped, so the block is larger than the
    holes an import leaves.)"""
    mallinfo2 = ctypes.CDLL(ctypes.util.find_library("c")).mallinfo2
    mallinfo2.restype = _MallInfo2
    big = bytearray(4 * 2**20)
    del big  # glibc's own threshold now rises past 4 MB
    before = mallinfo2().hblks
    buffer = bytearray(2**20)
    mapped = mallinfo2().hblks > before
    del buffer
    return mapped


class _ProbingFactory:
    """Reports from inside the worker, once its allocator is set up, whether it maps a window's buffer."""

    def __init__(self, seen: Synchronized) -> None:  # type: ignore[type-arg]
        self.seen = seen

    def __call__(self) -> object:
        self.seen.value = int(_a_window_buffer_is_mapped())
        return FakeEngineFactory()()


@pytest.mark.parametrize(("threshold", "mapped"), [(0, False), (131072, True)])
def test_a_worker_fixes_its_mmap_threshold_before_it_loads(tmp_path: Path, threshold: int, mapped: bool) -> None:
    context = multiprocessing.get_context("spawn")  # a fresh allocator, as a real worker has
    parent, child = context.Pipe()
    seen, abort = context.Value("i", -1), context.Value("q", 0)  # held: start() drops its arguments
    config = PipelineConfig(limits=LIMITS, tmp_dir=tmp_path, block_seconds=300)
    process = context.Process(
        target=worker_main,
        args=(child, abort, _ProbingFactory(seen), config, 0),
        kwargs={"mmap_threshold": threshold},
    )
    process.start()
    child.close()  # so a child that dies is an EOFError here, not a wait
    assert parent.recv() == ("ready",)
    parent.send(None)
    process.join(30)
    assert process.exitcode == 0 and seen.value == int(mapped)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_trimming_returns_what_a_thread_freed_but_glibc_kept() -> None:
    assert trim_heap is not None, "this project runs on glibc (Debian)"
    kept: list[bytearray] = []

    def churn() -> None:
        # 64 KB blocks (under glibc's mmap threshold) in this thread's arena; the last one stays,
        # so the arena's top cannot shrink and free() alone gives nothing back.
        blocks = [bytearray(64 * 1024) for _ in range(1600)]
        kept.append(blocks[-1])
        del blocks

    thread = threading.Thread(target=churn)
    thread.start()
    thread.join()
    before = _rss_mb()
    assert trim_heap()
    after = _rss_mb()
    assert before - after > 50, (before, after)  # 100 MB were freed


async def test_trims_on_its_interval_until_cancelled() -> None:
    calls: list[float] = []
    task = asyncio.create_task(trim_periodically(0.02, lambda: calls.append(0.0) is None))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    seen = len(calls)
    assert seen >= 3
    await asyncio.sleep(0.1)
    assert len(calls) == seen


async def test_without_malloc_trim_it_ends_at_once() -> None:
    await asyncio.wait_for(trim_periodically(0.01, None), 1)


@pytest.mark.parametrize(("every", "trims"), [(1e-6, 3), (3600.0, 0), (0.0, 0)])
def test_a_worker_trims_after_an_assignment_at_most_as_often_as_asked(tmp_path: Path, every: float, trims: int) -> None:
    context = multiprocessing.get_context("fork")  # the counting trim is not picklable
    parent, child = context.Pipe()
    counted = context.Value("i", 0)

    def trim() -> bool:
        with counted.get_lock():
            counted.value += 1
        return True

    config = PipelineConfig(limits=LIMITS, tmp_dir=tmp_path, block_seconds=300)
    process = context.Process(
        target=worker_main,
        args=(child, context.Value("q", 0), FakeEngineFactory(), config, 0),
        kwargs={"trim_every": every, "trim": trim},
    )
    process.start()
    assert parent.recv() == ("ready",)
    request = TranscriptionRequest(audio=AudioInput(data=wav_bytes(np.zeros(16000, np.float32))))
    for assignment in range(1, 4):  # the abort value 0 would cancel task 0
        parent.send(("plan", assignment, (assignment, request, True, str(tmp_path / f"{assignment}.pcm")), False))
        answer = parent.recv()
        assert answer[:2] == ("done", assignment) and len(answer[2][1]) == 1, answer
    parent.send(None)
    process.join(10)
    assert process.exitcode == 0 and counted.value == trims

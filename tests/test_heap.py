"""The server hands memory its threads freed back to the system (app/core/heap.py)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from app.core.heap import trim_heap, trim_periodically


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

"""The decoder worker process: loads the models once, then runs one assignment at a time.

From the parent: ("plan", id, (task, request, inline, spool path), wide), ("decode", id, [WindowWork], wide), or
None to stop. To the parent: ("ready",), ("load_error", text), ("done", id, value) and
("error", id, kind, message, param). A plan answers (Plan, [WindowResult]): with `inline` and a
single window, that window is decoded at once (one round trip for short audio). A cancelled task is
signalled through the shared `abort` value (the task id, or PREEMPT: give the worker up for
higher-lane work), checked between segments.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from app.core.engine import Engine, EngineFactory, PipelineConfig
from app.core.errors import SttError, to_wire
from app.core.heap import fix_mmap_threshold, trim_heap
from app.core.pipeline import WindowResult, WindowWork, decode_windows, make_plan, window_work

log = logging.getLogger("asr.worker")
PREEMPT = -1


def worker_main(
    conn: Connection,
    abort: Synchronized,  # type: ignore[type-arg]
    factory: EngineFactory,
    config: PipelineConfig,
    max_jobs: int,
    *,
    nice: int = 0,
    trim_every: float = 0.0,
    trim: Callable[[], bool] | None = trim_heap,
    mmap_threshold: int = 0,
) -> None:
    # The parent owns shutdown: Ctrl-C and SIGTERM reach it, and it stops workers in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if nice:
        os.nice(nice)
    if mmap_threshold and not fix_mmap_threshold(mmap_threshold):
        log.info("worker %d: this C library has no mallopt; the mmap threshold is left as it is", os.getpid())
    try:
        engine = factory()
    except Exception as exc:
        log.exception("worker %d could not load its engine", os.getpid())
        conn.send(("load_error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready",))

    def should_abort(task: int) -> bool:
        return abort.value in (task, PREEMPT)

    served, trimmed = 0, time.monotonic()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        kind, assignment, payload, wide = message
        try:
            conn.send(("done", assignment, _run(engine, config, kind, payload, wide, should_abort)))
        except SttError as exc:
            conn.send(("error", assignment, *to_wire(exc)))
        except Exception as exc:
            log.exception("assignment %d failed in worker %d", assignment, os.getpid())
            conn.send(("error", assignment, "internal", f"decoder failure: {type(exc).__name__}: {exc}", None))
        served += 1
        if max_jobs and served >= max_jobs:
            return
        if trim is not None and trim_every and time.monotonic() - trimmed >= trim_every:
            # After the answer is sent: the decode's freed buffers (audio, encoder output) go back
            # to the system between assignments, not only when ASR_WORKER_MAX_JOBS recycles us.
            trim()
            trimmed = time.monotonic()


def _run(engine: Engine, config: PipelineConfig, kind: str, payload: Any, wide: bool, should_abort: Any) -> Any:
    if kind == "decode":
        works: list[WindowWork] = payload
        return decode_windows(engine, works, should_abort, wide=wide)
    task, request, inline, spool = payload
    plan = make_plan(engine, request, config, Path(spool), lambda: should_abort(task))
    results: list[WindowResult] = []
    if inline and len(plan.windows) == 1:
        results = decode_windows(engine, [window_work(task, plan, request, plan.windows[0])], should_abort, wide=wide)
    return plan, results

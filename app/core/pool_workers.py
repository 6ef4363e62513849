"""The decoder pool's worker processes: started, written to, read from and stopped. Blocking pipe
and process calls only, for a thread (never the event loop): app/core/pool.py owns what they mean.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from multiprocessing.context import SpawnContext
from typing import Any

from app.core.engine import EngineFactory
from app.core.pool_config import PoolConfig, Worker
from app.core.worker import worker_main


def start_worker(ctx: SpawnContext, slot: int, factory: EngineFactory, config: PoolConfig) -> Worker:
    """A worker process for `slot` (past `config.workers`: a reserve one, at normal priority)."""
    parent, child = ctx.Pipe()
    abort = ctx.Value("q", 0)
    reserve = slot >= config.workers
    process = ctx.Process(
        target=worker_main,
        args=(child, abort, factory, config.pipeline, config.worker_max_jobs),
        kwargs={
            "nice": 0 if reserve else config.nice,
            "trim_every": config.heap_trim_seconds,
            "mmap_threshold": config.worker_mmap_threshold_bytes,
        },
        name=f"asr-{'reserve' if reserve else 'worker'}-{slot}",
        daemon=True,
    )
    process.start()
    child.close()  # so the parent sees EOF when the worker dies
    return Worker(slot, process, parent, abort, reserve=reserve)


def follow(
    worker: Worker,
    loop: asyncio.AbstractEventLoop,
    on_message: Callable[[Worker, Any], None],
    on_exit: Callable[[Worker], None],
) -> None:
    """A reader thread: each message of the worker's pipe, then its exit, as a loop callback."""

    def read() -> None:
        try:
            while True:
                message = worker.conn.recv()
                loop.call_soon_threadsafe(on_message, worker, message)
        except (EOFError, OSError):
            pass
        worker.process.join()
        try:
            loop.call_soon_threadsafe(on_exit, worker)
        except RuntimeError:  # loop already closed at interpreter shutdown
            pass

    threading.Thread(target=read, name=f"asr-reader-{worker.slot}", daemon=True).start()


def send(worker: Worker, message: Any) -> None:
    with worker.lock:
        worker.conn.send(message)


def join(worker: Worker, timeout: float) -> None:
    """Wait for the worker to exit; kill it past `timeout`."""
    worker.process.join(timeout)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(5)

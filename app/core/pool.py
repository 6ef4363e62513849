"""The decoder pool: worker processes behind a bounded admission queue.

One owner (the event loop) holds the queue and the worker table; a reader thread per worker turns
its pipe into loop callbacks, so nothing here blocks the loop. A request whose awaiting task is
cancelled (client gone) is dropped if still queued and aborted between segments if decoding.
A worker that dies is replaced and its job tried again up to `job_retries` times.

Jobs are dispatched one per idle worker today; the dispatcher is the single place where several
queued requests for the same model could be handed to one worker as a batch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from typing import Any, Protocol

from app.core.engine import EngineFactory, PipelineConfig
from app.core.errors import Internal, Overloaded, Unavailable, from_wire
from app.core.types import Segment, Transcript, TranscriptionRequest
from app.core.worker import worker_main

log = logging.getLogger("asr.pool")
OnSegment = Callable[[Segment, float, float], None]


@dataclass(frozen=True)
class PoolConfig:
    workers: int
    queue_size: int
    retry_after: int
    job_retries: int
    worker_max_jobs: int
    pipeline: PipelineConfig


class PoolObserver(Protocol):
    def cancelled(self, stage: str) -> None: ...
    def worker_exited(self, reason: str) -> None: ...
    def finished(self, transcript: Transcript, waited: float) -> None: ...


class NullObserver:
    def cancelled(self, stage: str) -> None: ...
    def worker_exited(self, reason: str) -> None: ...
    def finished(self, transcript: Transcript, waited: float) -> None: ...


@dataclass(eq=False)
class Job:
    id: int
    request: TranscriptionRequest
    future: asyncio.Future[Transcript]
    on_segment: OnSegment | None
    enqueued: float = field(default_factory=time.monotonic)
    started: float = 0.0
    attempts: int = 0


@dataclass(eq=False)
class Worker:
    slot: int
    process: BaseProcess
    conn: Connection
    abort: Synchronized  # type: ignore[type-arg]
    ready: bool = False
    job: Job | None = None
    served: int = 0
    load_error: str | None = None


class DecoderPool:
    def __init__(self, factory: EngineFactory, config: PoolConfig, observer: PoolObserver | None = None) -> None:
        self.factory = factory
        self.config = config
        self.observer = observer or NullObserver()
        self._ctx = mp.get_context("spawn")
        self._queue: collections.deque[Job] = collections.deque()
        self._workers: dict[int, Worker] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._all_ready = asyncio.Event()
        self.load_error: str | None = None

    # -- state the probes and metrics read ------------------------------------------------
    @property
    def ready(self) -> bool:
        return not self._stopping and self.load_error is None and any(w.ready for w in self._workers.values())

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def workers_ready(self) -> int:
        return sum(1 for w in self._workers.values() if w.ready)

    @property
    def in_flight(self) -> int:
        return sum(1 for w in self._workers.values() if w.job is not None)

    @property
    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers.values() if w.process.pid is not None]

    # -- life cycle ------------------------------------------------------------------------
    async def start(self, wait: bool = True) -> None:
        self._loop = asyncio.get_running_loop()
        for slot in range(self.config.workers):
            await self._spawn(slot)
        if wait:
            await self.wait_ready()

    async def wait_ready(self) -> None:
        await self._all_ready.wait()
        if self.load_error:
            raise Unavailable(f"decoder workers failed to load: {self.load_error}")

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        for job in self._queue:
            if not job.future.done():
                job.future.set_exception(Unavailable("the server is shutting down"))
        self._queue.clear()
        workers = list(self._workers.values())
        for w in workers:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        await asyncio.gather(*(asyncio.to_thread(self._join, w, timeout) for w in workers))

    @staticmethod
    def _join(worker: Worker, timeout: float) -> None:
        worker.process.join(timeout)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(5)

    async def _spawn(self, slot: int) -> None:
        parent, child = self._ctx.Pipe()
        abort = self._ctx.Value("q", 0)
        process = self._ctx.Process(
            target=worker_main,
            args=(child, abort, self.factory, self.config.pipeline, self.config.worker_max_jobs),
            name=f"asr-worker-{slot}",
            daemon=True,
        )
        await asyncio.to_thread(process.start)
        child.close()  # so the parent sees EOF when the worker dies
        worker = Worker(slot, process, parent, abort)
        self._workers[slot] = worker
        threading.Thread(target=self._read, args=(worker,), name=f"asr-reader-{slot}", daemon=True).start()

    def _read(self, worker: Worker) -> None:
        assert self._loop is not None
        try:
            while True:
                message = worker.conn.recv()
                self._loop.call_soon_threadsafe(self._on_message, worker, message)
        except (EOFError, OSError):
            pass
        worker.process.join()
        try:
            self._loop.call_soon_threadsafe(self._on_exit, worker)
        except RuntimeError:  # loop already closed at interpreter shutdown
            pass

    # -- admission ---------------------------------------------------------------------------
    async def transcribe(self, request: TranscriptionRequest, on_segment: OnSegment | None = None) -> Transcript:
        job = self.submit(request, on_segment)
        try:
            return await job.future
        except asyncio.CancelledError:
            self.cancel(job)
            raise

    def submit(self, request: TranscriptionRequest, on_segment: OnSegment | None = None) -> Job:
        if self._loop is None or self._stopping or self.load_error:
            raise Unavailable("the decoder pool is not running", retry_after=self.config.retry_after)
        idle = any(w.ready and w.job is None for w in self._workers.values())
        if not idle and len(self._queue) >= self.config.queue_size:
            raise Overloaded(
                f"all {self.config.workers} decoders are busy and {len(self._queue)} requests are waiting",
                retry_after=self.config.retry_after,
            )
        job = Job(next(self._ids), request, self._loop.create_future(), on_segment)
        self._queue.append(job)
        self._dispatch()
        return job

    def cancel(self, job: Job) -> None:
        if job in self._queue:
            self._queue.remove(job)
            self.observer.cancelled("queued")
            return
        for w in self._workers.values():
            if w.job is job:
                w.abort.value = job.id
                self.observer.cancelled("decoding")
                return

    # -- dispatch and replies ------------------------------------------------------------------
    def _dispatch(self) -> None:
        for w in self._workers.values():
            if not self._queue:
                return
            if not w.ready or w.job is not None:
                continue
            job = self._queue.popleft()
            while job.future.done():
                if not self._queue:
                    return
                job = self._queue.popleft()
            w.job = job
            job.started = time.monotonic()
            job.attempts += 1
            assert self._loop is not None
            self._loop.create_task(self._send(w, ("job", job.id, job.request)))

    @staticmethod
    async def _send(worker: Worker, message: Any) -> None:
        try:
            # Audio can be megabytes: pickling and writing it happens off the loop.
            await asyncio.to_thread(worker.conn.send, message)
        except OSError:
            pass  # the reader thread reports the dead worker

    def _on_message(self, worker: Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            self._note_readiness()
            self._dispatch()
            return
        if kind == "load_error":
            worker.load_error = message[1]
            self.load_error = message[1]
            self._note_readiness()
            return
        job = worker.job
        if job is None or job.id != message[1]:
            return
        if kind == "segment":
            if job.on_segment is not None and not job.future.done():
                job.on_segment(message[2], message[3], message[4])
            return
        worker.job = None
        worker.served += 1
        if self.config.worker_max_jobs and worker.served >= self.config.worker_max_jobs:
            worker.ready = False  # it exits now; nothing more is sent to it
        if kind == "done":
            transcript: Transcript = message[2]
            if not job.future.done():
                job.future.set_result(transcript)
            self.observer.finished(transcript, job.started - job.enqueued)
        elif kind == "error" and not job.future.done():
            job.future.set_exception(from_wire(message[2], message[3], message[4]))
        self._dispatch()

    def _on_exit(self, worker: Worker) -> None:
        if self._workers.get(worker.slot) is worker:
            del self._workers[worker.slot]
        if self._stopping:
            return
        job, worker.job = worker.job, None
        if worker.load_error is not None:
            self.observer.worker_exited("load_error")
            return
        self.observer.worker_exited("crashed" if job is not None else "recycled")
        if job is not None and not job.future.done():
            self._retry_or_fail(job, worker.process.exitcode)
        assert self._loop is not None
        self._loop.create_task(self._spawn(worker.slot))

    def _retry_or_fail(self, job: Job, exitcode: int | None) -> None:
        if job.attempts <= self.config.job_retries:
            log.warning("worker died (exit %s) during job %d; trying it again", exitcode, job.id)
            self._queue.appendleft(job)
            return
        job.future.set_exception(
            Internal(
                f"the decoder process crashed (exit code {exitcode}) on this audio {job.attempts} times; giving up"
            )
        )

    def _note_readiness(self) -> None:
        workers = self._workers.values()
        if len(workers) == self.config.workers and all(w.ready or w.load_error for w in workers):
            self._all_ready.set()

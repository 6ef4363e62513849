"""The decoder pool: worker processes fed window by window by the scheduler.

One owner (the event loop) holds the jobs, the scheduler and the worker table; a reader thread per
worker turns its pipe into loop callbacks, so nothing here blocks the loop. Each worker runs one
assignment at a time: a job's plan, or a window (several compatible ones with `batch_size` > 1).
Every assignment has a deadline: a worker past it is killed and replaced, and its work tried once
more elsewhere (as when a worker crashes). Every job has its lane's deadline. A cancelled job's
waiting windows are dropped and its running one aborted between segments.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.core.dispatch_policy import lends_every_core, preemption_victims, reserve_pick, room_for_a_guess
from app.core.engine import EngineFactory
from app.core.errors import Cancelled, DeadlineExceeded, Internal, Overloaded, SttError, Unavailable, from_wire
from app.core.pipeline import Plan, WindowResult, merge, window_work
from app.core.pool_config import Assignment, LaneConfig, NullObserver, PoolConfig, PoolObserver, Worker
from app.core.pool_workers import follow, join, send, start_worker
from app.core.scheduler import PLAN, Item, Job, OnSegment, Scheduler
from app.core.types import Lane, Transcript, TranscriptionRequest
from app.core.windows import Window
from app.core.worker import PREEMPT

log = logging.getLogger("asr.pool")
__all__ = ["DecoderPool", "Job", "LaneConfig", "OnSegment", "PoolConfig"]


class DecoderPool:
    def __init__(self, factory: EngineFactory, config: PoolConfig, observer: PoolObserver | None = None) -> None:
        self.factory = factory
        self.config = config
        self.observer = observer or NullObserver()
        self._ctx = mp.get_context("spawn")
        self._scheduler = Scheduler(config.starve_seconds)
        self._jobs: dict[int, Job] = {}
        self._workers: dict[int, Worker] = {}
        self._ids = itertools.count(1)
        self._assignments = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._all_ready = asyncio.Event()
        self.load_error: str | None = None

    # -- state the probes and metrics read ------------------------------------------------
    @property
    def ready(self) -> bool:
        """Some worker can take work: loaded, and not past an assignment's deadline."""
        if self._stopping or self.load_error is not None:
            return False
        return any(w.ready and not (w.assignment and w.assignment.timed_out) for w in self._workers.values())

    @property
    def queue_depth(self) -> int:
        """Jobs admitted whose work has not started yet."""
        return sum(1 for job in self._jobs.values() if not job.started)

    @property
    def workers_ready(self) -> int:
        return sum(1 for w in self._workers.values() if w.ready)

    @property
    def in_flight(self) -> int:
        return sum(1 for w in self._workers.values() if w.assignment is not None)

    @property
    def idle(self) -> bool:
        """Spare capacity for optional work (dispatch_policy.room_for_a_guess)."""
        return room_for_a_guess(self._workers.values(), self._scheduler)

    @property
    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers.values() if w.process.pid is not None]

    def lane_jobs(self, lane: Lane) -> int:
        return sum(1 for job in self._jobs.values() if job.lane is lane)

    # -- life cycle ------------------------------------------------------------------------
    async def start(self, wait: bool = True) -> None:
        self._loop = asyncio.get_running_loop()
        for slot in range(self.config.workers + self.config.reserve):
            await self._spawn(slot)
        if wait:
            await self.wait_ready()

    async def wait_ready(self) -> None:
        await self._all_ready.wait()
        if self.load_error:
            raise Unavailable(f"decoder workers failed to load: {self.load_error}")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers; every job not finished by then fails (nobody waits forever)."""
        self._stopping = True
        for job in list(self._jobs.values()):
            if not job.started:
                self._fail(job, Unavailable("the server is shutting down"))
        workers = list(self._workers.values())
        for w in workers:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(send, w, None)
        await asyncio.gather(*(asyncio.to_thread(join, w, timeout) for w in workers))
        self.fail_all(Unavailable("the server is shutting down"))

    async def _spawn(self, slot: int) -> None:
        worker = await asyncio.to_thread(start_worker, self._ctx, slot, self.factory, self.config)
        self._workers[slot] = worker
        assert self._loop is not None
        follow(worker, self._loop, self._on_message, self._on_exit)

    # -- admission ---------------------------------------------------------------------------
    async def transcribe(
        self, request: TranscriptionRequest, on_segment: OnSegment | None = None, *, lane: Lane = Lane.INTERACTIVE
    ) -> Transcript:
        job = self.submit(request, on_segment, lane=lane)
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            self.cancel(job)
            raise

    def submit(
        self, request: TranscriptionRequest, on_segment: OnSegment | None = None, *, lane: Lane = Lane.INTERACTIVE
    ) -> Job:
        if self._loop is None or self._stopping or self.load_error:
            raise Unavailable("the decoder pool is not running", retry_after=self.config.retry_after)
        if request.audio is None:
            raise Internal("a request template without audio was submitted for decoding")
        bounds = self.config.lane(lane)
        admitted = self.lane_jobs(lane)
        if admitted >= self.config.workers + bounds.queue_size:
            raise Overloaded(
                f"all {self.config.workers} decoders are busy and {admitted} {lane.name.lower()} requests are admitted",
                retry_after=self.config.retry_after,
            )
        job_id = next(self._ids)
        spool = self.config.pipeline.tmp_dir / f"pcm-{os.getpid()}-{job_id}.f32"
        job = Job(job_id, request, lane, self._loop.create_future(), on_segment, str(spool))
        if bounds.deadline > 0:
            job.deadline = job.enqueued + bounds.deadline
            job.expiry = self._loop.call_at(self._loop.time() + bounds.deadline, self._expire, job)
        self._jobs[job.id] = job
        self._scheduler.add(job)
        self._dispatch()
        return job

    def fail_all(self, error: SttError) -> None:
        """End every admitted job with `error` (shutdown): waiting windows dropped, running ones aborted."""
        for job in list(self._jobs.values()):
            self._fail(job, error)

    def cancel(self, job: Job) -> None:
        if job.id not in self._jobs:
            return
        self.observer.cancelled("decoding" if job.started else "queued")
        self._fail(job, Cancelled("the request was cancelled"))

    def _expire(self, job: Job) -> None:
        if not job.done:
            seconds = self.config.lane(job.lane).deadline
            self._fail(job, DeadlineExceeded(f"the request took longer than its {seconds:g} s deadline"))

    # -- dispatch ------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        for worker in sorted(self._workers.values(), key=lambda w: w.reserve):
            if not worker.idle:
                continue
            picked = reserve_pick(self._workers.values(), self._scheduler) if worker.reserve else self._scheduler.next()
            if picked is None:
                continue
            job, item = picked
            job.started = job.started or time.monotonic()
            items: list[tuple[Job, Item]] = [(job, item)]
            if isinstance(item, Window) and self.config.batch_size > 1:
                items += self._scheduler.more_like(job.lane, self._batchable(job, item), self.config.batch_size - 1)
            self._assign(worker, items)
        self._preempt()

    def _preempt(self) -> None:
        """Ask the workers on lower-lane windows that higher-lane work waits for to stop at their
        next segment and put those windows back (dispatch_policy.preemption_victims)."""
        for worker in preemption_victims(self._workers.values(), self._scheduler):
            assert worker.assignment is not None
            worker.assignment.preempted = True
            for job, item in worker.assignment.items:
                job.attempts[("preempted", item.index if isinstance(item, Window) else PLAN)] += 1
            worker.abort.value = PREEMPT
            self.observer.cancelled("preempted")

    def _batchable(self, job: Job, window: Window) -> Callable[[Job, Window], bool]:
        signature = self._work(job, window).signature
        return lambda j, w: j.plan is not None and self._work(j, w).signature == signature

    def _assign(self, worker: Worker, items: list[tuple[Job, Item]]) -> None:
        assert self._loop is not None
        lone = len(items) == 1
        wide = self.config.wide and lone and lends_every_core(worker, self._workers.values(), self._scheduler)
        job, item = items[0]
        assignment = Assignment(next(self._assignments), PLAN if item == PLAN else "decode", items, wide)
        if assignment.kind == PLAN:
            message: Any = (PLAN, assignment.id, (job.id, job.request, True, job.spool), wide)
            deadline = self.config.plan_deadline
        else:
            works = [self._work(j, w) for j, w in items]  # type: ignore[arg-type]
            message = ("decode", assignment.id, works, wide)
            deadline = self.config.window_deadline * len(items)
        worker.assignment = assignment
        worker.abort.value = 0
        self.observer.assigned(job.lane, assignment.kind, 0 if assignment.kind == PLAN else len(items), wide)
        assignment.timer = self._loop.call_later(deadline, self._overrun, worker, assignment)
        self._loop.create_task(self._send(worker, message))

    @staticmethod
    def _work(job: Job, window: Window) -> Any:
        assert job.plan is not None
        return window_work(job.id, job.plan, job.request, window)

    async def _send(self, worker: Worker, message: Any) -> None:
        try:
            # Messages are written off the loop; one lock per pipe keeps frames whole.
            await asyncio.to_thread(send, worker, message)
        except OSError:
            pass  # the reader thread reports the dead worker

    # -- replies -------------------------------------------------------------------------------
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
        assignment = worker.assignment
        if assignment is None or assignment.id != message[1]:
            return
        self._release(worker)
        worker.served += 1
        if self.config.worker_max_jobs and worker.served >= self.config.worker_max_jobs:
            worker.ready = False  # it exits now; nothing more is sent to it
        if kind == "done" and assignment.kind == PLAN:
            plan, results = message[2]
            self._planned(assignment.items[0][0], plan, results)
        elif kind == "done":
            for (job, _), result in zip(assignment.items, message[2], strict=True):
                self._decoded(job, result)
        elif assignment.preempted and message[2] == "cancelled":
            for job, item in assignment.items:
                if not job.done:
                    job.give_back(item)
                    self._scheduler.add(job)
        else:
            error = from_wire(message[2], message[3], message[4])
            for job, _ in assignment.items:
                self._fail(job, error)
        self._dispatch()

    def _release(self, worker: Worker) -> None:
        assignment, worker.assignment = worker.assignment, None
        if assignment is None:
            return
        if assignment.timer is not None:
            assignment.timer.cancel()
        for job, _ in assignment.items:
            if job.done and not self._held(job):
                _unlink(job.spool)  # kept while a worker could still read it (see _end)

    def _held(self, job: Job) -> bool:
        return any(
            w.assignment is not None and any(j is job for j, _ in w.assignment.items) for w in self._workers.values()
        )

    def _planned(self, job: Job, plan: Plan, results: list[WindowResult]) -> None:
        job.planning = False
        if job.done:
            _unlink(plan.path)
            return
        job.plan = plan
        job.pending.extend(w for w in plan.windows if w.index not in {r.index for r in results})
        for result in results:
            self._decoded(job, result)
        if not plan.windows:
            self._succeed(job)
        self._scheduler.add(job)

    def _decoded(self, job: Job, result: WindowResult) -> None:
        if job.done or job.plan is None:
            return
        job.running.discard(result.index)
        job.results[result.index] = result
        if job.on_segment is not None:
            total = job.plan.duration * job.plan.channels
            for ready in job.ready_segments():
                for s in ready.segments:
                    job.on_segment(s, s.channel * job.plan.duration + min(s.end, job.plan.duration), total)
        if job.complete:
            self._succeed(job)

    def _succeed(self, job: Job) -> None:
        assert job.plan is not None
        transcript = merge(job.request, job.plan, list(job.results.values()), time.monotonic() - job.started)
        self._end(job)
        if not job.future.done():
            job.future.set_result(transcript)
        self.observer.finished(transcript, job.started - job.enqueued)

    def _fail(self, job: Job, error: SttError) -> None:
        if job.id not in self._jobs:
            return
        self._end(job)
        for worker in self._workers.values():
            if worker.assignment is not None and any(j is job for j, _ in worker.assignment.items):
                worker.abort.value = job.id
        if not job.future.done():
            job.future.set_exception(error)
            job.future.exception()  # retrieved: a cancelled caller may never look

    def _end(self, job: Job) -> None:
        if job.expiry is not None:
            job.expiry.cancel()
        self._jobs.pop(job.id, None)
        job.pending.clear()
        if not self._held(job):  # else the worker holding it is aborted; _release unlinks it then
            _unlink(job.spool)

    # -- failures --------------------------------------------------------------------------------
    def _overrun(self, worker: Worker, assignment: Assignment) -> None:
        if worker.assignment is not assignment:
            return
        log.error("worker %s exceeded its %s deadline; killing it", worker.process.pid, assignment.kind)
        assignment.timed_out = True
        with contextlib.suppress(OSError):
            worker.process.kill()

    def _on_exit(self, worker: Worker) -> None:
        if self._workers.get(worker.slot) is worker:
            del self._workers[worker.slot]
        assignment = worker.assignment
        self._release(worker)
        if self._stopping:
            return
        if worker.load_error is not None:
            self.observer.worker_exited("load_error")
            return
        if assignment is not None:
            self.observer.worker_exited("hung" if assignment.timed_out else "crashed")
            for job, item in assignment.items:
                self._retry_or_fail(job, item, assignment, worker.process.exitcode)
        else:
            # Only a worker that left by itself (after `worker_max_jobs`) exits 0; a kill while it
            # loaded or idled is a crash.
            self.observer.worker_exited("recycled" if worker.process.exitcode == 0 else "crashed")
        assert self._loop is not None
        self._loop.create_task(self._spawn(worker.slot))
        self._dispatch()

    def _retry_or_fail(self, job: Job, item: Item, assignment: Assignment, exitcode: int | None) -> None:
        if job.done:
            return
        key = item.index if isinstance(item, Window) else PLAN
        job.attempts[key] += 1
        if job.attempts[key] <= self.config.job_retries:
            log.warning("worker died (exit %s) on job %d (%s); trying it again", exitcode, job.id, assignment.kind)
            if item == PLAN:
                _unlink(job.spool)  # planned again from the start
            job.give_back(item)
            self._scheduler.add(job)
            return
        if assignment.timed_out:
            self._fail(
                job, DeadlineExceeded(f"decoding this audio overran its deadline {job.attempts[key]} times; giving up")
            )
        else:
            self._fail(
                job,
                Internal(
                    f"the decoder process crashed (exit code {exitcode}) on this audio "
                    f"{job.attempts[key]} times; giving up"
                ),
            )

    def _note_readiness(self) -> None:
        workers = self._workers.values()
        if len(workers) == self.config.workers + self.config.reserve and all(w.ready or w.load_error for w in workers):
            self._all_ready.set()


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        Path(path).unlink()

"""The job runner: claims queued jobs from the store and decodes them on the pool's background lane.

A claimed job's lease is kept by its own task from the claim to the end, through the audio's
download, the wait for a worker and the decode, so a slow download no longer looks like a dead
runner. When a renewal fails (the lease was taken over, or a client cancelled the job), the run is
cancelled. Every write is fenced by the claim (`jobs.fenced`): a runner that lost its job writes
nothing. Callers waiting for a job are woken by an in-process event, with a poll for jobs that
another replica runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.core.codec import request_from_dict, transcript_to_dict
from app.core.errors import Internal, Overloaded, SttError
from app.core.jobs import JobRecord, JobStatus, JobStore, back_to_queue, fail, fenced, succeed
from app.core.service import SpeechService
from app.core.types import AudioInput, Lane, Segment

log = logging.getLogger("asr.jobs")


@dataclass(frozen=True)
class RunnerConfig:
    concurrency: int
    lease_seconds: float
    max_attempts: int
    retention_seconds: float
    poll_seconds: float = 1.0


AudioLoader = Callable[[JobRecord, JobStore], contextlib.AbstractAsyncContextManager[AudioInput]]
"""Gives a job's audio for the time of the decode (stored bytes, or a URI fetched into a temp file)."""


class JobRunner:
    def __init__(self, store: JobStore, service: SpeechService, load_audio: AudioLoader, config: RunnerConfig) -> None:
        self.store = store
        self.service = service
        self.load_audio = load_audio
        self.config = config
        self._slots = asyncio.Semaphore(config.concurrency)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def start(self) -> None:
        self._main = asyncio.create_task(self._loop())
        self._sweeper = asyncio.create_task(self._sweep_forever())

    def notify(self) -> None:
        """A job was just queued here: look now instead of at the next poll."""
        self._wake.set()

    def ended(self, job_id: str) -> None:
        """A job reached a terminal state (here, or by a client's cancel): wake its waiters."""
        for event in self._waiters.get(job_id, ()):
            event.set()

    async def wait(self, job_id: str, timeout: float, stop: asyncio.Event | None = None) -> JobRecord | None:
        """The job once terminal, or as it is when `timeout` passes (or `stop` is set)."""
        deadline = time.monotonic() + timeout
        event = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(event)
        try:
            while True:
                record = await self.store.get(job_id)
                left = deadline - time.monotonic()
                if record is None or record.status.terminal or left <= 0 or (stop and stop.is_set()):
                    return record
                # The event comes from this process; the poll catches a job another replica ran.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(left, self.config.poll_seconds))
        finally:
            waiters = self._waiters.get(job_id, set())
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(job_id, None)

    async def stop(self, timeout: float = 10.0) -> None:
        """Cancel the loop and every running job (they hand their jobs back), waiting at most
        `timeout`: a store that stops answering must not hold up shutdown."""
        self._stopping = True
        for task in [self._main, self._sweeper, *self._tasks]:
            if task is not None:
                task.cancel()
        pending = [t for t in [self._main, self._sweeper, *self._tasks] if t is not None]
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            if late:
                log.error("%d job tasks did not stop within %g s; leaving them", len(late), timeout)

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()
            self._wake.clear()  # before the claim: a notify() during it is not lost
            try:
                record = await self.store.claim(self.config.lease_seconds)
            except Exception:
                log.exception("claiming a job failed")
                record = None
            if record is None:
                self._slots.release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
                continue
            task = asyncio.create_task(self._run(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _sweep_forever(self) -> None:
        """Its own task, so recovery and purging go on while every slot is busy."""
        while True:
            await self._sweep()
            await asyncio.sleep(self.config.poll_seconds * 5)

    async def _sweep(self) -> None:
        """Jobs whose runner died go back to the queue, or fail after too many tries; old ones go."""
        try:
            for job_id in await self.store.expired_leases():
                await self._recover(job_id)
            await self.store.purge()
        except Exception:
            log.exception("job sweep failed")

    async def _recover(self, job_id: str) -> None:
        retention = self.config.retention_seconds

        def change(record: JobRecord) -> bool:
            if record.status is not JobStatus.RUNNING or (record.lease_until or 0) >= time.time():
                return False  # finished, or renewed since the sweep listed it
            if record.attempts >= self.config.max_attempts:
                message = f"the job was interrupted {record.attempts} times (server restarts or crashes); giving up"
                return fail(record, Internal(message), retention)
            record.status, record.lease_until, record.updated = JobStatus.QUEUED, None, time.time()
            return True

        updated = await self.store.update(job_id, change)
        if updated is not None and updated.status is JobStatus.QUEUED:
            log.warning("job %s lost its runner; queued again (attempt %d done)", job_id, updated.attempts)
            await self.store.requeue(job_id)
        elif updated is not None and updated.status.terminal:
            self.ended(job_id)

    async def _run(self, claimed: JobRecord) -> None:
        progress = {"value": 0.0}
        body = asyncio.ensure_future(self._execute(claimed, progress))
        keeper = asyncio.ensure_future(self._keep(claimed, progress))
        try:
            await asyncio.wait({body, keeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # The keeper ends early only when the job is no longer ours: then the body stops too.
            for task in (keeper, body):
                task.cancel()
            await asyncio.gather(body, keeper, return_exceptions=True)
            self._slots.release()
            self.ended(claimed.id)

    async def _keep(self, claimed: JobRecord, progress: dict[str, float]) -> None:
        while True:
            await asyncio.sleep(self.config.lease_seconds / 3)
            try:
                if not await self._renew(claimed, progress["value"]):
                    log.info("job %s is no longer this runner's (cancelled or taken over); stopping", claimed.id)
                    return
            except Exception:
                log.exception("renewing the lease of job %s failed; trying again", claimed.id)

    async def _execute(self, claimed: JobRecord, progress: dict[str, float]) -> None:
        retention = self.config.retention_seconds

        def on_segment(segment: Segment, done: float, total: float) -> None:
            progress["value"] = min(99.0, 100.0 * done / total) if total else 0.0

        try:
            async with self.load_audio(claimed, self.store) as audio:
                request = request_from_dict(claimed.request, audio)
                transcript = await self.service.transcribe(request, on_segment, lane=Lane.BACKGROUND)
            result = transcript_to_dict(transcript)
            await self.store.update(claimed.id, fenced(claimed, lambda r: succeed(r, result, retention)))
        except Overloaded:
            await self._hand_back(claimed)
            await asyncio.sleep(self.config.poll_seconds)
        except asyncio.CancelledError:
            if self._stopping:
                # Shutting down: hand the job back so this or another instance runs it again.
                await asyncio.shield(self._hand_back(claimed))
            raise
        except SttError as exc:
            error = exc
            await self.store.update(claimed.id, fenced(claimed, lambda r: fail(r, error, retention)))
        except Exception as exc:
            log.exception("job %s failed", claimed.id)
            internal = Internal(f"internal error: {type(exc).__name__}: {exc}")
            await self.store.update(claimed.id, fenced(claimed, lambda r: fail(r, internal, retention)))

    async def _hand_back(self, claimed: JobRecord) -> None:
        updated = await self.store.update(claimed.id, fenced(claimed, back_to_queue))
        if updated is not None and updated.status is JobStatus.QUEUED:
            await self.store.requeue(claimed.id)

    async def _renew(self, claimed: JobRecord, progress: float) -> bool:
        lease = self.config.lease_seconds

        def change(record: JobRecord) -> bool:
            record.lease_until = time.time() + lease
            record.progress = max(record.progress, progress)
            record.updated = time.time()
            return True

        updated = await self.store.update(claimed.id, fenced(claimed, change))
        return updated is not None and updated.status is JobStatus.RUNNING and updated.attempts == claimed.attempts

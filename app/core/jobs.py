"""Durable jobs: the record every protocol's async API shares, the store contract, and the runner.

A job is `queued -> running -> done | failed | cancelled`. A running job holds a lease that its
runner renews; a job whose lease ran out (its process died) goes back to the queue until
`max_attempts` claims were spent, then fails with a clear error. Nothing stays pending forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from app.core.codec import request_from_dict, transcript_to_dict
from app.core.errors import Cancelled, Internal, Overloaded, SttError, kinds
from app.core.service import SpeechService
from app.core.types import AudioInput, Lane, Segment

log = logging.getLogger("asr.jobs")


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass
class JobRecord:
    id: str
    kind: str
    """Which API created it ("google", "prosa"); listings are per kind."""
    request: dict[str, Any]
    """codec.request_to_dict of the neutral request (the audio is stored beside it)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Protocol extras kept for rendering (API version, the audio URI, ...)."""
    status: JobStatus = JobStatus.QUEUED
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    progress: float = 0.0
    attempts: int = 0
    lease_until: float | None = None
    expires: float | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        return cls(**{**data, "status": JobStatus(data["status"])})


Change = Callable[[JobRecord], bool]
"""Edits a record in place; returns False to leave it untouched."""


class JobStore(Protocol):
    async def create(self, record: JobRecord, audio: bytes | None) -> None: ...
    async def get(self, job_id: str) -> JobRecord | None:
        """None when unknown or past its retention."""
        ...

    async def audio(self, job_id: str) -> bytes | None: ...
    async def page(self, kind: str, size: int, token: str | None) -> tuple[list[JobRecord], str | None]:
        """Newest first; the token continues where the previous page stopped."""
        ...

    async def count(self, kind: str) -> int: ...
    async def claim(self, lease_seconds: float) -> JobRecord | None:
        """The oldest queued job, now running under a lease, or None."""
        ...

    async def update(self, job_id: str, change: Change) -> JobRecord | None: ...
    async def expired_leases(self) -> list[str]: ...
    async def requeue(self, job_id: str) -> None: ...
    async def purge(self) -> int: ...
    async def close(self) -> None: ...


def fail(record: JobRecord, error: SttError, retention: float) -> bool:
    if record.status.terminal:
        return False
    record.status = JobStatus.CANCELLED if isinstance(error, Cancelled) else JobStatus.FAILED
    record.error = {"kind": error.kind, "kinds": kinds(error), "message": error.message, "param": error.param}
    return _close(record, retention)


def cancel(record: JobRecord, retention: float) -> bool:
    return fail(record, Cancelled("the job was cancelled by the client"), retention)


def succeed(record: JobRecord, result: dict[str, Any], retention: float) -> bool:
    if record.status.terminal:
        return False
    record.status, record.result, record.progress = JobStatus.DONE, result, 100.0
    return _close(record, retention)


def _close(record: JobRecord, retention: float) -> bool:
    record.finished = record.updated = time.time()
    record.expires = record.finished + retention
    record.lease_until = None
    return True


@dataclass(frozen=True)
class RunnerConfig:
    concurrency: int
    lease_seconds: float
    max_attempts: int
    retention_seconds: float
    poll_seconds: float = 1.0


AudioLoader = Callable[[JobRecord, "JobStore"], contextlib.AbstractAsyncContextManager[AudioInput]]
"""Gives a job's audio for the time of the decode (stored bytes, or a URI fetched into a temp file)."""


class JobRunner:
    """Claims queued jobs from the store and runs them on the decoder pool, renewing their leases."""

    def __init__(self, store: JobStore, service: SpeechService, load_audio: AudioLoader, config: RunnerConfig) -> None:
        self.store = store
        self.service = service
        self.load_audio = load_audio
        self.config = config
        self._slots = asyncio.Semaphore(config.concurrency)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._main = asyncio.create_task(self._loop())

    def notify(self) -> None:
        """A job was just queued here: look now instead of at the next poll."""
        self._wake.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Cancel the loop and every running job (they hand their jobs back), waiting at most
        `timeout`: a store that stops answering must not hold up shutdown."""
        self._stopping = True
        if self._main is not None:
            self._main.cancel()
        for task in list(self._tasks):
            task.cancel()
        pending = [*self._tasks, *(t for t in [self._main] if t)]
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            if late:
                log.error("%d job tasks did not stop within %g s; leaving them", len(late), timeout)

    async def _loop(self) -> None:
        last_sweep = 0.0
        while True:
            if time.monotonic() - last_sweep > self.config.poll_seconds * 5:
                await self._sweep()
                last_sweep = time.monotonic()
            await self._slots.acquire()
            try:
                record = await self.store.claim(self.config.lease_seconds)
            except Exception:
                log.exception("claiming a job failed")
                record = None
            if record is None:
                self._slots.release()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
                continue
            task = asyncio.create_task(self._run(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

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
            if record.status.terminal:
                return False
            if record.attempts >= self.config.max_attempts:
                message = f"the job was interrupted {record.attempts} times (server restarts or crashes); giving up"
                return fail(record, Internal(message), retention)
            record.status, record.lease_until, record.updated = JobStatus.QUEUED, None, time.time()
            return True

        updated = await self.store.update(job_id, change)
        if updated is not None and updated.status is JobStatus.QUEUED:
            log.warning("job %s lost its runner; queued again (attempt %d done)", job_id, updated.attempts)
            await self.store.requeue(job_id)

    async def _run(self, record: JobRecord) -> None:
        retention = self.config.retention_seconds
        progress = {"value": 0.0}
        work: asyncio.Task[Any] | None = None
        try:

            def on_segment(segment: Segment, done: float, total: float) -> None:
                progress["value"] = min(99.0, 100.0 * done / total) if total else 0.0

            async with self.load_audio(record, self.store) as audio:
                request = request_from_dict(record.request, audio)
                work = asyncio.ensure_future(self.service.transcribe(request, on_segment, lane=Lane.BACKGROUND))
                while not work.done():
                    await asyncio.wait({work}, timeout=self.config.lease_seconds / 3)
                    if not work.done() and not await self._renew(record, progress["value"]):
                        work.cancel()  # cancelled by a client, or taken over after our lease ran out
                transcript = work.result()
            await self.store.update(record.id, lambda r: succeed(r, transcript_to_dict(transcript), retention))
        except Overloaded:
            await self.store.update(record.id, _back_to_queue)
            await self.store.requeue(record.id)
            await asyncio.sleep(self.config.poll_seconds)
        except asyncio.CancelledError:
            if work is not None and not work.done():
                work.cancel()
            current = await self.store.get(record.id)
            if current is not None and current.status is JobStatus.RUNNING and self._stopping:
                # Shutting down: hand the job back so this or another instance runs it again.
                await self.store.update(record.id, _back_to_queue)
                await self.store.requeue(record.id)
        except SttError as exc:
            stt_error = exc
            await self.store.update(record.id, lambda r: fail(r, stt_error, retention))
        except Exception as exc:
            log.exception("job %s failed", record.id)
            internal = Internal(f"internal error: {type(exc).__name__}: {exc}")
            await self.store.update(record.id, lambda r: fail(r, internal, retention))
        finally:
            self._slots.release()

    async def _renew(self, claimed: JobRecord, progress: float) -> bool:
        lease = self.config.lease_seconds

        def ours(record: JobRecord) -> bool:
            # A later claim (our lease ran out, another runner took the job) counted another attempt.
            return record.status is JobStatus.RUNNING and record.attempts == claimed.attempts

        def change(record: JobRecord) -> bool:
            if not ours(record):
                return False
            record.lease_until = time.time() + lease
            record.progress = max(record.progress, progress)
            record.updated = time.time()
            return True

        updated = await self.store.update(claimed.id, change)
        return updated is not None and ours(updated)


def _back_to_queue(record: JobRecord) -> bool:
    if record.status is not JobStatus.RUNNING:
        return False
    record.status, record.lease_until, record.updated = JobStatus.QUEUED, None, time.time()
    record.attempts = max(0, record.attempts - 1)  # not the job's fault: it does not count as a try
    return True

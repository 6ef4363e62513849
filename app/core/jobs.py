"""Durable jobs: the record every protocol's async API shares, the store contract, and the state
changes (app/core/runner.py runs them, app/core/jobservice.py is what adapters call).

A job is `queued -> running -> done | failed | cancelled`. A running job holds a lease that its
runner renews from claim to finish; a job whose lease ran out (its process died) goes back to the
queue until `max_attempts` claims were spent, then fails with a clear error. Every write of a
runner is fenced by its claim (`fenced`). Nothing stays pending forever.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from app.core.codec import known
from app.core.errors import Cancelled, Overloaded, SttError, kinds


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


RECORD_VERSION = 1
"""Bumped when a stored field changes meaning; additions and removals need no bump."""


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
    v: int = RECORD_VERSION
    """The release format that wrote it: loaders accept older and newer ones (codec.known)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        return cls(**{**known(cls, data), "status": JobStatus(data["status"])})


@dataclass(frozen=True)
class StoreCaps:
    """Bounds a store enforces when a job is created (Overloaded past either)."""

    max_active_jobs: int = 256
    """Jobs queued or running at once."""
    max_audio_bytes: int = 1 << 30
    """Uploaded audio held at once; a job's audio is deleted when it reaches a terminal state."""

    def check(self, active: int, stored: int, adding: int, retry_after: int = 5) -> None:
        if active >= self.max_active_jobs:
            raise Overloaded(
                f"{active} jobs are queued or running, the most this server holds", retry_after=retry_after
            )
        if stored + adding > self.max_audio_bytes:
            raise Overloaded(
                f"the job store holds {stored} bytes of audio; {adding} more would pass its {self.max_audio_bytes}",
                retry_after=retry_after,
            )


Change = Callable[[JobRecord], bool]
"""Edits a record in place; returns False to leave it untouched."""


class JobStore(Protocol):
    async def create(self, record: JobRecord, audio: bytes | None) -> None:
        """Store a new queued job, or raise Overloaded past the store's caps (StoreCaps)."""
        ...

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

    async def update(self, job_id: str, change: Change) -> JobRecord | None:
        """Apply `change` atomically; a record that becomes terminal loses its stored audio."""
        ...

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


def fenced(claimed: JobRecord, change: Change) -> Change:
    """`change`, applied only while the claim `claimed` still holds the job: a runner that lost its
    lease (another runner claimed the job since, counting another attempt) or whose job a client
    cancelled writes nothing."""

    def apply(record: JobRecord) -> bool:
        return record.status is JobStatus.RUNNING and record.attempts == claimed.attempts and change(record)

    return apply


def back_to_queue(record: JobRecord) -> bool:
    if record.status is not JobStatus.RUNNING:
        return False
    record.status, record.lease_until, record.updated = JobStatus.QUEUED, None, time.time()
    record.attempts = max(0, record.attempts - 1)  # not the job's fault: it does not count as a try
    return True

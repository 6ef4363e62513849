"""The decoder pool's configuration and bookkeeping records: lanes' bounds, the observer the
metrics implement, a worker process and the assignment it is on."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from typing import Protocol

from app.core.engine import PipelineConfig
from app.core.scheduler import Item, Job
from app.core.types import Lane, Transcript


@dataclass(frozen=True)
class LaneConfig:
    queue_size: int
    """Jobs admitted beyond one per worker; past it new ones fail fast (Overloaded)."""
    deadline: float
    """Seconds from admission to result; 0: none."""


@dataclass(frozen=True)
class PoolConfig:
    workers: int
    queue_size: int
    retry_after: int
    job_retries: int
    worker_max_jobs: int
    pipeline: PipelineConfig
    lanes: dict[Lane, LaneConfig] = field(default_factory=dict)
    """Per-lane bounds; a lane not named here gets `queue_size` and no deadline."""
    window_deadline: float = 120.0
    plan_deadline: float = 600.0
    batch_size: int = 1
    wide: bool = False
    """Lend idle workers' cores to a lone window (the engine holds a copy with more threads)."""
    starve_seconds: float = 10.0
    """A lane with work waiting this long unserved goes before higher lanes (no starvation)."""
    reserve: int = 0
    """Extra workers that take only live and interactive work, and only while a regular worker holds
    lower-lane work (a window cannot be interrupted mid-generate, so preemption alone leaves the
    request waiting up to a window)."""
    nice: int = 0
    """OS niceness added to the regular workers, so a reserve worker (and the event loop) gets its
    core first when they contend."""
    heap_trim_seconds: float = 0.0
    """A worker hands freed memory back to the system after an assignment, at most this often; 0: never."""
    worker_mmap_threshold_bytes: int = 0
    """A worker maps blocks of this size or more on their own (a fixed glibc threshold); 0: glibc's own."""

    def lane(self, lane: Lane) -> LaneConfig:
        return self.lanes.get(lane, LaneConfig(self.queue_size, 0.0))


class PoolObserver(Protocol):
    def cancelled(self, stage: str) -> None: ...
    def worker_exited(self, reason: str) -> None: ...
    def finished(self, transcript: Transcript, waited: float) -> None: ...
    def assigned(self, lane: Lane, kind: str, windows: int, wide: bool) -> None: ...


class NullObserver:
    def cancelled(self, stage: str) -> None: ...
    def worker_exited(self, reason: str) -> None: ...
    def finished(self, transcript: Transcript, waited: float) -> None: ...
    def assigned(self, lane: Lane, kind: str, windows: int, wide: bool) -> None: ...


@dataclass(eq=False)
class Assignment:
    id: int
    kind: str
    items: list[tuple[Job, Item]]
    wide: bool
    timer: asyncio.TimerHandle | None = None
    timed_out: bool = False
    preempted: bool = False

    @property
    def lane(self) -> Lane:
        return self.items[0][0].lane


@dataclass(eq=False)
class Worker:
    slot: int
    process: BaseProcess
    conn: Connection
    abort: Synchronized  # type: ignore[type-arg]
    lock: threading.Lock = field(default_factory=threading.Lock)
    ready: bool = False
    assignment: Assignment | None = None
    served: int = 0
    load_error: str | None = None
    reserve: bool = False

    @property
    def idle(self) -> bool:
        return self.ready and self.assignment is None

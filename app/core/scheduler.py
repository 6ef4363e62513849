"""Which work goes to the next free worker: lanes by priority, round-robin across requests in a lane.

A request's work is its plan (decode the file, cut windows) and then its windows. Lanes, highest
first: live streams, interactive (synchronous) requests, background jobs. Within a lane a new
request's plan goes first, then each request with windows waiting takes one in turn, so a 2-hour
file cannot starve a 10 s request. Work of a higher lane waiting with every worker busy preempts a
lower lane's window (see DecoderPool._preempt).
Pure bookkeeping on the event loop: no processes, no I/O, so it is tested directly.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from app.core.pipeline import Plan, WindowResult
from app.core.types import Lane, Segment, Transcript, TranscriptionRequest
from app.core.windows import Window

OnSegment = Callable[[Segment, float, float], None]
PLAN = "plan"
Item = Window | str
"""A window, or PLAN: the request's first step."""


@dataclass(eq=False)
class Job:
    """One admitted request and the state of its work."""

    id: int
    request: TranscriptionRequest
    lane: Lane
    future: asyncio.Future[Transcript]
    on_segment: OnSegment | None
    spool: str
    deadline: float | None = None
    expiry: asyncio.TimerHandle | None = None
    """The deadline's timer, cancelled when the job ends: it holds the job (and its audio) alive."""
    enqueued: float = field(default_factory=time.monotonic)
    started: float = 0.0
    plan: Plan | None = None
    planning: bool = False
    pending: collections.deque[Window] = field(default_factory=collections.deque)
    running: set[int] = field(default_factory=set)
    results: dict[int, WindowResult] = field(default_factory=dict)
    emitted: int = 0
    attempts: collections.Counter[object] = field(default_factory=collections.Counter)
    queued: bool = False

    @property
    def done(self) -> bool:
        return self.future.done()

    @property
    def fresh(self) -> bool:
        """Admitted, and its plan not handed out yet."""
        return not self.done and self.plan is None and not self.planning

    @property
    def has_work(self) -> bool:
        return self.fresh or (not self.done and bool(self.pending))

    @property
    def complete(self) -> bool:
        return self.plan is not None and len(self.results) == len(self.plan.windows)

    def take(self) -> Item:
        if self.plan is None:
            self.planning = True
            return PLAN
        window = self.pending.popleft()
        self.running.add(window.index)
        return window

    def give_back(self, item: Item) -> None:
        """A started item that must run again (its worker died)."""
        if isinstance(item, Window):
            self.running.discard(item.index)
            self.pending.appendleft(item)
        else:
            self.planning = False

    def ready_segments(self) -> Iterator[WindowResult]:
        """Results not yet emitted whose earlier windows are all in: segments reach callers in order."""
        while self.emitted in self.results:
            yield self.results[self.emitted]
            self.emitted += 1


class Scheduler:
    def __init__(self, starve_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._lanes: dict[Lane, collections.deque[Job]] = {lane: collections.deque() for lane in Lane}
        self.starve_seconds = starve_seconds
        self._clock = clock
        self._served = {lane: clock() for lane in Lane}
        """When each lane last handed out work, or last went from no work to some."""

    def add(self, job: Job) -> None:
        """(Re)offer a job's work; a job is in its lane's rotation at most once."""
        if job.has_work and not job.queued:
            if not self._has_work(job.lane):
                self._served[job.lane] = self._clock()
            job.queued = True
            self._lanes[job.lane].append(job)

    def next(self, lanes: tuple[Lane, ...] = tuple(Lane)) -> tuple[Job, Item] | None:
        """The highest lane's next item; but a lane whose work has waited `starve_seconds` without
        being served goes first, so a flood in a higher lane slows the lower ones and never stops them."""
        now = self._clock()
        busy = [lane for lane in lanes if self._has_work(lane)]
        # The highest lane with work is served by priority anyway; only those below it can starve.
        starved = [lane for lane in busy[1:] if now - self._served[lane] > self.starve_seconds]
        for lane in [*starved, *(lane for lane in lanes if lane not in starved)]:
            taken = self._take(self._lanes[lane])
            if taken is not None:
                self._served[lane] = now
                return taken
        return None

    def _has_work(self, lane: Lane) -> bool:
        return any(job.has_work for job in self._lanes[lane])

    def next_fresh(self, lane: Lane) -> tuple[Job, Item] | None:
        """The plan of the oldest request of `lane` that has not started."""
        queue = self._lanes[lane]
        job = next((j for j in queue if j.fresh), None)
        if job is None:
            return None
        queue.remove(job)
        job.queued = False
        item = job.take()
        self._served[lane] = self._clock()
        self.add(job)
        return job, item

    def more_like(self, lane: Lane, accept: Callable[[Job, Window], bool], limit: int) -> list[tuple[Job, Window]]:
        """Up to `limit` further windows of `lane` that `accept` allows, in rotation order."""
        found: list[tuple[Job, Window]] = []
        queue = self._lanes[lane]
        for _ in range(len(queue)):
            if len(found) >= limit:
                break
            job = queue[0]
            queue.rotate(-1)
            while job.pending and len(found) < limit and accept(job, job.pending[0]):
                found.append((job, job.take()))  # type: ignore[arg-type]
        self._prune(queue)
        return found

    def waiting(self) -> int:
        """Items ready to be handed out, over every lane."""
        return sum(self.waiting_in(lane) for lane in Lane)

    def waiting_in(self, lane: Lane) -> int:
        return sum((1 if job.fresh else len(job.pending)) for job in self._lanes[lane] if job.has_work)

    def _take(self, queue: collections.deque[Job]) -> tuple[Job, Item] | None:
        # A new request starts first: its plan (and, for short audio, its only window) goes ahead
        # of the next window of requests already under way; those then share the lane in turn.
        fresh = next((job for job in queue if job.fresh), None)
        if fresh is not None:
            queue.remove(fresh)
            queue.appendleft(fresh)
        while queue:
            job = queue.popleft()
            job.queued = False
            if not job.has_work:
                continue
            item = job.take()
            self.add(job)
            return job, item
        return None

    @staticmethod
    def _prune(queue: collections.deque[Job]) -> None:
        for job in [j for j in queue if not j.has_work]:
            queue.remove(job)
            job.queued = False

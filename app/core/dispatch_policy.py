"""Which work the reserve worker takes, which windows higher-lane work preempts, and when a lone
window gets every core: decisions over the worker table and the scheduler, no side effects (the
pool, app/core/pool.py, acts on them)."""

from __future__ import annotations

from collections.abc import Iterable

from app.core.pool_config import Assignment, Worker
from app.core.scheduler import Item, Job, Scheduler
from app.core.types import Lane
from app.core.windows import Window

LONG_WINDOWS = 3


def reserve_pick(workers: Iterable[Worker], scheduler: Scheduler) -> tuple[Job, Item] | None:
    """Work for a reserve worker, only while no regular worker idles: work of a lane above one a
    regular worker holds; or a new request of the top lane held when every regular worker is on a
    window of a longer request (so a short request never waits behind long ones). Never background
    work."""
    regular = [w.assignment for w in workers if not w.reserve and w.ready]
    if not regular or any(a is None for a in regular):
        return None
    held = [a for a in regular if a is not None]
    picked = scheduler.next(tuple(lane for lane in Lane if lane < max(a.lane for a in held)))
    top = min(a.lane for a in held)
    if picked is None and top < Lane.BACKGROUND and all(a.lane > top or is_long(a) for a in held):
        picked = scheduler.next_fresh(top)
    return picked


def is_long(assignment: Assignment) -> bool:
    """On a request with LONG_WINDOWS or more windows still to decode. Requests of a few windows (a
    load of 45 s clips) wait their turn: sending each new one to the reserve would run three
    decoders on two cores and cost 7 % of throughput (docs/performance.md (c))."""
    job = assignment.items[0][0]
    return assignment.kind == "decode" and len(job.pending) + len(job.running) >= LONG_WINDOWS


def preemption_victims(workers: Iterable[Worker], scheduler: Scheduler) -> list[Worker]:
    """Work of a higher lane waits and every worker is busy: the workers on lower-lane windows to
    stop at their next segment (lowest lane first, one per waiting item). A window is preempted
    once at most, so lower lanes still progress under a steady stream of higher-lane work."""
    chosen: list[Worker] = []
    pool = list(workers)
    for lane in Lane:
        waiting = scheduler.waiting_in(lane)
        if not waiting:
            continue
        victims = sorted(
            (w for w in pool if w not in chosen and _preemptible(w, lane)),
            key=lambda w: -w.assignment.lane if w.assignment else 0,
        )
        chosen += victims[:waiting]
    return chosen


def _preemptible(worker: Worker, lane: Lane) -> bool:
    a = worker.assignment
    return (
        a is not None
        and a.kind == "decode"
        and not a.preempted
        and a.lane > lane
        and all(job.attempts[("preempted", item.index)] == 0 for job, item in a.items if isinstance(item, Window))
    )


def lends_every_core(worker: Worker, workers: Iterable[Worker], scheduler: Scheduler) -> bool:
    """Every core for `worker` when nothing else waits and every other worker idles. The others are
    not held back: work that comes meanwhile starts at once on them (the cores are then briefly
    shared), so a lone request is fast and requests never queue behind a wide one."""
    others = [w for w in workers if w is not worker and not w.reserve]
    return not worker.reserve and not scheduler.waiting() and bool(others) and all(w.idle for w in others)


def room_for_a_guess(workers: Iterable[Worker], scheduler: Scheduler) -> bool:
    """Spare capacity for optional live work (a partial, an early final): no live work waits, and a
    worker idles where the guess slows no live decode. Either a core is free (fewer workers busy
    than there are regular ones, one per core), or an idle reserve can take it while no live work
    runs: it then shares the cores only with lower-lane windows, which yield to it (their nice).
    A guess beside a live final on two busy cores would slow that final by half."""
    pool = list(workers)
    busy = sum(1 for w in pool if w.assignment is not None)
    live = sum(1 for w in pool if w.assignment is not None and w.assignment.lane is Lane.LIVE)
    regular = sum(1 for w in pool if not w.reserve)
    free_core = busy < regular and any(w.idle for w in pool)
    beside_lower_lanes = not live and any(w.reserve and w.idle for w in pool)
    return not scheduler.waiting_in(Lane.LIVE) and (free_core or beside_lower_lanes)

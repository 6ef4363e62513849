"""When optional live work (a partial, an early final) may start: the worker table alone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from app.core.dispatch_policy import room_for_a_guess
from app.core.pool_config import Assignment, Worker
from app.core.types import Lane


class Waiting:
    def __init__(self, count: int, lane: Lane = Lane.LIVE) -> None:
        self.count, self.lane = count, lane

    def waiting_in(self, lane: Lane) -> int:
        return self.count if lane is self.lane else 0


def worker(slot: int, lane: Lane | None, *, reserve: bool = False) -> Worker:
    none: Any = None
    w = Worker(slot, none, none, none, ready=True, reserve=reserve)
    if lane is not None:
        job: Any = SimpleNamespace(lane=lane)
        w.assignment = Assignment(slot, "decode", [(job, none)], wide=False)
    return w


@pytest.mark.parametrize(
    ("lanes", "waiting", "room"),
    [
        ((None, None, None), 0, True),  # idle
        ((Lane.LIVE, None, None), 0, True),  # one final decoding: a core is free
        ((Lane.LIVE, Lane.LIVE, None), 0, False),  # both cores on finals: not on the reserve too
        ((Lane.LIVE, Lane.INTERACTIVE, None), 0, False),  # it would share a core with the final
        ((Lane.INTERACTIVE, Lane.INTERACTIVE, None), 0, True),  # long files on both regular workers
        ((Lane.INTERACTIVE, Lane.INTERACTIVE, Lane.LIVE), 0, False),  # no worker free
        ((Lane.BACKGROUND, Lane.LIVE, None), 0, False),
        ((Lane.INTERACTIVE, None, None), 0, True),  # one long file: a core is free
        ((None, None, None), 1, False),  # live work waits: it comes first
        ((Lane.LIVE, Lane.LIVE, Lane.LIVE), 0, False),
    ],
)
def test_a_guess_starts_only_where_it_slows_no_live_decode(
    lanes: tuple[Lane | None, ...], waiting: int, room: bool
) -> None:
    workers = [worker(i, lane, reserve=i == 2) for i, lane in enumerate(lanes)]
    assert room_for_a_guess(workers, Waiting(waiting)) is room  # type: ignore[arg-type]


@pytest.mark.parametrize("lane", [Lane.INTERACTIVE, Lane.BACKGROUND])
def test_a_lower_lane_backlog_leaves_the_reserve_to_guesses(lane: Lane) -> None:
    # Two long files: both regular workers on their windows, more of them queued.
    workers = [worker(0, lane), worker(1, lane), worker(2, None, reserve=True)]
    assert room_for_a_guess(workers, Waiting(40, lane))  # type: ignore[arg-type]
    assert not room_for_a_guess(workers, Waiting(1, Lane.LIVE))  # type: ignore[arg-type]


def test_beside_long_files_a_guess_waits_while_a_final_holds_the_only_live_core() -> None:
    # Both regular workers on long files, one reserve on a stream's final, another reserve idle:
    # a second stream's partial would share the one core the long files leave with that final.
    workers = [worker(0, Lane.INTERACTIVE), worker(1, Lane.INTERACTIVE), worker(2, Lane.LIVE, reserve=True)]
    workers.append(worker(3, None, reserve=True))
    assert not room_for_a_guess(workers, Waiting(0))  # type: ignore[arg-type]

"""Cutting a request's audio into windows: the unit of work the scheduler hands to workers.

A window is at most `max_seconds` (Whisper sees 30 s at once) and is cut where nobody speaks: between
the speech regions the engine's VAD found, or, inside one long region with no pause, at its quietest
100 ms. Silence between windows is not decoded. Client intervals (Mod9 `intervalsJson`) replace the
VAD: each interval is decoded whole, split only when it is longer than a window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.core.audio import SAMPLE_RATE

Span = tuple[int, int]
"""[start, end) in samples."""
QUIET_FRAME = SAMPLE_RATE // 10


@dataclass(frozen=True)
class WindowConfig:
    max_seconds: float = 30.0
    """Longest window; Whisper's encoder sees 30 s."""
    max_gap_seconds: float = 3.0
    """Speech regions further apart than this start a new window (long silence is not decoded)."""
    search_seconds: float = 5.0
    """A region longer than a window is cut at the quietest point in its last this many seconds."""


@dataclass(frozen=True)
class Window:
    index: int
    channel: int
    start: int
    end: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


Samples = Callable[[int, int], np.ndarray]
"""Reads samples [start, end) of one channel."""


def windows_for_regions(regions: Sequence[Span], samples: Samples, config: WindowConfig) -> list[Span]:
    """Group speech regions (sorted, non-overlapping) into windows no longer than `max_seconds`."""
    limit = int(config.max_seconds * SAMPLE_RATE)
    gap = int(config.max_gap_seconds * SAMPLE_RATE)
    pieces = [piece for region in regions for piece in split_long(region, samples, limit, config)]
    windows: list[Span] = []
    for start, end in pieces:
        if windows and end - windows[-1][0] <= limit and start - windows[-1][1] <= gap:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def windows_for_intervals(intervals: Sequence[Span], samples: Samples, config: WindowConfig) -> list[Span]:
    """Each client interval whole, split only where it is longer than a window; never merged."""
    limit = int(config.max_seconds * SAMPLE_RATE)
    return [piece for interval in intervals for piece in split_long(interval, samples, limit, config)]


def split_long(span: Span, samples: Samples, limit: int, config: WindowConfig) -> list[Span]:
    start, end = span
    pieces: list[Span] = []
    search = int(config.search_seconds * SAMPLE_RATE)
    while end - start > limit:
        cut = quietest(samples, max(start + limit - search, start + limit // 2), start + limit)
        pieces.append((start, cut))
        start = cut
    if end > start:
        pieces.append((start, end))
    return pieces


def quietest(samples: Samples, lo: int, hi: int) -> int:
    """The middle of the quietest 100 ms frame in [lo, hi)."""
    piece = samples(lo, hi)
    usable = len(piece) // QUIET_FRAME * QUIET_FRAME
    if usable == 0:
        return hi
    energy = np.square(piece[:usable].reshape(-1, QUIET_FRAME)).mean(axis=1)
    return lo + int(np.argmin(energy)) * QUIET_FRAME + QUIET_FRAME // 2

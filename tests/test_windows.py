"""Cutting audio into windows: speech regions grouped at pauses, long regions cut where quiet."""

from __future__ import annotations

import numpy as np

from app.core.windows import WindowConfig, quietest, windows_for_intervals, windows_for_regions

RATE = 16000
CONFIG = WindowConfig(max_seconds=30, max_gap_seconds=3, search_seconds=5)


def reader(pcm: np.ndarray):  # type: ignore[no-untyped-def]
    return lambda start, end: pcm[start:end]


def s(seconds: float) -> int:
    return int(seconds * RATE)


def test_regions_are_grouped_up_to_the_window_length_and_cut_in_pauses() -> None:
    pcm = np.ones(s(100), np.float32)
    regions = [(s(a), s(b)) for a, b in [(0, 8), (9, 18), (19, 28), (29, 40), (41, 50)]]
    windows = windows_for_regions(regions, reader(pcm), CONFIG)
    assert windows == [(s(0), s(28)), (s(29), s(50))]
    assert all(end - start <= s(30) for start, end in windows)


def test_long_silence_starts_a_new_window_and_is_not_decoded() -> None:
    pcm = np.ones(s(60), np.float32)
    windows = windows_for_regions([(s(0), s(5)), (s(20), s(25))], reader(pcm), CONFIG)
    assert windows == [(s(0), s(5)), (s(20), s(25))]


def test_a_region_longer_than_a_window_is_cut_at_its_quietest_point() -> None:
    pcm = np.ones(s(70), np.float32)
    pcm[s(27.0) : s(27.1)] = 0.0  # the only quiet 100 ms in the 25-30 s search range
    windows = windows_for_regions([(0, s(70))], reader(pcm), CONFIG)
    assert windows[0] == (0, s(27.05))
    assert windows[0][1] == windows[1][0] and windows[-1][1] == s(70)
    assert all(end - start <= s(30) for start, end in windows)


def test_intervals_are_kept_apart_and_split_when_long() -> None:
    pcm = np.ones(s(100), np.float32)
    windows = windows_for_intervals([(s(0), s(2)), (s(3), s(5)), (s(10), s(80))], reader(pcm), CONFIG)
    assert windows[:2] == [(s(0), s(2)), (s(3), s(5))]
    assert windows[2][0] == s(10) and windows[-1][1] == s(80)
    assert sum(end - start for start, end in windows[2:]) == s(70)


def test_quietest_is_the_middle_of_the_quietest_frame() -> None:
    pcm = np.ones(s(2), np.float32)
    pcm[s(1.2) : s(1.3)] = 0.0
    assert quietest(reader(pcm), 0, s(2)) == s(1.25)

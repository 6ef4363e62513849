"""ReusedEncoder without a model: what the encoder is handed, and when a kept output is reused."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.core.encoder_reuse import ReusedEncoder


class Recorder:
    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def encode(self, features: np.ndarray) -> Any:
        self.shapes.append(features.shape)
        return object()


def padded(frames: int, total: int = 3000, batch: int | None = None) -> np.ndarray:
    audio = np.random.default_rng(0).normal(size=(80, frames)).astype(np.float32)
    window = np.pad(audio, ((0, 0), (0, total - frames)))  # as faster-whisper's pad_or_trim pads
    return window if batch is None else np.stack([window] * batch)


def test_the_padding_is_cut_to_padding_frames_after_the_audio() -> None:
    model = Recorder()
    encoder = ReusedEncoder(model, padding_frames=300)
    encoder(padded(500))
    encoder(padded(2900))  # less padding than that: left whole
    encoder(padded(3000))
    assert model.shapes == [(80, 800), (80, 3000), (80, 3000)]


def test_a_batch_keeps_the_padding_after_its_longest_window() -> None:
    model = Recorder()
    batch = padded(1000, batch=2)
    batch[1, :, 400:] = 0
    ReusedEncoder(model, padding_frames=300)(batch)
    assert model.shapes == [(2, 80, 1300)]


def test_silence_in_the_audio_is_not_taken_for_padding() -> None:
    model = Recorder()
    features = padded(1000)
    features[:, 200:900] = -1.0  # digital silence in log-mel is a constant, never an all-zero frame
    ReusedEncoder(model, padding_frames=300)(features)
    assert model.shapes == [(80, 1300)]


def test_without_padding_frames_the_encoder_sees_what_faster_whisper_hands_it() -> None:
    model = Recorder()
    encoder = ReusedEncoder(model)
    encoder(padded(500))
    assert model.shapes == [(80, 3000)] and encoder.passes == 1

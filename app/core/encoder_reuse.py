"""One encoder pass where faster-whisper makes two.

When the language is not given, faster-whisper's `transcribe` (1.2.1) encodes the first 30 s to
detect the language, then encodes the same 30 s again to decode them (`generate_segments` gets no
encoder output). On whisper-base on one CPU thread the encoder is 0.79 s of a 1.9 s decode of an
11 s clip (docs/performance.md, "One encoder pass"). `ReusedEncoder` stands in for a model's
`encode`: the engine detects the language on the exact input `generate_segments` will encode first
and keeps the output; the next `encode` of an equal input gets it back instead of a second pass.
Any other input (a later 30 s, a changed faster-whisper) is encoded as before: a miss costs time,
never a different result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Languages = list[tuple[str, float]]
"""(ISO code, probability), most likely first."""


class ReusedEncoder:
    """A model's `encode`, holding at most one kept (input, output) pair."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._encode: Callable[[np.ndarray], Any] = model.encode
        self._kept: tuple[np.ndarray, Any] | None = None
        self.passes = 0
        """Encoder passes actually run (a kept output handed back is not one)."""

    def __call__(self, features: np.ndarray) -> Any:
        kept, self._kept = self._kept, None
        if kept is not None and kept[0].shape == features.shape and np.array_equal(kept[0], features):
            return kept[1]
        self.passes += 1
        return self._encode(features)

    def detect(self, pcm: np.ndarray) -> Languages:
        """The language ranking of the first 30 s of `pcm`, from the encoder output that decoding
        `pcm` will start from (kept for it)."""
        from faster_whisper.audio import pad_or_trim

        extractor = self._model.feature_extractor
        features = extractor(pcm)
        # What generate_segments encodes first: the content frames (all but the last) of the first
        # window, padded to the window.
        content_frames = features.shape[-1] - 1
        first = pad_or_trim(features[:, : min(extractor.nb_max_frames, content_frames)])
        self._kept = None
        output = self(first)
        self._kept = (first, output)
        return [(token[2:-2], float(p)) for token, p in self._model.model.detect_language(output)[0]]


def install(model: Any) -> ReusedEncoder:
    """Put a ReusedEncoder in place of `model.encode` (a faster_whisper.WhisperModel)."""
    reused = ReusedEncoder(model)
    model.encode = reused
    return reused

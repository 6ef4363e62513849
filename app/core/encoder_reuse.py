"""The encoder as faster-whisper should call it: once, and on the audio rather than 30 s of it.

When the language is not given, faster-whisper's `transcribe` (1.2.1) encodes the first 30 s to
detect the language, then encodes the same 30 s again to decode them (`generate_segments` gets no
encoder output). On whisper-base on one CPU thread the encoder is 0.79 s of a 1.9 s decode of an
11 s clip (docs/performance.md, "One encoder pass"). `ReusedEncoder` stands in for a model's
`encode`: the engine detects the language on the exact input `generate_segments` will encode first
and keeps the output; the next `encode` of an equal input gets it back instead of a second pass.
Any other input (a later 30 s, a changed faster-whisper) is encoded as before: a miss costs time,
never a different result.

faster-whisper also pads every window to 30 s of features (3000 frames) before the encoder, whose
cost grows with its input: on a 5 s clip 0.9 s of a 1.3 s decode goes to encoding 25 s of padding.
CTranslate2 takes shorter input (since 3.19), so the padding can be cut to `padding` frames after
the last frame of audio. With none Whisper loops (WER 172 % on the test clips); with 3 s the clips
decode to the same text at a third of the time (docs/performance.md, "The encoder sees the audio"),
but decoded as windows of a long file Whisper repeats its prompt where a window continues (WER
1.5 % -> 2.3 %). So it is off for requests and on for live partials, which are previews.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Languages = list[tuple[str, float]]
"""(ISO code, probability), most likely first."""


class ReusedEncoder:
    """A model's `encode`, holding at most one kept (input, output) pair."""

    def __init__(self, model: Any, padding_frames: int | None = None) -> None:
        self._model = model
        self.own: Callable[[np.ndarray], Any] = model.encode
        """The model's own encoder pass (CTranslate2 on the model's threads)."""
        self._encode = self.own
        self.padding = padding_frames
        """Frames of padding kept after the audio; None: all of faster-whisper's (to 3000). The
        engine sets it for each decode."""
        self._kept: tuple[np.ndarray, int | None, Any] | None = None
        self.passes = 0
        """Encoder passes actually run (a kept output handed back is not one)."""

    def run_on(self, encoder: Callable[[np.ndarray], Any] | None) -> None:
        """Encode with `encoder` (another copy's pass: the same weights on more threads, whose
        output this model's decoder takes as its own) until told otherwise; None: the model's own.
        A kept output stays valid: the copies compute the same encoder."""
        self._encode = encoder or self.own

    def __call__(self, features: np.ndarray) -> Any:
        kept, self._kept = self._kept, None
        if (
            kept is not None
            and kept[1] == self.padding
            and kept[0].shape == features.shape
            and np.array_equal(kept[0], features)
        ):
            return kept[2]
        self.passes += 1
        return self._encode(self._trimmed(features))

    def _trimmed(self, features: np.ndarray) -> np.ndarray:
        """`features` (mels x frames, or a batch of them) without the padding past `padding`.
        faster-whisper pads with exact zeros (pad_or_trim), which a log-mel frame of audio, even of
        digital silence, never is."""
        frames = features.shape[-1]
        if self.padding is None or frames <= self.padding:
            return features
        heard = np.flatnonzero(np.any(features != 0, axis=tuple(range(features.ndim - 1))))
        keep = min(frames, (int(heard[-1]) + 1 if len(heard) else 0) + self.padding)
        return features if keep == frames else np.ascontiguousarray(features[..., :keep])

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
        self._kept = (first, self.padding, output)
        return [(token[2:-2], float(p)) for token, p in self._model.model.detect_language(output)[0]]


def install(model: Any) -> ReusedEncoder:
    """Put a ReusedEncoder in place of `model.encode` (a faster_whisper.WhisperModel)."""
    reused = ReusedEncoder(model)
    model.encode = reused
    return reused

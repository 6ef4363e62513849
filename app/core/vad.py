"""Voice activity for live audio: the Silero VAD model faster-whisper ships, run frame by frame
with its recurrent state carried between calls (faster-whisper's own wrapper starts afresh on
every call, which suits whole files, not a stream).

The model is read from faster-whisper's installed assets without importing faster-whisper (that
would load CTranslate2 into the server process). Calls take about 3.5 ms per second of audio;
callers run them in a thread.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

FRAME = 512
"""Samples per probability at 16 kHz (32 ms)."""
CONTEXT = 64


@functools.cache
def _session() -> Any:
    import onnxruntime

    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("faster-whisper is not installed: its Silero VAD model is needed for live audio")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.log_severity_level = 4
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"], sess_options=options)


class StreamingVad:
    """Speech probability (0..1) per 32 ms frame of a 16 kHz stream fed in pieces of any size."""

    def __init__(self) -> None:
        self._session = _session()
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._rest = np.zeros(0, np.float32)

    def probabilities(self, pcm: np.ndarray) -> np.ndarray:
        """One probability for each whole frame completed by `pcm` (what is left waits for more)."""
        audio = np.concatenate([self._rest, pcm.astype(np.float32, copy=False)])
        frames = len(audio) // FRAME
        self._rest = audio[frames * FRAME :]
        if frames == 0:
            return np.zeros(0, np.float32)
        batch = audio[: frames * FRAME].reshape(frames, FRAME)
        previous = np.vstack([self._context[None, :], batch[:-1, -CONTEXT:]])
        self._context = batch[-1, -CONTEXT:].copy()
        inputs = {"input": np.hstack([previous, batch]), "h": self._h, "c": self._c}
        probabilities, self._h, self._c = self._session.run(None, inputs)
        return np.asarray(probabilities, np.float32).reshape(-1)

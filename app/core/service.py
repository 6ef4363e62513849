"""The one entry point adapters call: validates a neutral request, resolves its model, runs it."""

from __future__ import annotations

from dataclasses import replace

from app.core.errors import InvalidArgument
from app.core.models import ModelRegistry
from app.core.pool import DecoderPool, Job, OnSegment
from app.core.types import Lane, Task, Transcript, TranscriptionRequest


class SpeechService:
    def __init__(
        self,
        registry: ModelRegistry,
        pool: DecoderPool,
        *,
        max_alternatives: int,
        min_interval_seconds: float = 0.5,
        max_prompt_chars: int = 2048,
    ) -> None:
        self.registry = registry
        self.pool = pool
        self.max_alternatives = max_alternatives
        self.min_interval_seconds = min_interval_seconds
        self.max_prompt_chars = max_prompt_chars

    def prepare(self, request: TranscriptionRequest) -> TranscriptionRequest:
        """Check what can be checked before queueing; the returned request names a real model."""
        spec = self.registry.resolve(request.model)
        if not 1 <= request.alternatives <= self.max_alternatives:
            raise InvalidArgument(
                f"alternatives must be between 1 and {self.max_alternatives}", param="max_alternatives"
            )
        if not spec.multilingual:
            if request.task is Task.TRANSLATE:
                raise InvalidArgument(f"model {spec.name} is English-only and cannot translate", param="model")
            if request.language not in (None, "en"):
                raise InvalidArgument(
                    f"model {spec.name} is English-only; language {request.language!r} is not supported",
                    param="language",
                )
        if not 0.0 <= request.temperature <= 1.0:
            raise InvalidArgument("temperature must be between 0 and 1", param="temperature")
        self._check_bounds(request)
        return replace(request, model=spec.name)

    def _check_bounds(self, request: TranscriptionRequest) -> None:
        """What a request may ask for is bounded by its audio, not by how it is phrased: every
        interval costs a window, so each has a minimum length (their sum is checked against the
        audio once decoded); a prompt's length is bounded before the model counts its tokens."""
        short = [(a, b) for a, b in request.intervals if b - a < self.min_interval_seconds]
        if short:
            raise InvalidArgument(
                f"{len(short)} intervals are shorter than {self.min_interval_seconds:g} s (e.g. {list(short[0])})",
                param="intervals",
            )
        for text, param in ((request.prompt or "", "prompt"), (" ".join(request.phrases), "phrases")):
            if len(text) > self.max_prompt_chars:
                raise InvalidArgument(
                    f"{param} is {len(text)} characters; at most {self.max_prompt_chars} are accepted", param=param
                )

    def submit(
        self, request: TranscriptionRequest, on_segment: OnSegment | None = None, *, lane: Lane = Lane.INTERACTIVE
    ) -> Job:
        """Admit a request now (Overloaded if its lane is full); the caller awaits `job.future`."""
        return self.pool.submit(self.prepare(request), on_segment, lane=lane)

    def cancel(self, job: Job) -> None:
        """Drop a submitted request that is no longer wanted (waiting windows dropped, running aborted)."""
        self.pool.cancel(job)

    async def transcribe(
        self, request: TranscriptionRequest, on_segment: OnSegment | None = None, *, lane: Lane = Lane.INTERACTIVE
    ) -> Transcript:
        return await self.pool.transcribe(self.prepare(request), on_segment, lane=lane)

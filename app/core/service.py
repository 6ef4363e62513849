"""The one entry point adapters call: validates a neutral request, resolves its model, runs it."""

from __future__ import annotations

from dataclasses import replace

from app.core.errors import InvalidArgument
from app.core.models import ModelRegistry
from app.core.pool import DecoderPool, Job, OnSegment
from app.core.types import Lane, Task, Transcript, TranscriptionRequest


class SpeechService:
    def __init__(self, registry: ModelRegistry, pool: DecoderPool, *, max_alternatives: int) -> None:
        self.registry = registry
        self.pool = pool
        self.max_alternatives = max_alternatives

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
        return replace(request, model=spec.name)

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

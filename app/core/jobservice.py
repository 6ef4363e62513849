"""What the job APIs (Google long-running operations, Prosa jobs) call: submit, get, wait, cancel,
list. Adapters translate their wire format to and from these; the store, the runner and the pool
stay behind this service."""

from __future__ import annotations

import asyncio
from typing import Any

from app.core.codec import request_to_dict
from app.core.fetch import FetchConfig, check_scheme
from app.core.jobs import JobRecord, JobStore, cancel
from app.core.runner import JobRunner
from app.core.service import SpeechService
from app.core.types import TranscriptionRequest


class JobService:
    def __init__(
        self, store: JobStore, runner: JobRunner, speech: SpeechService, fetch: FetchConfig, retention: float
    ) -> None:
        self.store = store
        self.runner = runner
        self.speech = speech
        self.fetch = fetch
        self.retention = retention

    async def submit(
        self,
        job_id: str,
        kind: str,
        request: TranscriptionRequest,
        meta: dict[str, Any],
        *,
        audio: bytes | None = None,
        uri: str | None = None,
        uri_param: str = "uri",
    ) -> JobRecord:
        """Check everything that can be checked now (model, options, URI scheme), store the job
        (Overloaded past the store's caps) and wake the runner. `request.audio` is ignored."""
        if uri is not None:
            check_scheme(uri, self.fetch, param=uri_param)
        core = self.speech.prepare(request)
        record = JobRecord(id=job_id, kind=kind, request=request_to_dict(core), meta={**meta, "uri": uri})
        await self.store.create(record, audio)
        self.runner.notify()
        return record

    async def get(self, job_id: str, kind: str) -> JobRecord | None:
        record = await self.store.get(job_id)
        return record if record is not None and record.kind == kind else None

    async def wait(self, job_id: str, timeout: float, stop: asyncio.Event | None = None) -> JobRecord | None:
        return await self.runner.wait(job_id, timeout, stop)

    async def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a job not yet ended; a running one stops at its next lease renewal."""
        record = await self.store.update(job_id, lambda r: cancel(r, self.retention))
        if record is not None and record.status.terminal:
            self.runner.ended(job_id)
        return record

    async def page(self, kind: str, size: int, token: str | None) -> tuple[list[JobRecord], str | None]:
        return await self.store.page(kind, size, token)

    async def count(self, kind: str) -> int:
        return await self.store.count(kind)

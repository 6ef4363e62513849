"""Typed access to what the app factory puts on app.state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from starlette.requests import HTTPConnection

from app.core.errors import Unavailable
from app.core.fetch import FetchConfig
from app.core.jobservice import JobService
from app.core.live_events import LiveConfig
from app.core.models import ModelRegistry
from app.core.service import SpeechService
from app.metrics import Metrics
from app.settings import Settings

NOT_READY = "The server is still loading its models. Retry after polling /v1/health/ready."


def settings_of(request: HTTPConnection) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def metrics_of(request: HTTPConnection) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def jobs_of(request: Request) -> JobService:
    """The job service, once the server is ready (Unavailable before)."""
    return ready_jobs(request.app.state)


def service_of(request: Request) -> SpeechService:
    return ready_service(request.app.state)


def ready_jobs(state: Any) -> JobService:
    """jobs_of for a front without a Request (gRPC)."""
    jobs: JobService | None = state.job_service
    if jobs is None:
        raise Unavailable(NOT_READY)
    return jobs


def ready_service(state: Any) -> SpeechService:
    """service_of for a front without a Request (gRPC)."""
    service: SpeechService | None = state.service
    if service is None or not service.pool.ready:
        raise Unavailable(NOT_READY)
    return service


def is_ready(request: Request) -> bool:
    """Models loaded, decoders up, and not draining for a shutdown (readiness probes)."""
    return state_ready(request.app.state)


def state_ready(state: Any) -> bool:
    """is_ready for a front without a Request (gRPC health)."""
    service: SpeechService | None = state.service
    return service is not None and service.pool.ready and not state.draining


def live_config(settings: Settings) -> LiveConfig:
    """A live stream's session settings, the same for every front that opens one."""
    return LiveConfig(
        partial_interval_ms=settings.live_partial_ms,
        partial_encoder_padding_seconds=settings.live_partial_encoder_padding_seconds,
        final_head_start_ms=settings.live_final_head_start_ms,
        max_backlog_seconds=settings.live_max_backlog_seconds,
    )


@contextlib.asynccontextmanager
async def live_slot(state: Any) -> AsyncIterator[SpeechService]:
    """One of `realtime_max_sessions` live sessions (every front's: WebSocket and gRPC streams), and
    the ready speech service; Unavailable if the server is not ready or every slot is taken."""
    service: SpeechService | None = state.service
    if service is None or not service.pool.ready or state.draining:
        raise Unavailable("The server is not ready; retry shortly.")
    limit = state.settings.realtime_max_sessions
    if state.live_sessions >= limit:
        raise Unavailable(f"{limit} live sessions are open, the most this server takes")
    state.live_sessions += 1
    state.metrics.live_sessions.set(state.live_sessions)
    try:
        yield service
    finally:
        state.live_sessions -= 1
        state.metrics.live_sessions.set(state.live_sessions)


def registry_of(request: Request) -> ModelRegistry | None:
    """The installed models, once found at start-up (None before)."""
    registry: ModelRegistry | None = request.app.state.registry
    return registry


def fetch_of(request: Request) -> FetchConfig:
    fetch: FetchConfig = request.app.state.fetch
    return fetch


def released(request: Request) -> asyncio.Event:
    """Set at shutdown's last step: waits on jobs end then, answered with what is known."""
    event: asyncio.Event = request.app.state.released
    return event

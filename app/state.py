"""Typed access to what the app factory puts on app.state."""

from __future__ import annotations

from fastapi import Request

from app.core.errors import Unavailable
from app.core.jobservice import JobService
from app.core.service import SpeechService
from app.metrics import Metrics
from app.settings import Settings

NOT_READY = "The server is still loading its models. Retry after polling /v1/health/ready."


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def jobs_of(request: Request) -> JobService:
    """The job service, once the server is ready (Unavailable before)."""
    jobs: JobService | None = request.app.state.job_service
    if jobs is None:
        raise Unavailable(NOT_READY)
    return jobs


def service_of(request: Request) -> SpeechService:
    service: SpeechService | None = request.app.state.service
    if service is None or not service.pool.ready:
        raise Unavailable(NOT_READY)
    return service

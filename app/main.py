"""The app factory: settings in, FastAPI app out; the pool and models are built in the lifespan."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import app as package
from app.core.audio import DecodeLimits
from app.core.engine import EngineFactory, PipelineConfig
from app.core.errors import SttError, Unavailable
from app.core.fetch import FetchConfig
from app.core.heap import trim_periodically
from app.core.jobs import JobStore, StoreCaps
from app.core.jobservice import JobService
from app.core.jobstore_redis import RedisJobStore
from app.core.jobstore_sqlite import SqliteJobStore
from app.core.models import ModelRegistry, build_registry
from app.core.pool import DecoderPool, LaneConfig, PoolConfig
from app.core.punctuation_service import PunctuationService
from app.core.ratelimit import RateLimiter
from app.core.runner import JobRunner, RunnerConfig
from app.core.service import SpeechService
from app.core.types import Lane
from app.core.whisper import WhisperConfig
from app.core.windows import WindowConfig
from app.grpc.server import GrpcFront
from app.metrics import Metrics
from app.page import router as page
from app.protocols import docs, fallback, nim, websocket
from app.protocols.bodies import openapi_with_bodies
from app.protocols.ekstep import router as ekstep
from app.protocols.google import router as google
from app.protocols.google import speech as google_speech
from app.protocols.mod9 import router as mod9
from app.protocols.openai.router import router as openai_router
from app.protocols.prosa import router as prosa
from app.protocols.realtime import router as realtime
from app.protocols.yandex import router as yandex
from app.settings import Settings

log = logging.getLogger("asr")
GRPC_STOP_GRACE_SECONDS = 2.0
"""By then a drained server has answered every call it could (app/server.py's release step)."""


def create_app(
    settings: Settings | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    registry: ModelRegistry | None = None,
) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        grpc_front = GrpcFront(app.state, settings) if settings.grpc_port else None
        if grpc_front is not None:
            await grpc_front.start()
        # Load in the background: liveness answers at once, readiness says 503 until this ends.
        starting = asyncio.create_task(_start(app, settings, metrics, engine_factory, registry))
        trimming = (
            asyncio.create_task(trim_periodically(settings.heap_trim_seconds)) if settings.heap_trim_seconds else None
        )
        try:
            yield
        finally:
            starting.cancel()
            if trimming is not None:
                trimming.cancel()
                await asyncio.gather(trimming, return_exceptions=True)
            if grpc_front is not None:  # no new calls, and none left running, before the pool stops
                await grpc_front.stop(GRPC_STOP_GRACE_SECONDS)
            if app.state.runner is not None:
                await app.state.runner.stop()
            if app.state.jobs is not None:
                await app.state.jobs.close()
            pool: DecoderPool | None = app.state.pool
            if pool is not None:
                await pool.stop()
            await app.state.rate_limiter.close()

    app = FastAPI(
        title="ASR server",
        version=package.__version__,
        lifespan=lifespan,
        docs_url=None,  # served by app.protocols.docs, behind the key and without a CDN
        redoc_url=None,
        openapi_url=None,
    )
    app.openapi = openapi_with_bodies(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.registry = None
    app.state.pool = None
    app.state.draining = False
    app.state.released = asyncio.Event()

    async def release() -> None:
        """Shutdown's last step: running jobs back to the queue, then every request still decoding
        answered with a retryable 503 in its envelope (see app.server)."""
        app.state.released.set()
        if app.state.runner is not None:
            await app.state.runner.stop()
        if app.state.pool is not None:
            app.state.pool.fail_all(
                Unavailable("the server is restarting; retry", retry_after=max(1, round(settings.drain_seconds)))
            )

    app.state.release = release
    app.state.service = None
    app.state.jobs = None
    app.state.runner = None
    app.state.job_service = None
    app.state.fetch = fetch_config(settings)
    app.state.punctuation = PunctuationService(
        max_chars=settings.punctuate_max_chars,
        concurrency=settings.punctuate_concurrency,
        max_waiting=settings.punctuate_max_waiting,
    )
    app.state.rate_limiter = RateLimiter(settings.key_rate_limit, redis_url=settings.redis_url)
    app.include_router(openai_router)
    app.include_router(google.router)
    app.include_router(prosa.router)
    app.include_router(yandex.router)
    app.include_router(nim.health)
    app.include_router(nim.router)
    app.include_router(docs.router)
    websocket.install(app)
    realtime.install(app)
    app.include_router(mod9.router)
    app.include_router(ekstep.router)
    app.include_router(ekstep.preflight)
    app.mount(docs.ASSETS, docs.assets(), name="docs-assets")
    page.install(app)
    app.add_middleware(RequestObserver, metrics=metrics)

    fallback.install(app)
    return app


async def _start(
    app: FastAPI, settings: Settings, metrics: Metrics, factory: EngineFactory | None, registry: ModelRegistry | None
) -> None:
    try:
        if registry is None:
            registry = await asyncio.to_thread(
                build_registry, settings.models, settings.extra_models, settings.default_model, settings.cache_dir
            )
        app.state.registry = registry
        if factory is None:
            factory = WhisperConfig(
                models=tuple(registry.specs.values()),
                compute_type=settings.compute_type,
                threads=settings.threads_per_worker,
                wide_threads=settings.wide_threads if settings.workers > 1 else 0,
                beam_size=settings.beam_size,
            )
        # Decoded PCM of workers killed mid-request is left behind; nothing else lives there.
        await asyncio.to_thread(_clear_stale_audio, settings.tmp_dir)
        pool = DecoderPool(factory, pool_config(settings), observer=metrics)
        app.state.pool = pool
        metrics.bind_pool(pool, settings.workers + settings.queue_size)
        await pool.start()
        service = SpeechService(
            registry,
            pool,
            max_alternatives=settings.max_alternatives,
            min_interval_seconds=settings.min_interval_seconds,
            max_prompt_chars=settings.max_prompt_chars,
        )
        store = await asyncio.to_thread(open_job_store, settings)
        app.state.jobs = store
        loaders = {"google": google_speech.job_loader(app.state.fetch), "prosa": prosa.job_loader(app.state.fetch)}
        runner = JobRunner(store, service, lambda record, s: loaders[record.kind](record, s), runner_config(settings))
        app.state.runner = runner
        app.state.job_service = JobService(store, runner, service, app.state.fetch, settings.job_retention_seconds)
        runner.start()
        app.state.service = service
        log.info("ready: %d workers, models %s", settings.workers, ", ".join(registry.specs))
    except SttError as exc:
        log.error("start-up failed: %s", exc.message)
    except Exception:
        log.exception("start-up failed")


def open_job_store(settings: Settings) -> JobStore:
    caps = StoreCaps(max_active_jobs=settings.job_max_active, max_audio_bytes=settings.job_max_audio_bytes)
    if settings.redis_url:
        return RedisJobStore(settings.redis_url, caps=caps)
    return SqliteJobStore(settings.data_dir / "jobs.sqlite3", caps=caps)


def runner_config(settings: Settings) -> RunnerConfig:
    return RunnerConfig(
        concurrency=settings.jobs_concurrency,
        lease_seconds=settings.job_lease_seconds,
        max_attempts=settings.job_max_attempts,
        retention_seconds=settings.job_retention_seconds,
    )


def fetch_config(settings: Settings) -> FetchConfig:
    return FetchConfig(
        allowed_schemes=frozenset(s.lower() for s in settings.allowed_uri_schemes),
        file_root=settings.file_uri_root,
        allow_private=settings.fetch_allow_private,
        max_bytes=settings.fetch_max_bytes,
        timeout=settings.fetch_timeout_seconds,
        max_redirects=settings.fetch_max_redirects,
        tmp_dir=settings.data_dir / "fetch",
        s3_endpoint=settings.s3_endpoint_url,
        gcs_endpoint=settings.gcs_endpoint_url,
        total_timeout=settings.fetch_total_seconds,
    )


def _clear_stale_audio(folder: Path) -> None:
    for pattern in ("pcm-*.f32", "upload-*"):
        for stale in folder.glob(pattern):
            stale.unlink(missing_ok=True)


def pool_config(settings: Settings) -> PoolConfig:
    limits = DecodeLimits(
        max_seconds=settings.max_audio_seconds,
        max_decoded_bytes=settings.max_decoded_bytes,
        max_channels=settings.max_channels,
        max_sample_rate=settings.max_sample_rate,
    )
    return PoolConfig(
        workers=settings.workers,
        queue_size=settings.queue_size,
        retry_after=settings.retry_after_seconds,
        job_retries=settings.job_retries,
        worker_max_jobs=settings.worker_max_jobs,
        pipeline=PipelineConfig(
            limits=limits,
            tmp_dir=settings.tmp_dir,
            block_seconds=settings.block_seconds,
            windows=WindowConfig(max_seconds=settings.window_max_seconds),
            min_audio_seconds=settings.min_audio_seconds,
        ),
        lanes={
            Lane.LIVE: LaneConfig(settings.live_queue_size, settings.live_deadline_seconds),
            Lane.INTERACTIVE: LaneConfig(settings.queue_size, settings.interactive_deadline_seconds),
            Lane.BACKGROUND: LaneConfig(settings.background_queue_size, settings.background_deadline_seconds),
        },
        window_deadline=settings.window_deadline_seconds,
        plan_deadline=settings.plan_deadline_seconds,
        batch_size=settings.batch_size,
        wide=settings.workers > 1 and settings.wide_threads > settings.threads_per_worker,
        reserve=settings.reserve_workers,
        starve_seconds=settings.lane_starve_seconds,
        nice=settings.worker_nice,
        heap_trim_seconds=settings.heap_trim_seconds,
        worker_mmap_threshold_bytes=settings.worker_mmap_threshold_bytes,
    )


class RequestObserver:
    """Pure ASGI (BaseHTTPMiddleware would break disconnect detection): request id, latency, counts."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"openai-processing-ms", str(round((time.perf_counter() - started) * 1000)).encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", "unmatched")
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)
            if status < 400:
                self.metrics.request_success.labels(label).inc()
            else:
                self.metrics.request_failure.labels(label, str(status)).inc()

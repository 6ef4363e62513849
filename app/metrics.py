"""Prometheus metrics: NIM's request counters plus ASR figures, on a registry owned by one app."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from app.core.pool import DecoderPool
from app.core.types import Lane, Transcript

# Geometric buckets (x2) from 50 ms to about 27 minutes.
SECONDS_BUCKETS = tuple(0.05 * 2**i for i in range(16))
RTF_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.request_success = Counter(
            "request_success", "Requests answered with a 2xx/3xx status.", ["route"], registry=r
        )
        self.request_failure = Counter(
            "request_failure", "Requests answered with an error status.", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "e2e_request_latency_seconds",
            "Time from request to response.",
            ["route"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.running = Gauge("num_requests_running", "Decoders busy now.", registry=r)
        self.waiting = Gauge("num_requests_waiting", "Requests waiting for a decoder.", registry=r)
        self.capacity = Gauge("num_request_max", "Requests that can be decoding or waiting at once.", registry=r)
        self.queue_depth = Gauge("asr_queue_depth", "Requests waiting in the admission queue.", registry=r)
        self.in_flight = Gauge("asr_in_flight_requests", "Requests on a decoder now.", registry=r)
        self.workers_ready = Gauge("asr_workers_ready", "Decoder processes loaded and serving.", registry=r)
        self.audio_seconds = Counter("asr_audio_seconds", "Seconds of audio transcribed.", ["model"], registry=r)
        self.processing = Histogram(
            "asr_processing_seconds",
            "Decode and inference time per request.",
            ["model"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "asr_queue_wait_seconds", "Time a request waited for a decoder.", buckets=SECONDS_BUCKETS, registry=r
        )
        self.live_sessions = Gauge(
            "asr_live_sessions", "Live sessions open now (WebSocket and gRPC streams).", registry=r
        )
        self.live_first_partial = Histogram(
            "asr_live_first_partial_seconds",
            "Time from a live session's start to its first interim text.",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.live_final_latency = Histogram(
            "asr_live_final_latency_seconds",
            "Time from the end of a live utterance (VAD or commit) to its final text.",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.rtf = Histogram(
            "asr_real_time_factor_ratio",
            "Processing seconds per audio second.",
            ["model"],
            buckets=RTF_BUCKETS,
            registry=r,
        )
        self.rejected_total = Counter("asr_rejected_requests", "Requests refused, by reason.", ["reason"], registry=r)
        self.cancelled_total = Counter(
            "asr_cancelled_requests", "Requests cancelled because the client left.", ["stage"], registry=r
        )
        self.assignments = Counter(
            "asr_assignments",
            "Work handed to decoders: plans and windows, by lane (wide: on every core).",
            ["lane", "kind", "wide"],
            registry=r,
        )
        self.windows = Counter("asr_windows", "Windows of audio handed to decoders, by lane.", ["lane"], registry=r)
        self.worker_exits = Counter(
            "asr_worker_exits", "Decoder processes that exited and were replaced.", ["reason"], registry=r
        )

    def bind_pool(self, pool: DecoderPool, capacity: int) -> None:
        self.running.set_function(lambda: pool.in_flight)
        self.in_flight.set_function(lambda: pool.in_flight)
        self.waiting.set_function(lambda: pool.queue_depth)
        self.queue_depth.set_function(lambda: pool.queue_depth)
        self.workers_ready.set_function(lambda: pool.workers_ready)
        self.capacity.set(capacity)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # -- PoolObserver -------------------------------------------------------------------------
    def cancelled(self, stage: str) -> None:
        self.cancelled_total.labels(stage).inc()

    def worker_exited(self, reason: str) -> None:
        self.worker_exits.labels(reason).inc()

    def assigned(self, lane: Lane, kind: str, windows: int, wide: bool) -> None:
        self.assignments.labels(lane.name.lower(), kind, str(wide).lower()).inc()
        if windows:
            self.windows.labels(lane.name.lower()).inc(windows)

    def finished(self, transcript: Transcript, waited: float) -> None:
        model = transcript.model
        self.audio_seconds.labels(model).inc(transcript.duration * transcript.channels)
        self.processing.labels(model).observe(transcript.processing_seconds)
        self.queue_wait.observe(max(waited, 0.0))
        if transcript.duration > 0:
            self.rtf.labels(model).observe(transcript.processing_seconds / transcript.duration)

    def rejected(self, reason: str) -> None:
        self.rejected_total.labels(reason).inc()

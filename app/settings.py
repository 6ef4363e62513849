"""Every setting of the server, read from ASR_* environment variables (documented in the README)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "asr-server"


def _cpus() -> int:
    """CPUs this process may use (cgroup-pinned affinity included)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASR_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "0.0.0.0"
    """Address the HTTP server binds to."""
    port: int = Field(default=9000, ge=1, le=65535)
    """Port the HTTP server listens on (NIM's default)."""
    log_level: str = "info"
    """Python logging level name."""

    workers: int = Field(default_factory=lambda: _cpus(), ge=1)
    """Decoder worker processes; each loads every enabled model once."""
    lane_starve_seconds: float = Field(default=10.0, gt=0)
    """A lane whose work waited this long without a worker is served before higher lanes: a flood
    of live streams slows interactive requests and jobs, it never stops them."""
    reserve_workers: int = Field(default=1, ge=0)
    """Extra decoder processes for live and interactive work that would otherwise wait for a regular
    worker's background (or, for live work, interactive) window to finish; they never take
    background work. Each holds its own copy of the models."""
    worker_nice: int = Field(default=10, ge=0, le=19)
    """OS niceness of the regular workers: a reserve worker and the event loop get the CPU first."""
    threads_per_worker: int = Field(default=1, ge=1)
    """CTranslate2 threads inside one worker (2 workers x 1 thread beat 1 x 2 on 2 cores)."""
    queue_size: int = Field(default=16, ge=0)
    """Synchronous requests admitted beyond one per worker; past it new ones fail fast with 503."""
    retry_after_seconds: int = Field(default=2, ge=1, le=60)
    """Retry-After sent with 503 when the queue is full (the OpenAI SDK honours 1-60 s)."""
    worker_max_jobs: int = Field(default=1000, ge=0)
    """A worker is replaced after this many jobs to bound leaks (0: never)."""
    job_retries: int = Field(default=1, ge=0)
    """Times a window (or plan) whose worker crashed or hung is tried again before its request fails."""

    default_model: str = "whisper-base"
    """Model used when a request names `default`, `whisper-1` or no model."""
    models: Annotated[list[str], NoDecode] = ["whisper-base", "whisper-tiny.en"]
    """Comma-separated registry names to load in every worker."""
    extra_models: dict[str, Path] = {}
    """JSON object of your own CTranslate2 Whisper folders, e.g. {"my-model": "/models/x"}."""
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    """Where split weight packages are joined once (atomic rename, sha256 checked)."""
    data_dir: Path = Path("data")
    """Folder for spooled audio and, later, the job store."""
    compute_type: str = "int8"
    """CTranslate2 compute type on the CPU: int8 (default), int8_float32 or float32."""
    beam_size: int = Field(default=5, ge=1, le=20)
    """Beam width when the request does not choose one."""
    batch_size: int = Field(default=1, ge=1, le=64)
    """Compatible windows a worker decodes in one CTranslate2 call (1: no batching; see docs/performance.md)."""
    block_seconds: float = Field(default=300.0, ge=30)
    """Long audio is searched for speech block by block of about this length (bounded memory)."""
    window_max_seconds: float = Field(default=30.0, ge=5, le=30)
    """Longest window of audio decoded as one unit of work, cut at speech pauses (Whisper sees 30 s)."""
    wide_threads: int = Field(default_factory=lambda: _cpus(), ge=0)
    """Threads for the encoder of a lone window while every other worker idles (its decoder keeps the
    worker's threads; each worker holds a second copy of the models for it): a live final 1.13 ->
    0.94 s after its commit, one client's throughput +16 % (docs/performance.md); 0: off."""
    min_audio_seconds: float = Field(default=0.1, ge=0)
    """Shorter audio is refused with 400 (OpenAI's own minimum): no word fits, yet it costs a window."""
    min_interval_seconds: float = Field(default=0.5, ge=0.05)
    """Shortest client interval (Mod9 intervalsJson); each costs a window, and their sum may not
    exceed the audio's length, so repeats and overlaps count."""
    max_prompt_chars: int = Field(default=2048, ge=1)
    """Longest prompt or phrase-hint text accepted before the model counts its tokens (Whisper reads
    at most 223 tokens of either; longer is refused with 400)."""
    live_queue_size: int = Field(default=32, ge=0)
    """Live-stream windows admitted beyond one per worker; past it new ones fail fast."""
    background_queue_size: int = Field(default=16, ge=0)
    """Durable jobs admitted to the pool beyond one per worker."""
    live_deadline_seconds: float = Field(default=120.0, ge=0)
    """Deadline of one live-stream window from admission to result (0: none)."""
    interactive_deadline_seconds: float = Field(default=1800.0, ge=0)
    """Deadline of a synchronous request from admission to result (0: none); then DeadlineExceeded."""
    background_deadline_seconds: float = Field(default=21600.0, ge=0)
    """Deadline of one run of a durable job in the pool (0: none)."""
    window_deadline_seconds: float = Field(default=120.0, gt=0)
    """A worker still on one window after this long is hung: it is killed and replaced."""
    plan_deadline_seconds: float = Field(default=600.0, gt=0)
    """The same for decoding a request's file and cutting its windows."""

    key_rate_limit: int = Field(default=0, ge=0)
    """Requests (and WebSocket sessions) one API key may start per minute; 0: no limit. Past it: 429
    with Retry-After until the minute ends, in each protocol's envelope. Shared by every replica
    through ASR_REDIS_URL when set."""
    realtime_max_sessions: int = Field(default=16, ge=1)
    """Live sessions at once (every WebSocket dialect and gRPC StreamingRecognize); past it: an error
    event and close 1013 (gRPC: UNAVAILABLE)."""
    realtime_session_seconds: float = Field(default=1800.0, gt=0)
    """Longest live session (OpenAI's 30 minutes); then an error event and close 1000."""
    realtime_idle_seconds: float = Field(default=120.0, gt=0)
    """A live session without any client message for this long is closed (audio of silence is a
    message: a quiet speaker is never cut off)."""
    realtime_max_message_bytes: int = Field(default=15 * 1024 * 1024, ge=1024)
    """Largest WebSocket message (OpenAI's 15 MiB append limit); bigger: close 1009."""
    live_partial_ms: int = Field(default=1000, ge=100)
    """Least time between two interim decodes of one live utterance."""
    live_partial_encoder_padding_seconds: float = Field(default=3.0, ge=1.0, le=30.0)
    """Padding the encoder sees after a partial's audio, where faster-whisper pads to 30 s: a third
    of the time for the same text on the clips (docs/performance.md); 30: all of it."""
    live_final_head_start_ms: int = Field(default=300, ge=0)
    """A live final's decode starts this long before the server VAD's silence ends the utterance,
    and is dropped if speech comes back: the final is out that much sooner after the commit
    (docs/performance.md, Realtime); 0: decode only after the commit."""
    live_max_backlog_seconds: float = Field(default=60.0, gt=0)
    """Audio of one live session not yet decoded; past it the client is read no faster, and after
    10 s more it gets an Overloaded error (a chunked upload waits up to its request deadline)."""
    upload_silence_ms: int = Field(default=1500, ge=100, le=10_000)
    """A chunked upload's utterances end at pauses this long: longer than a live turn's, since no
    one waits for a turn, and Whisper hears a long utterance better than its phrases one by one."""

    max_upload_bytes: int = Field(default=26_214_400, ge=1)
    """Largest OpenAI upload (whole multipart body), counted while reading; 413 past it."""
    max_audio_seconds: float = Field(default=7200.0, gt=0)
    """Longest decoded audio accepted, counted while decoding."""
    max_decoded_bytes: int = Field(default=2 * 1024**3, ge=1)
    """Cap on PCM the decoder may produce before resampling, whatever headers claim."""
    max_channels: int = Field(default=8, ge=1)
    """Most audio channels accepted."""
    max_sample_rate: int = Field(default=192_000, ge=8000)
    """Highest input sample rate accepted (forged rates are refused)."""
    max_alternatives: int = Field(default=100, ge=1)
    """Most n-best alternatives a request may ask for (Google paths stop at Google's 30; Mod9's go on)."""
    max_form_fields: int = Field(default=64, ge=1)
    """Most multipart form fields in one request."""
    max_form_field_bytes: int = Field(default=65_536, ge=1)
    """Largest non-file multipart field (e.g. prompt)."""

    allowed_uri_schemes: Annotated[list[str], NoDecode] = Field(
        default=[], validation_alias=AliasChoices("ASR_ALLOWED_URI_SCHEMES", "ASR_REST_API_ALLOWED_URI_SCHEMES")
    )
    """Audio URI schemes to accept (file, http, https, s3, gs); none by default. Mod9's
    ASR_REST_API_ALLOWED_URI_SCHEMES is read too."""
    file_uri_root: Path | None = None
    """The only folder file:// URIs may read from (symlinks resolved); unset: file:// refused."""
    fetch_allow_private: bool = False
    """Let http(s) URIs reach loopback, private and link-local addresses (off: SSRF guard)."""
    fetch_max_bytes: int = Field(default=1024**3, ge=1)
    """Largest audio fetched from a URI, counted while downloading."""
    fetch_total_seconds: float = Field(default=600.0, gt=0)
    """Whole-fetch deadline of an audio URI, however slowly its origin trickles bytes."""
    fetch_timeout_seconds: float = Field(default=30.0, gt=0)
    """Connect and read timeout for http(s), S3 and GCS fetches."""
    fetch_max_redirects: int = Field(default=3, ge=0)
    """http(s) redirects followed, each hop checked again."""
    s3_endpoint_url: str | None = None
    """S3-compatible endpoint (MinIO, moto); credentials come from the standard AWS variables."""
    gcs_endpoint_url: str | None = None
    """GCS endpoint (an emulator); STORAGE_EMULATOR_HOST and Google credentials are read as usual."""

    redis_url: str | None = None
    """Job store in Redis (shared by replicas), e.g. redis://localhost:6379/0; unset: SQLite in ASR_DATA_DIR."""
    job_concurrency: int | None = Field(default=None, ge=1)
    """Jobs decoded at once by this server (default: ASR_WORKERS), leaving queue room for sync requests."""
    job_lease_seconds: float = Field(default=30.0, ge=1)
    """A running job's lease; a job whose server died runs again once it expires."""
    job_max_attempts: int = Field(default=3, ge=1)
    """Times a job may be started (crashes, restarts) before it fails."""
    job_max_active: int = Field(default=256, ge=1)
    """Jobs queued or running at once (Google, Prosa); past it a new job is refused with 429
    RESOURCE_EXHAUSTED / rate_limited."""
    job_max_audio_bytes: int = Field(default=1 << 30, ge=1)
    """Uploaded job audio held in the job store at once (deleted when each job ends); past it 429."""
    job_retention_seconds: float = Field(default=432_000.0, gt=0)
    """How long finished jobs and their results are kept (5 days, as Google); then 404."""

    google_max_request_bytes: int = Field(default=10_485_760, ge=1)
    """Largest Google JSON request (inline base64 audio), counted while reading; Google's own is 10 MB."""
    google_sync_max_seconds: float = Field(default=3600.0, gt=0)
    """Longest audio speech:recognize accepts (Google: 60 s; Mod9: none); longer goes to longrunningrecognize."""
    google_models: dict[str, str] = {
        "default": "default",
        "latest_long": "default",
        "latest_short": "default",
        "video": "default",
        "phone_call": "default",
        "command_and_search": "default",
    }
    """Google model names -> registry names (JSON object)."""

    google_stream_max_seconds: float = Field(default=305.0, gt=0)
    """Longest StreamingRecognize stream (Google's 305 s); then OUT_OF_RANGE, which Google's
    endless-streaming samples answer by opening a new stream."""
    google_stream_idle_seconds: float = Field(default=15.0, gt=0)
    """A StreamingRecognize stream with no audio for this long ends with OUT_OF_RANGE (Google's
    "Audio Timeout Error")."""

    grpc_port: int = Field(default=50051, ge=0, le=65535)
    """Port of the gRPC server (Google Speech, Operations, NVIDIA Riva ASR, health, reflection) in
    the same process; 0 turns it off."""
    grpc_max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest gRPC message either way (a Recognize request carries its audio); bigger:
    RESOURCE_EXHAUSTED before it is read whole."""
    grpc_max_streams: int = Field(default=256, ge=1)
    """Calls one gRPC connection may have open at once."""

    openspeech_max_request_bytes: int = Field(default=10_485_760, ge=1)
    """Largest Open API (EkStep) JSON request, counted while reading (its deployments' nginx: 10 MB)."""
    openspeech_max_uri_bytes: int = Field(default=3_145_728, ge=1)
    """Largest audio an Open API audioUri may point to (the seed's supported_content_length)."""
    openspeech_max_audio_seconds: float = Field(default=900.0, gt=0)
    """Longest audio item of an Open API recognize (the seed's 15 minutes); longer is refused."""
    openspeech_max_audio_items: int = Field(default=16, ge=1)
    """Audio items one Open API recognize may carry (each is decoded, in parallel)."""
    openspeech_stream_max_users: int = Field(default=4, ge=1)
    """Users one recognize_audio stream may carry at once (each is a live session)."""
    punctuate_max_chars: int = Field(default=20_000, ge=1)
    """Longest text /v1/punctuate takes (about 3,500 words; the model runs in about 0.5 ms a word)."""
    punctuate_concurrency: int = Field(default=2, ge=1)
    """Punctuation requests run at once (threads of the server process); more wait their turn."""
    punctuate_max_waiting: int = Field(default=64, ge=0)
    """Punctuation requests waiting for a turn; past it 429 (Overloaded), as the decoder lanes."""

    prosa_max_request_bytes: int = Field(default=10_485_760, ge=1)
    """Largest Prosa JSON request (base64 audio), counted while reading."""
    prosa_sync_seconds: float = Field(default=60.0, ge=0)
    """How long a Prosa `wait: true` request blocks before it answers with the job still queued."""
    prosa_max_audio_seconds: float | None = Field(default=None, gt=0)
    """Longest audio a Prosa job accepts; unset: ASR_MAX_AUDIO_SECONDS, which it may not exceed (for
    Prosa's documented 4 h, set ASR_MAX_AUDIO_SECONDS=14400)."""
    prosa_models: dict[str, str] = {"stt-general": "default"}
    """Prosa model names -> registry names (JSON object); registry names work as they are."""

    yandex_max_unchunked_bytes: int = Field(default=1_048_576, ge=1)
    """Largest /asr_xml body sent with Content-Length (Yandex: 1 MB); chunked uploads may go past it."""
    yandex_max_stream_bytes: int = Field(default=268_435_456, ge=1)
    """Largest chunked /asr_xml upload, counted while reading."""
    yandex_default_lang: str = "ru-RU"
    """Language when /asr_xml names none (Yandex's default)."""
    yandex_topics: dict[str, str] = {
        topic: "default"
        for topic in ("queries", "notes", "dates", "names", "numbers", "maps", "music", "buying", "general", "freeform")
    }
    """Yandex topics -> registry names (JSON object); registry names work as topics too."""
    yandex_variants: int = Field(default=5, ge=1, le=5)
    """<variant> hypotheses in an /asr_xml answer (n-best, at most 5)."""
    max_connections: int = Field(default=512, ge=1)
    """Open HTTP connections at once; past it a new one is answered 503 and closed (bounded fds)."""
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """A request's head must be complete this long after its connection opens or the last response."""
    max_header_bytes: int = Field(default=32_768, ge=1024)
    """Largest request head (request line and headers); past it 431 and the connection is closed."""
    body_progress_seconds: float = Field(default=20.0, gt=0)
    """Period over which a request body must bring ASR_BODY_MIN_BYTES (while the server reads it)."""
    body_min_bytes: int = Field(default=1024, ge=0)
    """Fewer body bytes in a period closes the connection (1 KB per 20 s: any real audio is faster)."""
    drain_seconds: float = Field(default=5.0, ge=0)
    """After SIGTERM, readiness answers 503 this long while requests are still accepted (so the
    load balancer stops sending them before connections are refused)."""
    grace_seconds: float = Field(default=15.0, ge=0)
    """Then requests in flight may finish for this long; what is left gets a retryable 503 and
    running jobs go back to the queue. Keep drain + grace + 5 below terminationGracePeriodSeconds."""
    keep_alive_seconds: float = Field(default=5.0, gt=0)
    """An idle keep-alive connection is closed after this long."""
    heap_trim_seconds: float = Field(default=60.0, ge=0)
    """How often the server hands memory freed by its threads back to the system (glibc's
    malloc_trim; docs/reliability.md, Soak), and each worker after an assignment; 0: never."""
    worker_mmap_threshold_bytes: int = Field(default=0, ge=0, le=32 * 2**20)
    """A worker maps each allocation of this many bytes or more on its own and frees it back to
    the system at once (glibc's M_MMAP_THRESHOLD, fixed; docs/reliability.md, Soak); 0: glibc's
    own threshold, which rises with the blocks freed."""

    api_keys: Annotated[list[str], NoDecode] = []
    """Comma-separated API keys; when set, every API route needs one (health and metrics do not)."""

    @field_validator("models", "api_keys", "allowed_uri_schemes", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.prosa_max_audio_seconds is not None and self.prosa_max_audio_seconds > self.max_audio_seconds:
            raise ValueError(
                f"ASR_PROSA_MAX_AUDIO_SECONDS ({self.prosa_max_audio_seconds:g}) exceeds "
                f"ASR_MAX_AUDIO_SECONDS ({self.max_audio_seconds:g}), which every request obeys"
            )
        return self

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def jobs_concurrency(self) -> int:
        return self.job_concurrency or self.workers

"""Every setting of the server, read from ASR_* environment variables (documented in the README)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "asr-server"


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASR_", extra="ignore", frozen=True)

    host: str = "0.0.0.0"
    """Address the HTTP server binds to."""
    port: int = Field(default=9000, ge=1, le=65535)
    """Port the HTTP server listens on (NIM's default)."""
    log_level: str = "info"
    """Python logging level name."""

    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    """Decoder worker processes; each loads every enabled model once."""
    threads_per_worker: int = Field(default=1, ge=1)
    """CTranslate2 threads inside one worker (2 workers x 1 thread beat 1 x 2 on 2 cores)."""
    queue_size: int = Field(default=16, ge=0)
    """Requests that may wait for a free worker; past it new ones fail fast with 503."""
    retry_after_seconds: int = Field(default=2, ge=1, le=60)
    """Retry-After sent with 503 when the queue is full (the OpenAI SDK honours 1-60 s)."""
    worker_max_jobs: int = Field(default=1000, ge=0)
    """A worker is replaced after this many jobs to bound leaks (0: never)."""
    job_retries: int = Field(default=1, ge=0)
    """Times a job whose worker crashed is tried again before it fails."""

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
    batched_min_seconds: float = Field(default=60.0, ge=0)
    """Audio at least this long uses the batched VAD pipeline (2x faster on long files)."""
    batch_size: int = Field(default=8, ge=1, le=64)
    """Windows decoded together by the batched pipeline."""
    block_seconds: float = Field(default=300.0, ge=30)
    """Long audio is transcribed in blocks of about this length, cut at a quiet point."""

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
    max_alternatives: int = Field(default=30, ge=1)
    """Most n-best alternatives a request may ask for."""
    max_form_fields: int = Field(default=64, ge=1)
    """Most multipart form fields in one request."""
    max_form_field_bytes: int = Field(default=65_536, ge=1)
    """Largest non-file multipart field (e.g. prompt)."""

    api_keys: Annotated[list[str], NoDecode] = []
    """Comma-separated API keys; when set, every API route needs one (health and metrics do not)."""

    @field_validator("models", "api_keys", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

"""POST/GET/DELETE /v2/speech/stt: Prosa-style jobs on the shared job store."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.core.codec import request_to_dict, transcript_from_dict
from app.core.errors import InvalidArgument, NotFound
from app.core.fetch import FetchConfig, UriRefused
from app.core.jobs import AudioLoader, JobRecord, JobStatus, JobStore, cancel
from app.core.types import AudioInput, TranscriptionRequest
from app.protocols.prosa.errors import error_fields, render_error
from app.protocols.shared import decode_base64, job_audio_loader, read_json
from app.state import service_of, settings_of
from app.web import check_api_key, error_route

router = APIRouter(route_class=error_route(render_error), tags=["prosa"])
STATUS = {
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "in_progress",
    JobStatus.DONE: "complete",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
UNSUPPORTED = (
    "enable_speech_insights",
    "enable_voice_insights",
    "enable_conversation_analytics",
    "include_partial_results",
)
REQUEST_ECHO = ("label", "uri", "duration", "mime_type", "sample_rate", "channels")


def _store(request: Request) -> JobStore:
    check_api_key(request.headers.get("x-api-key"), settings_of(request).api_keys)
    store: JobStore | None = request.app.state.jobs
    if store is None:
        service_of(request)  # raises Unavailable while starting
    assert store is not None
    return store


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _model_info(name: str) -> dict[str, Any]:
    return {"name": name, "label": f"ASR {name}", "language": "multilingual (detected)", "domain": "general",
            "acoustic": "recording", "channels": 1, "samplerate": 16000}  # fmt: skip


@router.get("/v2/speech/stt/models", summary="Models a job may name")
async def models(request: Request) -> JSONResponse:
    _store(request)
    registry = request.app.state.registry
    names = list(settings_of(request).prosa_models) + (sorted(registry.specs) if registry else [])
    return JSONResponse([_model_info(n) for n in dict.fromkeys(names)])


@router.post("/v2/speech/stt", summary="Submit a transcription job (wait: true blocks up to the sync budget)")
async def submit(request: Request) -> JSONResponse:
    store = _store(request)
    settings = settings_of(request)
    body = await read_json(request, settings.prosa_max_request_bytes)
    config, audio_request = body.get("config"), body.get("request")
    if not isinstance(config, dict) or not isinstance(audio_request, dict):
        raise InvalidArgument("'config' and 'request' objects are required", param="config")
    model = config.get("model") or config.get("engine")
    if not isinstance(model, str) or not model:
        raise InvalidArgument("config.model (or config.engine) is required", param="config.model")
    for field in UNSUPPORTED:
        if config.get(field):
            raise InvalidArgument(f"config.{field} is not supported by this server", param=f"config.{field}")
    if int(config.get("speaker_count") or 1) != 1:
        raise InvalidArgument(
            "config.speaker_count above 1 (diarization) is not supported", param="config.speaker_count"
        )
    content = audio_request.get("data", audio_request.get("audio"))
    uri = audio_request.get("uri")
    if (content is None) == (uri is None):
        raise InvalidArgument("One of 'data' or 'uri' is required (not both)", param="request.data")
    data = None
    if content is not None:
        data = await decode_base64(content, "request.data")
    else:
        scheme = str(uri).split(":", 1)[0].lower()
        if scheme not in request.app.state.fetch.allowed_schemes:
            raise UriRefused(f"URI scheme {scheme!r} is not enabled on this server", param="request.uri")
    core = TranscriptionRequest(
        audio=AudioInput(data=data or b"", path=None),
        model=settings.prosa_models.get(model, model),
        punctuation=bool(config.get("auto_punctuation", False)),
        max_seconds=settings.prosa_max_audio_seconds,
    )
    core = service_of(request).prepare(core)
    job_config = {"model": model, "wait": bool(config.get("wait", False))} | {
        k: v for k, v in config.items() if k not in ("model", "engine", "wait")
    }
    record = JobRecord(
        id=uuid.uuid4().hex,
        kind="prosa",
        request=request_to_dict(core),
        meta={
            "uri": uri,
            "model": model,
            "config": job_config,
            "request": {k: audio_request[k] for k in REQUEST_ECHO if k in audio_request},
        },
    )
    await store.create(record, data)
    request.app.state.runner.notify()
    if job_config["wait"]:
        record = await _wait(store, record, settings.prosa_sync_seconds)
    return JSONResponse(job_body(record))


async def _wait(store: JobStore, record: JobRecord, budget: float) -> JobRecord:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        current = await store.get(record.id)
        if current is None or current.status.terminal:
            return current or record
        record = current
        await asyncio.sleep(0.1)
    return record


def job_body(record: JobRecord, *, with_result: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_id": record.id,
        "status": STATUS[record.status],
        "created_at": _stamp(record.created),
        "modified_at": _stamp(record.updated),
        "request": record.meta["request"],
        "job_config": record.meta["config"],
        "progress": {"total": round(record.progress, 1), "details": {}},
        "model": _model_info(record.meta["model"]),
    }
    if not with_result:
        return body
    if record.status is JobStatus.DONE and record.result is not None:
        transcript = transcript_from_dict(record.result)
        body["result"] = {
            "data": [
                {
                    "transcript": s.text,
                    "final": True,
                    "time_start": s.start,
                    "time_end": s.end,
                    "channel": s.channel,
                    "speaker_tag": 1,
                }
                for s in transcript.segments
                if s.text
            ],
            "latency": round(transcript.processing_seconds, 3),
            "speaker_count": 1,
        }
    elif record.error is not None:
        _, error = error_fields(
            record.error.get("kinds") or [record.error["kind"]], record.error["message"], record.error.get("param")
        )
        body["result"] = {"error": error["code"], "code": error["code"], "message": error["message"]}
    return body


@router.get("/v2/speech/stt", summary="List jobs, newest first (no results, no audio)")
async def list_jobs(request: Request) -> JSONResponse:
    store = _store(request)
    query = request.query_params
    for unsupported in ("from_date", "until_date", "query_text", "sort_by", "sort_ascend"):
        if unsupported in query:
            raise InvalidArgument(
                f"the {unsupported} filter is not supported; jobs are listed newest first", param=unsupported
            )
    page, per_page = query.get("page", "1"), query.get("per_page", "10")
    if not page.isdigit() or not per_page.isdigit() or int(page) < 1 or not 1 <= int(per_page) <= 100:
        raise InvalidArgument("page must be >= 1 and per_page between 1 and 100", param="page")
    size = int(per_page)
    records, _ = await store.page("prosa", size, str((int(page) - 1) * size))
    total = await store.count("prosa")
    return JSONResponse(
        {
            "pagination": {"page": int(page), "per_page": size, "page_count": max(1, math.ceil(total / size))},
            "length": total,
            "data": [job_body(r, with_result=False) for r in records],
        }
    )


async def _record(request: Request, job_id: str) -> JobRecord:
    record = await _store(request).get(job_id)
    if record is None or record.kind != "prosa":
        raise NotFound(f"job {job_id} not found", param="job_id")
    return record


@router.get("/v2/speech/stt/{job_id}", summary="A job with its result")
async def get_job(request: Request, job_id: str) -> JSONResponse:
    return JSONResponse(job_body(await _record(request, job_id)))


@router.get("/v2/speech/stt/{job_id}/status", summary="A job's status only")
async def get_status(request: Request, job_id: str) -> JSONResponse:
    record = await _record(request, job_id)
    body = job_body(record, with_result=False)
    return JSONResponse({k: body[k] for k in ("job_id", "status", "created_at", "modified_at")})


@router.delete("/v2/speech/stt/{job_id}", summary="Cancel a job that has not finished")
async def delete_job(request: Request, job_id: str) -> JSONResponse:
    await _record(request, job_id)
    retention = settings_of(request).job_retention_seconds
    record = await _store(request).update(job_id, lambda r: cancel(r, retention))
    assert record is not None
    return JSONResponse(job_body(record))


def job_loader(fetch: FetchConfig) -> AudioLoader:
    return job_audio_loader(fetch)

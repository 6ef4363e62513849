"""POST/GET/DELETE /v2/speech/stt: Prosa-style jobs on the shared job store."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.core.codec import transcript_from_dict
from app.core.errors import InvalidArgument, NotFound, SttError
from app.core.fetch import FetchConfig
from app.core.jobs import JobRecord, JobStatus
from app.core.runner import AudioLoader
from app.core.types import TranscriptionRequest
from app.protocols.bodies import json_body
from app.protocols.prosa.errors import error_fields, render_error
from app.protocols.prosa.schemas import SubmitJob
from app.protocols.shared import decode_base64, job_audio_loader, parse_wire, read_json
from app.state import jobs_of, registry_of, released, settings_of
from app.web import error_route, require_api_key, until_disconnect

router = APIRouter(
    route_class=error_route(render_error),
    tags=["prosa"],
    dependencies=[require_api_key(lambda request: request.headers.get("x-api-key"))],
)
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
MAX_PAGE = 1_000_000
REQUEST_ECHO = ("label", "uri", "duration", "mime_type", "sample_rate", "channels")


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _model_info(name: str, multilingual: bool = True) -> dict[str, Any]:
    language = "multilingual (detected)" if multilingual else "en"
    return {"name": name, "label": f"ASR {name}", "language": language, "domain": "general",
            "acoustic": "recording", "channels": 1, "samplerate": 16000}  # fmt: skip


@router.get("/v2/speech/stt/models", summary="Models a job may name")
async def models(request: Request) -> JSONResponse:
    jobs_of(request)  # Unavailable while starting
    registry = registry_of(request)
    names = list(settings_of(request).prosa_models) + (sorted(registry.specs) if registry else [])
    return JSONResponse([_model_info(n, _multilingual(request, n)) for n in dict.fromkeys(names)])


def _multilingual(request: Request, name: str) -> bool:
    registry = registry_of(request)
    target = settings_of(request).prosa_models.get(name, name)
    try:
        return bool(registry.resolve(target).multilingual) if registry else True
    except SttError:
        return True


@router.post(
    "/v2/speech/stt",
    summary="Submit a transcription job (wait: true blocks up to the sync budget)",
    openapi_extra=json_body(SubmitJob),
)
async def submit(request: Request) -> JSONResponse:
    settings = settings_of(request)
    body = parse_wire(SubmitJob, await read_json(request, settings.prosa_max_request_bytes))
    config, audio_request = body.config, body.request
    model = config.model_name
    if not model:
        raise InvalidArgument("config.model (or config.engine) is required", param="config.model")
    for field in UNSUPPORTED:
        if getattr(config, field):
            raise InvalidArgument(f"config.{field} is not supported by this server", param=f"config.{field}")
    if config.speaker_count != 1:
        raise InvalidArgument(
            "config.speaker_count above 1 (diarization) is not supported", param="config.speaker_count"
        )
    content, uri = audio_request.data, audio_request.uri
    if (content is None) == (uri is None):
        raise InvalidArgument("One of 'data' or 'uri' is required (not both)", param="request.data")
    data = await decode_base64(content, "request.data") if content is not None else None
    core = TranscriptionRequest(
        model=settings.prosa_models.get(model, model),
        punctuation=config.auto_punctuation,
        max_seconds=settings.prosa_max_audio_seconds,
    )
    given = config.model_dump(exclude_unset=True)
    job_config = {"model": model, "wait": config.wait} | {
        k: v for k, v in given.items() if k not in ("model", "engine", "wait")
    }
    meta = {
        "model": model,
        "config": job_config,
        "request": audio_request.model_dump(include=set(REQUEST_ECHO), exclude_unset=True),
    }
    jobs = jobs_of(request)
    record = await jobs.submit(uuid.uuid4().hex, "prosa", core, meta, audio=data, uri=uri, uri_param="request.uri")
    if job_config["wait"]:
        # Woken when the job ends; a server shutting down answers with the job as it stands.
        waited = await until_disconnect(request, jobs.wait(record.id, settings.prosa_sync_seconds, released(request)))
        record = waited or record
    return JSONResponse(job_body(record))


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
    jobs = jobs_of(request)
    query = request.query_params
    for unsupported in ("from_date", "until_date", "query_text", "sort_by", "sort_ascend"):
        if unsupported in query:
            raise InvalidArgument(
                f"the {unsupported} filter is not supported; jobs are listed newest first", param=unsupported
            )
    page, per_page = query.get("page", "1"), query.get("per_page", "10")
    if not _number(page, 1, MAX_PAGE) or not _number(per_page, 1, 100):
        raise InvalidArgument(f"page must be 1 to {MAX_PAGE} and per_page 1 to 100", param="page")
    size = int(per_page)
    records, _ = await jobs.page("prosa", size, str((int(page) - 1) * size))
    total = await jobs.count("prosa")
    return JSONResponse(
        {
            "pagination": {"page": int(page), "per_page": size, "page_count": max(1, math.ceil(total / size))},
            "length": total,
            "data": [job_body(r, with_result=False) for r in records],
        }
    )


def _number(text: str, low: int, high: int) -> bool:
    return text.isdigit() and len(text) <= 9 and low <= int(text) <= high


async def _record(request: Request, job_id: str) -> JobRecord:
    record = await jobs_of(request).get(job_id, "prosa")
    if record is None:
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
    record = await jobs_of(request).cancel(job_id)
    if record is None:
        raise NotFound(f"job {job_id} not found", param="job_id")
    return JSONResponse(job_body(record))


def job_loader(fetch: FetchConfig) -> AudioLoader:
    return job_audio_loader(fetch)

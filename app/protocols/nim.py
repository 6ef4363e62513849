"""NVIDIA NIM management surface: health, models, version, metadata, metrics (+ Kubernetes aliases)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

import app
from app.core.errors import NotFound
from app.core.models import ALIASES
from app.protocols.openai.errors import render_error
from app.state import is_ready, metrics_of, registry_of, settings_of
from app.web import bearer_token, error_route, require_api_key

health = APIRouter(route_class=error_route(render_error), tags=["nim"])
"""Probes and metrics: no key (Kubernetes and Prometheus send none)."""
router = APIRouter(route_class=error_route(render_error), tags=["nim"], dependencies=[require_api_key(bearer_token)])
STARTED = int(time.time())


def _health(status: str, message: str) -> dict[str, Any]:
    return {"object": "health.response", "message": message, "status": status}


@health.head("/v1/health/live", include_in_schema=False)
@health.get("/v1/health/live", summary="Liveness: the process serves HTTP")
@health.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
async def live() -> dict[str, Any]:
    return _health("live", "Service is live.")


@health.head("/v1/health/ready", include_in_schema=False)
@health.get("/v1/health/ready", summary="Readiness: models loaded and decoders up")
@health.api_route("/readyz", methods=["GET", "HEAD"], include_in_schema=False)
async def ready(request: Request) -> JSONResponse:
    if is_ready(request):
        return JSONResponse(_health("ready", "Service is ready."))
    body = {"error": {"message": "Service is not ready", "type": "service_unavailable", "code": 503}}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


def _model_entries(request: Request) -> list[dict[str, Any]]:
    registry = registry_of(request)
    names = sorted(registry.specs) if registry else []
    aliases = [
        alias for alias, target in ALIASES.items() if registry and (target or registry.default) in registry.specs
    ]
    return [{"id": name, "object": "model", "created": STARTED, "owned_by": "openai"} for name in names + aliases]


@router.get("/v1/models", summary="Models this server can use (OpenAI list)")
async def list_models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": _model_entries(request)}


@router.get("/v1/models/{model_id:path}", summary="One model")
async def get_model(request: Request, model_id: str) -> dict[str, Any]:
    for entry in _model_entries(request):
        if entry["id"] == model_id:
            return entry
    raise NotFound(f"The model `{model_id}` does not exist", param="model")


@router.get("/v1/version", summary="Server release and API version")
async def version() -> dict[str, str]:
    return {"release": app.__version__, "api": "1.0.0"}


@router.get("/v1/metadata", summary="Models, limits and licences")
async def metadata(request: Request) -> dict[str, Any]:
    settings = settings_of(request)
    registry = registry_of(request)
    specs = list(registry.specs.values()) if registry else []
    return {
        "version": app.__version__,
        "repository_override": "",
        "selectedModelProfileId": f"cpu-{settings.compute_type}-{settings.workers}x{settings.threads_per_worker}",
        "assetInfo": [spec.path.name for spec in specs],  # names only: paths tell a client nothing it needs
        "licenseInfo": {"name": "MIT", "path": "NOTICE", "sha": "", "type": "Whisper weights by OpenAI (MIT)"},
        "modelInfo": [
            {
                "name": spec.name,
                "shortName": spec.name,
                "default": registry is not None and spec.name == registry.default,
                "multilingual": spec.multilingual,
                "tasks": ["transcribe", "translate"] if spec.multilingual else ["transcribe"],
                "sha256": spec.sha256,
                "source": spec.source,
            }
            for spec in specs
        ],
        "limits": {
            "max_upload_bytes": settings.max_upload_bytes,
            "max_audio_seconds": settings.max_audio_seconds,
            "max_alternatives": settings.max_alternatives,
            "queue_size": settings.queue_size,
            "workers": settings.workers,
        },
        # The languages /v1/punctuate restores marks and casing for (others come back unchanged).
        "punctuationLanguages": list(request.app.state.punctuation.languages),
    }


@health.get("/v1/metrics", summary="Prometheus metrics")
@health.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(metrics_of(request).render(), media_type=CONTENT_TYPE_LATEST)

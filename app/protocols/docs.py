"""The API reference, /docs and /openapi.json: behind the API key like every other API route, with
Swagger UI's files served from the installed swagger-ui-bundle (an offline server reaches no CDN)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from app.protocols.openai.errors import render_error
from app.web import bearer_token, error_route, require_api_key

ASSETS = "/docs/assets"


def any_key(request: Request) -> str | None:
    """Whichever way a protocol's client sends its key; `?key=` also works from a browser."""
    headers = request.headers
    return (
        request.query_params.get("key")
        or bearer_token(request)
        or headers.get("x-api-key")
        or headers.get("x-goog-api-key")
    )


router = APIRouter(
    route_class=error_route(render_error), include_in_schema=False, dependencies=[require_api_key(any_key)]
)


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    schema: dict[str, Any] = request.app.openapi()
    return JSONResponse(schema)


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    key = request.query_params.get("key")
    return get_swagger_ui_html(
        openapi_url="/openapi.json" + (f"?key={quote(key)}" if key else ""),
        title=f"{request.app.title} - API reference",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
    )


def assets() -> StaticFiles:
    """Swagger UI's own scripts and styles: public files, no data of this server."""
    return StaticFiles(directory=str(swagger_ui_path))

"""The page at `/`: record from the microphone over the realtime WebSocket, or upload a file to the
OpenAI endpoint. Plain HTML, CSS and a module script served from this package: no build step, no CDN
(an offline server reaches nothing else). The page holds no data, so it is public; the API key a
user types is kept in the browser and sent with each request like any other client's."""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.core.languages import NAMES

STATIC = Path(__file__).parent / "static"
ASSETS = "/page"

router = APIRouter(include_in_schema=False)


@cache
def _index() -> str:
    options = "\n".join(
        f'      <option value="{code}">{html.escape(name.title())}</option>'
        for code, name in sorted(NAMES.items(), key=lambda item: item[1])
    )
    return (STATIC / "index.html").read_text(encoding="utf-8").replace("      <!--LANGUAGES-->", options)


@router.get("/")
async def index(request: Request) -> HTMLResponse:
    host = request.headers.get("host", "")
    policy = (
        "default-src 'self'; "
        f"connect-src 'self' ws://{host} wss://{host}; "
        "media-src 'self' blob:; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(_index(), headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="page-assets")

"""Core errors -> Prosa's error body {code, message, context, recovery, request_id} and status."""

from __future__ import annotations

import uuid

from fastapi.responses import JSONResponse

from app.core.errors import MethodNotAllowed, Overloaded, SttError, Unavailable, kinds

# kind -> (HTTP status, Prosa error code)
TABLE: dict[str, tuple[int, str]] = {
    "invalid_argument": (422, "validation_error"),
    "unsupported_media": (422, "unsupported_audio"),
    "uri_refused": (422, "uri_refused"),
    "audio_too_long": (422, "audio_too_long"),
    "payload_too_large": (413, "request_too_large"),
    "method_not_allowed": (405, "method_not_allowed"),
    "unauthenticated": (401, "unauthorized"),
    "not_found": (404, "not_found"),
    "overloaded": (429, "rate_limited"),
    "unavailable": (503, "service_unavailable"),
    "deadline_exceeded": (504, "timeout"),
    "cancelled": (499, "cancelled"),
    "internal": (500, "internal_error"),
}


def error_fields(kind_list: list[str], message: str, param: str | None) -> tuple[int, dict[str, object]]:
    status, code = next((TABLE[k] for k in kind_list if k in TABLE), TABLE["internal"])
    body: dict[str, object] = {"code": code, "message": message, "context": {"param": param} if param else {}}
    return status, body


def render_error(error: SttError) -> JSONResponse:
    status, body = error_fields(kinds(error), error.message, error.param)
    retry_after = error.retry_after if isinstance(error, Overloaded | Unavailable) else 0
    body["recovery"] = {"retryable": bool(retry_after), "retry_after_seconds": retry_after}
    body["request_id"] = uuid.uuid4().hex
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = error.allow
    return JSONResponse(body, status_code=status, headers=headers)

"""Core errors -> OpenAI's {"error": {message, type, param, code}} envelope and status."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from app.core.errors import MethodNotAllowed, Overloaded, SttError, Unavailable, kinds

# kind -> (HTTP status, error type, error code)
TABLE: dict[str, tuple[int, str, str | None]] = {
    "invalid_argument": (400, "invalid_request_error", None),
    "unsupported_media": (400, "invalid_request_error", "unsupported_format"),
    "method_not_allowed": (405, "invalid_request_error", "method_not_allowed"),
    "unauthenticated": (401, "invalid_request_error", "invalid_api_key"),
    "not_found": (404, "invalid_request_error", "not_found"),
    "payload_too_large": (413, "server_error", None),
    "audio_too_long": (400, "invalid_request_error", "audio_too_long"),
    "rate_limited": (429, "requests", "rate_limit_exceeded"),
    "overloaded": (503, "server_error", "overloaded"),
    "unavailable": (503, "server_error", "service_unavailable"),
    "deadline_exceeded": (504, "server_error", "timeout"),
    "cancelled": (499, "server_error", "cancelled"),
    "internal": (500, "server_error", None),
}


def error_body(error: SttError) -> tuple[int, dict[str, object]]:
    status, kind, code = next((TABLE[k] for k in kinds(error) if k in TABLE), TABLE["internal"])
    if error.kind == "not_found" and error.param == "model":
        code = "model_not_found"
    return status, {"error": {"message": error.message, "type": kind, "param": error.param, "code": code}}


def render_error(error: SttError) -> JSONResponse:
    status, body = error_body(error)
    headers = {}
    if isinstance(error, Overloaded | Unavailable):
        headers["Retry-After"] = str(error.retry_after)
    if error.kind == "unauthenticated":
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = error.allow
    return JSONResponse(body, status_code=status, headers=headers)

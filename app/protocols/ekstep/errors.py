"""Core errors -> the Open API's envelope: {"status": "ERROR", "output": [], "status_text": ...}.

The seed's gRPC server ends a call with INVALID_ARGUMENT and the message as its details; its REST
front (envoy's transcoder) gives no body of its own, so the body here carries the same message."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from app.core.errors import InvalidArgument, MethodNotAllowed, Overloaded, SttError, Unavailable, kinds

UNKNOWN = "An unknown error has occurred.Please try again."  # the seed's text, spacing and all


class ContentTypeRefused(InvalidArgument):
    """The seed's REST routes match `Content-Type: application/json` only."""

    kind = "content_type_refused"


STATUS = {
    "content_type_refused": 406,
    "method_not_allowed": 405,
    "not_found": 404,
    "payload_too_large": 413,
    "invalid_argument": 400,
    "unauthenticated": 401,
    "overloaded": 429,
    "unavailable": 503,
    "deadline_exceeded": 504,
    "cancelled": 499,
}


def error_body(message: str) -> dict[str, object]:
    return {"status": "ERROR", "output": [], "status_text": message}


def render_error(error: SttError) -> JSONResponse:
    status = next((STATUS[k] for k in kinds(error) if k in STATUS), 500)
    headers = {"Access-Control-Allow-Origin": "*"}  # a browser page reads the error too
    if isinstance(error, Overloaded | Unavailable):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = error.allow
    message = UNKNOWN if status == 500 else error.message
    return JSONResponse(error_body(message), status_code=status, headers=headers)

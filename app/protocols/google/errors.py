"""Core errors -> Google's {"error": {code, message, status}} and google.rpc codes for operations."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from app.core.errors import MethodNotAllowed, Overloaded, PayloadTooLarge, SttError, Unavailable, kinds

# kind -> (HTTP status, google.rpc.Code name, google.rpc.Code number)
TABLE: dict[str, tuple[int, str, int]] = {
    "invalid_argument": (400, "INVALID_ARGUMENT", 3),
    "payload_too_large": (400, "INVALID_ARGUMENT", 3),
    "audio_too_long": (400, "INVALID_ARGUMENT", 3),
    "out_of_range": (400, "OUT_OF_RANGE", 11),
    "method_not_allowed": (405, "INVALID_ARGUMENT", 3),
    "unauthenticated": (401, "UNAUTHENTICATED", 16),
    "not_found": (404, "NOT_FOUND", 5),
    "overloaded": (429, "RESOURCE_EXHAUSTED", 8),
    "unavailable": (503, "UNAVAILABLE", 14),
    "deadline_exceeded": (504, "DEADLINE_EXCEEDED", 4),
    "cancelled": (499, "CANCELLED", 1),
    "internal": (500, "INTERNAL", 13),
}


def classify(error: SttError) -> tuple[int, str, int]:
    return next((TABLE[k] for k in kinds(error) if k in TABLE), TABLE["internal"])


CORE_FIELDS = {"intervals": "config.intervalsJson", "phrases": "config.speechContexts"}


def message(error: SttError) -> str:
    if isinstance(error, PayloadTooLarge) and error.param != "uri":
        return f"Request payload size exceeds the limit: {error.limit} bytes."
    if error.param in CORE_FIELDS:
        return f"Invalid recognition '{CORE_FIELDS[error.param]}': {error.message}"
    return error.message


def rpc_status(error: dict[str, object]) -> dict[str, object]:
    """A stored job error as Operation.error: {code: rpc number, message} (no HTTP status inside)."""
    names = error.get("kinds") or [error.get("kind")]
    assert isinstance(names, list)
    number = next((TABLE[k][2] for k in names if isinstance(k, str) and k in TABLE), 13)
    return {"code": number, "message": error.get("message", "")}


def render_error(error: SttError) -> JSONResponse:
    status, name, _ = classify(error)
    headers = {}
    if isinstance(error, Overloaded | Unavailable):
        headers["Retry-After"] = str(error.retry_after)
    if error.kind == "unauthenticated":
        headers["WWW-Authenticate"] = 'Bearer realm="asr"'
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = error.allow
    return JSONResponse(
        {"error": {"code": status, "message": message(error), "status": name}}, status_code=status, headers=headers
    )

"""Core errors -> gRPC status codes, with the google.rpc.Status details Google's clients read
(RetryInfo for a retryable refusal, BadRequest naming the field)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from app.core.errors import Overloaded, SttError, Unavailable, kinds
from app.protocols.google.errors import message as google_message

# kind -> gRPC code (the google.rpc.Code numbers are gRPC's)
CODES: dict[str, grpc.StatusCode] = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "payload_too_large": grpc.StatusCode.INVALID_ARGUMENT,
    "audio_too_long": grpc.StatusCode.INVALID_ARGUMENT,
    "out_of_range": grpc.StatusCode.OUT_OF_RANGE,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "overloaded": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "deadline_exceeded": grpc.StatusCode.DEADLINE_EXCEEDED,
    "cancelled": grpc.StatusCode.CANCELLED,
    "internal": grpc.StatusCode.INTERNAL,
}


def code_of(error: SttError) -> grpc.StatusCode:
    return next((CODES[k] for k in kinds(error) if k in CODES), grpc.StatusCode.INTERNAL)


def status_of(error: SttError) -> grpc.Status:
    """The status to end a call with: code, message and google.rpc.Status in the trailers."""
    code = code_of(error)
    text = google_message(error)
    details: list[any_pb2.Any] = []
    if isinstance(error, Overloaded | Unavailable):
        retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=error.retry_after))
        details.append(_packed(retry))
    if error.param and code is grpc.StatusCode.INVALID_ARGUMENT:
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.param, description=text)
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    # gRPC's code numbers are google.rpc.Code's.
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=text, details=details))


def _packed(message: error_details_pb2.RetryInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    wrapped = any_pb2.Any()
    wrapped.Pack(message)
    return wrapped

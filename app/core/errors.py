"""The one error tree every protocol adapter maps to its own envelope.

    SttError
     ├── InvalidArgument        the request is malformed or asks for something unsupported
     │    ├── UnsupportedMedia  the audio cannot be decoded (not audio, unknown codec)
     │    ├── OutOfRange        a stream past its length or idle limit (Google's OUT_OF_RANGE)
     │    └── MethodNotAllowed  a known path asked with a method it does not serve
     ├── Unauthenticated        missing or wrong API key
     ├── NotFound               unknown model, job or operation
     ├── PayloadTooLarge        more bytes than the limit, counted while reading
     ├── AudioTooLong           more decoded seconds than the limit, counted while decoding
     ├── Overloaded             admission queue full; retry after `retry_after` seconds
     ├── Unavailable            not ready (models loading, pool down)
     ├── DeadlineExceeded       took longer than allowed
     ├── Cancelled              the client went away or cancelled the job
     └── Internal               a bug or a crashed worker

Errors cross the worker-process boundary as (kind, message, param), see `to_wire`/`from_wire`.
"""

from __future__ import annotations


class SttError(Exception):
    kind = "internal"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidArgument(SttError):
    kind = "invalid_argument"


class UnsupportedMedia(InvalidArgument):
    kind = "unsupported_media"


class OutOfRange(InvalidArgument):
    kind = "out_of_range"


class MethodNotAllowed(InvalidArgument):
    kind = "method_not_allowed"

    def __init__(self, message: str, *, allow: str = "") -> None:
        super().__init__(message)
        self.allow = allow


class Unauthenticated(SttError):
    kind = "unauthenticated"


class NotFound(SttError):
    kind = "not_found"


class PayloadTooLarge(SttError):
    kind = "payload_too_large"

    def __init__(self, limit: int, seen: int, *, param: str | None = None) -> None:
        super().__init__(f"Maximum content size limit ({limit}) exceeded ({seen} bytes read)", param=param)
        self.limit = limit
        self.seen = seen


class AudioTooLong(SttError):
    kind = "audio_too_long"


class Overloaded(SttError):
    kind = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(SttError):
    kind = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(SttError):
    kind = "deadline_exceeded"


class Cancelled(SttError):
    kind = "cancelled"


class Internal(SttError):
    kind = "internal"


_BY_KIND: dict[str, type[SttError]] = {
    cls.kind: cls
    for cls in (
        InvalidArgument,
        UnsupportedMedia,
        OutOfRange,
        Unauthenticated,
        NotFound,
        AudioTooLong,
        DeadlineExceeded,
        Cancelled,
        Internal,
    )
}


def kinds(error: SttError) -> list[str]:
    """The error's kind and its parents' kinds, most specific first (for per-protocol tables)."""
    return [cls.kind for cls in type(error).__mro__ if issubclass(cls, SttError)]


def to_wire(error: SttError) -> tuple[str, str, str | None]:
    return error.kind, error.message, error.param


def from_wire(kind: str, message: str, param: str | None) -> SttError:
    cls = _BY_KIND.get(kind, Internal)
    return cls(message, param=param)

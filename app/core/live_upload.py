"""An upload recognised while it arrives (Yandex's chunked /asr_xml): a live session with the server
VAD and no partials, whose finals are put together as one transcript once the body has ended.

The session does the cutting (at pauses the VAD hears), the context (each utterance gets the last
one's words as its prompt, and the first one's language) and the bounds (past the backlog the body
is read no faster); this module only feeds it and collects.
"""

from __future__ import annotations

from types import TracebackType

from app.core.errors import AudioTooLong
from app.core.live import Failed, Final, LiveConfig, LiveSession
from app.core.live_audio import LiveFormat
from app.core.live_events import TurnDetection
from app.core.service import SpeechService
from app.core.types import Segment, Transcript, TranscriptionRequest


class UploadRecognizer:
    """`async with` it, `feed` the body's chunks as they come, then await `result()` (the adapter
    races that against the client's disconnect; leaving the block cancels every decode)."""

    def __init__(
        self,
        service: SpeechService,
        template: TranscriptionRequest,
        audio_format: LiveFormat,
        *,
        max_seconds: float,
        max_backlog_seconds: float,
        wait_seconds: float,
        silence_ms: int,
    ) -> None:
        self.template = template
        self.max_seconds = max_seconds
        # Past the backlog the body is read no faster (TCP slows the client) for up to `wait_seconds`,
        # the request's deadline, not the few seconds a live client gets: an upload can wait.
        # Two finals at once: an upload runs ahead of real time, where one at a time made the answer
        # come 7.1 s after the last byte of a 30 s real-time upload instead of 1.4-2.0 s.
        # Utterances here run to long pauses, so only the short ones need the audio before them;
        # the others keep the previous text as their prompt (measured: 0.85% WER against 1.70%
        # with the lead for every utterance).
        config = LiveConfig(
            max_backlog_seconds=max_backlog_seconds,
            backlog_wait_seconds=wait_seconds,
            parallel_finals=2,
            short_utterance_seconds=3.0,
        )
        self.session = LiveSession(
            service,
            template,
            config,
            TurnDetection(silence_duration_ms=silence_ms),
            audio_format=audio_format,
            spare=lambda: False,
        )

    async def __aenter__(self) -> UploadRecognizer:
        await self.session.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.session.__aexit__(kind, exc, tb)

    async def feed(self, chunk: bytes) -> None:
        """Waits while the decoders are the backlog behind: the body is then read no faster."""
        await self.session.feed(chunk)
        if self.session.seconds_received > self.max_seconds:
            raise AudioTooLong(f"audio is longer than the limit of {self.max_seconds:g} seconds")

    async def result(self) -> Transcript:
        """The body has ended: the last utterance's final, then every final as one transcript."""
        await self.session.finish()
        finals: list[Transcript] = []
        while not self.session.events.empty():
            event = self.session.events.get_nowait()
            if isinstance(event, Failed):
                raise event.error
            if isinstance(event, Final):
                finals.append(event.transcript)
        return _joined(finals, self.session.seconds_received, self.template)


def _joined(finals: list[Transcript], seconds: float, template: TranscriptionRequest) -> Transcript:
    """Finals' segments are in stream time already; the first utterance names the language."""
    segments: tuple[Segment, ...] = tuple(segment for final in finals for segment in final.segments)
    first = finals[0] if finals else None
    return Transcript(
        segments=segments,
        language=first.language if first else (template.language or ""),
        language_probability=first.language_probability if first else 0.0,
        duration=seconds,
        model=first.model if first else template.model,
        task=template.task,
        processing_seconds=sum(final.processing_seconds for final in finals),
    )

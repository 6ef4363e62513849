"""Core live events -> each dialect's server events.

Deltas: OpenAI clients append `delta`s, so a delta only ever extends what was sent for the item;
when a newer interim text revises earlier words, no delta is sent until it extends the sent text
again, and `completed` carries the final text whole. NIM clients show each interim hypothesis as
it is, so they get the whole interim text. NIM's last `completed` (after input_audio_buffer.done)
has `is_last_result: true` and the whole session's transcript.
"""

from __future__ import annotations

from typing import Any

from app.core import errors
from app.core.live import (
    Cleared,
    Committed,
    Done,
    Event,
    Failed,
    Final,
    Partial,
    SpeechStarted,
    SpeechStopped,
)
from app.core.types import Transcript
from app.protocols.realtime.config import Dialect, new_id


def error_event(error: errors.SttError, client_event: str | None = None) -> dict[str, Any]:
    kind = "server_error" if isinstance(error, errors.Internal | errors.Unavailable) else "invalid_request_error"
    code = {
        "not_found": "model_not_found",
        "unauthenticated": "invalid_api_key",
        "overloaded": "rate_limit_exceeded",
        "rate_limited": "rate_limit_exceeded",
    }.get(error.kind, error.kind)
    body = {"type": kind, "code": code, "message": error.message, "param": error.param, "event_id": client_event}
    return {"type": "error", "event_id": new_id("event"), "error": body}


class EventRenderer:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._ids: dict[int, str] = {}
        self._previous: str | None = None
        self._sent: dict[int, str] = {}
        self._finals: list[Transcript] = []

    def item_id(self, item: int) -> str:
        if item not in self._ids:
            self._ids[item] = new_id("item")
        return self._ids[item]

    def render(self, event: Event) -> list[dict[str, Any]]:
        if isinstance(event, SpeechStarted):
            return [
                self._event(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=event.audio_start_ms,
                    item_id=self.item_id(event.item),
                )
            ]
        if isinstance(event, SpeechStopped):
            return [
                self._event(
                    "input_audio_buffer.speech_stopped",
                    audio_end_ms=event.audio_end_ms,
                    item_id=self.item_id(event.item),
                )
            ]
        if isinstance(event, Committed):
            return self._committed(event)
        if isinstance(event, Partial):
            return self._partial(event)
        if isinstance(event, Final):
            return [self._completed(event)]
        if isinstance(event, Failed):
            failure = error_event(event.error)["error"]
            failure.pop("event_id")
            return [
                self._event(
                    "conversation.item.input_audio_transcription.failed",
                    item_id=self.item_id(event.item),
                    content_index=0,
                    error=failure,
                )
            ]
        if isinstance(event, Cleared):
            return [self._event("input_audio_buffer.cleared")]
        if isinstance(event, Done):
            return self._done()
        raise TypeError(f"no rendering for {event!r}")

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "event_id": new_id("event"), **fields}

    def _committed(self, event: Committed) -> list[dict[str, Any]]:
        item_id, previous = self.item_id(event.item), self._previous
        self._previous = item_id
        if self.dialect is Dialect.NIM:
            return []  # a NIM client commits every chunk; utterances are the server's to find
        out = [self._event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)]
        item = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        if self.dialect is Dialect.BETA:
            out.append(
                self._event(
                    "conversation.item.created", previous_item_id=previous, item={"object": "realtime.item", **item}
                )
            )
        else:
            out.append(self._event("conversation.item.added", previous_item_id=previous, item=item))
            out.append(self._event("conversation.item.done", previous_item_id=previous, item=item))
        return out

    def _partial(self, event: Partial) -> list[dict[str, Any]]:
        item_id = self.item_id(event.item)
        if self.dialect is Dialect.NIM:
            return [
                self._event(
                    "conversation.item.input_audio_transcription.delta",
                    item_id=item_id,
                    content_index=0,
                    delta=event.text,
                )
            ]
        sent = self._sent.get(event.item, "")
        if not event.text.startswith(sent) or len(event.text) == len(sent):
            return []
        self._sent[event.item] = event.text
        delta = event.text[len(sent) :]
        return [
            self._event(
                "conversation.item.input_audio_transcription.delta", item_id=item_id, content_index=0, delta=delta
            )
        ]

    def _completed(self, event: Final, *, last: bool = False) -> dict[str, Any]:
        self._sent.pop(event.item, None)
        self._finals.append(event.transcript)
        fields: dict[str, Any] = {
            "item_id": self.item_id(event.item),
            "content_index": 0,
            "transcript": event.transcript.text,
        }
        if self.dialect is Dialect.NIM:
            fields["is_last_result"] = last
            fields["words_info"] = {"words": _words(event.transcript)}
        else:
            fields["usage"] = {"type": "duration", "seconds": round(event.audio_seconds, 3)}
        return self._event("conversation.item.input_audio_transcription.completed", **fields)

    def _done(self) -> list[dict[str, Any]]:
        if self.dialect is not Dialect.NIM:
            return []
        text = " ".join(t.text for t in self._finals if t.text)
        words = [w for t in self._finals for w in _words(t)]
        fields = {"item_id": new_id("item"), "content_index": 0, "transcript": text, "is_last_result": True}
        return [
            self._event("conversation.item.input_audio_transcription.completed", **fields, words_info={"words": words})
        ]


def _words(transcript: Transcript) -> list[dict[str, Any]]:
    return [
        {
            "word": w.text.strip(),
            "start_time": round(w.start * 1000),
            "end_time": round(w.end * 1000),
            "confidence": round(w.probability, 4),
            "speaker_tag": 0,
        }
        for w in transcript.words
    ]

"""StreamingRecognize without a transport: a StreamingRecognitionConfig (proto3 JSON) and the audio
chunks in, StreamingRecognizeResponse dicts out, over the core live session.

- Utterances end where the server VAD hears a pause; each one's final is one `isFinal` result with
  `resultEndTime` (stream time), n-best, words and `languageCode`.
- `interimResults`: partials, as Google sends them: the words the previous partial already had as
  one result of stability 0.9, the rest as a second of stability 0.01 (concatenated: the whole text).
- `singleUtterance`: END_OF_SINGLE_UTTERANCE when the first utterance's speech stops; the audio
  sent after it is read and dropped, its final follows, then the stream ends.
- `enableVoiceActivityEvents`: SPEECH_ACTIVITY_BEGIN / END.
- Google's per-stream limits (ASR_GOOGLE_STREAM_MAX_SECONDS of audio, ASR_GOOGLE_STREAM_IDLE_SECONDS
  without any) end the stream with OUT_OF_RANGE, as Google's do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from app.core.errors import InvalidArgument
from app.core.live import Done, Failed, Final, LiveSession, Partial, SpeechStarted, SpeechStopped
from app.core.live_audio import LiveFormat
from app.core.live_events import Event, TurnDetection
from app.core.live_feed import FeedLimits, events, feed
from app.core.types import RawEncoding
from app.protocols.google.config import GoogleConfig
from app.protocols.google.render import duration, utterance_result
from app.protocols.google.speech import GoogleSpeech, core_request
from app.state import live_config, live_slot

STREAMING_FIELDS = {"config", "singleUtterance", "interimResults", "enableVoiceActivityEvents"}
LIVE_RAW = {"LINEAR16": RawEncoding.LINEAR16, "MULAW": RawEncoding.MULAW, "ALAW": RawEncoding.ALAW}
STABLE, UNSTABLE = 0.9, 0.01


def live_format(config: GoogleConfig) -> LiveFormat:
    """The live session's input: headerless PCM16 / mu-law / A-law, Ogg or WebM Opus, or a WAV."""
    if config.encoding in ("OGG_OPUS", "WEBM_OPUS"):
        return LiveFormat(container="ogg" if config.encoding == "OGG_OPUS" else "webm")
    if config.encoding not in ("ENCODING_UNSPECIFIED", *LIVE_RAW):
        raise InvalidArgument(
            f"Invalid recognition 'config.encoding': {config.encoding} is not supported for streaming; send "
            "LINEAR16, MULAW, ALAW, OGG_OPUS or WEBM_OPUS",
            param="config.encoding",
        )
    if (config.channels or 1) > 1:
        raise InvalidArgument(
            "Invalid recognition 'config.audioChannelCount': streaming audio must be mono",
            param="config.audioChannelCount",
        )
    if config.sample_rate and config.encoding in LIVE_RAW:
        return LiveFormat(LIVE_RAW[config.encoding], config.sample_rate)
    if config.encoding in ("ENCODING_UNSPECIFIED", "LINEAR16"):
        return LiveFormat(wav=True)  # the rate comes from the WAV header the first chunk starts with
    raise InvalidArgument(
        f"Invalid recognition 'config.sampleRateHertz': required for {config.encoding} audio",
        param="config.sampleRateHertz",
    )


class GoogleStream:
    def __init__(self, speech: GoogleSpeech, streaming_config: dict[str, Any]) -> None:
        for key in streaming_config:
            if key not in STREAMING_FIELDS:
                raise InvalidArgument(
                    f"Invalid streaming_config.{key}: not supported by this server", param=f"streamingConfig.{key}"
                )
        self.speech = speech
        self.config = speech.config(streaming_config.get("config") or {}, streaming=True)
        self.single = bool(streaming_config.get("singleUtterance"))
        self.interim = bool(streaming_config.get("interimResults"))
        self.activity = bool(streaming_config.get("enableVoiceActivityEvents"))
        self.format = live_format(self.config)
        self._heard = ""  # the previous partial's text
        self._single_ended = asyncio.Event()

    async def responses(self, audio: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
        settings = self.speech.settings
        async with live_slot(self.speech.state) as service:
            template = service.prepare(core_request(self.config, None))
            config = live_config(settings)
            live = LiveSession(
                service, template, config, TurnDetection(), audio_format=self.format,
                spare=lambda: service.pool.idle, partials=self.interim,
            )  # fmt: skip
            limits = FeedLimits(
                idle_seconds=settings.google_stream_idle_seconds,
                max_seconds=settings.google_stream_max_seconds,
                idle_message="Audio Timeout Error: Long duration elapsed without audio. "
                "Audio should be sent close to real time.",
                long_message=f"Exceeded maximum allowed stream duration of {settings.google_stream_max_seconds:g} "
                "seconds.",
            )
            async with live:
                stream = events(live, feed(live, audio, limits, self._single_ended))
                async with contextlib.aclosing(stream):
                    async for event in stream:
                        for answer in self._answers(event, live):
                            yield answer
                        if isinstance(event, Done) or (isinstance(event, Final) and self._single_ended.is_set()):
                            return

    def _answers(self, event: Event, live: LiveSession) -> list[dict[str, Any]]:
        if isinstance(event, Failed):
            raise event.error
        if isinstance(event, SpeechStarted) and self.activity:
            return [_event("SPEECH_ACTIVITY_BEGIN", event.audio_start_ms)]
        if isinstance(event, SpeechStopped):
            answers = [_event("SPEECH_ACTIVITY_END", event.audio_end_ms)] if self.activity else []
            if self.single and not self._single_ended.is_set():
                self._single_ended.set()
                answers.append(_event("END_OF_SINGLE_UTTERANCE", event.audio_end_ms))
            return answers
        if isinstance(event, Partial) and self.interim and event.text.strip():
            return [{"results": self._interim(event.text, live.seconds_received)}]
        if isinstance(event, Final):
            self._heard = ""
            if not event.transcript.text.strip():
                return []
            return [{"results": [utterance_result(event.transcript, self.config)]}]
        return []

    def _interim(self, text: str, seconds: float) -> list[dict[str, Any]]:
        words, before = text.split(), self._heard.split()
        kept = 0
        while kept < min(len(words), len(before)) and words[kept] == before[kept]:
            kept += 1
        self._heard = text
        language = self.config.language_tags[0].lower() if self.config.language_tags else ""
        parts = [(" ".join(words[:kept]), STABLE), ((" " if kept else "") + " ".join(words[kept:]), UNSTABLE)]
        return [
            {
                "alternatives": [{"transcript": part}],
                "stability": stability,
                "resultEndTime": duration(seconds),
                "languageCode": language,
            }
            for part, stability in parts
            if part.strip()
        ]


def _event(kind: str, ms: int) -> dict[str, Any]:
    return {"speechEventType": kind, "speechEventTime": duration(ms / 1000)}

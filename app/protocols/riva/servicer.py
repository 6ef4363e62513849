"""nvidia.riva.asr.RivaSpeechRecognition: Recognize, StreamingRecognize, GetRivaSpeechRecognitionConfig,
with the message types nvidia-riva-client ships (riva.client.proto)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from riva.client.proto import riva_asr_pb2

from app.core.errors import InvalidArgument, Unavailable
from app.core.live import Done, Failed, Final, LiveSession, Partial
from app.core.live_feed import FeedLimits, events, feed
from app.core.types import AudioInput
from app.grpc.calls import Calls, Context, Method, config_then_audio
from app.protocols.riva.config import RivaConfig, live_format, offline_format, parse_config
from app.protocols.riva.render import final_result, interim_result, recognize_response
from app.settings import Settings
from app.state import NOT_READY, live_config, live_slot, ready_service

SERVICE = "nvidia.riva.asr.RivaSpeechRecognition"


class RivaServicer:
    def __init__(self, state: Any) -> None:
        self.state = state

    @property
    def settings(self) -> Settings:
        settings: Settings = self.state.settings
        return settings

    def _config(self, message: riva_asr_pb2.RecognitionConfig) -> RivaConfig:
        return parse_config(message, max_alternatives=self.settings.max_alternatives)

    async def recognize(self, request: riva_asr_pb2.RecognizeRequest, context: Context) -> Any:
        config = self._config(request.config)
        if not request.audio:
            raise InvalidArgument("Invalid audio: the request carries no audio bytes", param="audio")
        service = ready_service(self.state)
        audio = AudioInput(data=request.audio, raw=offline_format(config, request.audio[:4096]))
        transcript = await service.transcribe(replace(config.request, audio=audio))
        response = recognize_response(
            transcript, config.request.alternatives, config.language_tag, config.request.word_timestamps
        )
        response.id.CopyFrom(request.id)
        return response

    async def streaming(self, requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        opened = await config_then_audio(requests)
        if opened is None:
            return
        first, audio = opened
        streaming = first.streaming_config
        config = self._config(streaming.config)
        audio_format = live_format(config)

        settings = self.settings
        limits = FeedLimits(
            idle_seconds=settings.realtime_idle_seconds,
            max_seconds=settings.realtime_session_seconds,
            idle_message=f"no audio for {settings.realtime_idle_seconds:g} s",
            long_message=f"the stream passed {settings.realtime_session_seconds:g} s of audio",
        )
        request = config.request
        async with live_slot(self.state) as service:
            template = service.prepare(request)
            session_config = live_config(settings)
            live = LiveSession(
                service, template, session_config, config.turn, audio_format=audio_format,
                spare=lambda: service.pool.idle, partials=streaming.interim_results,
            )  # fmt: skip
            async with live:
                stream = events(live, feed(live, audio, limits))
                async with contextlib.aclosing(stream):
                    async for event in stream:
                        if isinstance(event, Failed):
                            raise event.error
                        if isinstance(event, Done):
                            return
                        processed = live.seconds_received
                        if isinstance(event, Partial) and streaming.interim_results and event.text.strip():
                            result = interim_result(event.text, config.language_tag, processed)
                        elif isinstance(event, Final) and event.transcript.text.strip():
                            result = final_result(
                                event.transcript,
                                request.alternatives,
                                config.language_tag,
                                request.word_timestamps,
                                processed,
                            )
                        else:
                            continue
                        yield riva_asr_pb2.StreamingRecognizeResponse(results=[result], id=first.id)

    async def get_config(self, request: riva_asr_pb2.RivaSpeechRecognitionConfigRequest, context: Context) -> Any:
        """The registry's models, with the parameters a Riva client reads to choose one."""
        registry = self.state.registry
        if registry is None:
            raise Unavailable(NOT_READY)
        response = riva_asr_pb2.RivaSpeechRecognitionConfigResponse()
        for name, spec in registry.specs.items():
            if request.model_name and request.model_name != name:
                continue
            parameters = {
                "type": "online,offline",
                "streaming": "true",
                "offline": "true",
                "language_code": "multi" if spec.multilingual else "en-US",
                "engine": "faster-whisper",
                "default": str(name == registry.default).lower(),
                "max_alternatives": str(self.settings.max_alternatives),
            }
            response.model_config.add(model_name=name, parameters=parameters)
        return response

    def methods(self) -> list[Method]:
        return [
            Method("Recognize", self.recognize, riva_asr_pb2.RecognizeRequest),
            Method("StreamingRecognize", self.streaming, riva_asr_pb2.StreamingRecognizeRequest, streaming=True),
            Method("GetRivaSpeechRecognitionConfig", self.get_config, riva_asr_pb2.RivaSpeechRecognitionConfigRequest),
        ]


def handlers(calls: Calls, state: Any) -> list[Any]:
    return [calls.service(SERVICE, RivaServicer(state).methods())]

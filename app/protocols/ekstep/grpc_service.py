"""ekstep.speech_recognition.SpeechRecognizer over gRPC: recognize, punctuate, recognize_audio.

The same methods as the REST front (app/protocols/ekstep/speech.py). Clients of the seed send the
language as metadata too (`language: hi`); a stream's messages name theirs, the metadata is the
default. Failures end the call with the seed's message as the status details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from app.grpc.calls import Calls, Context, Method
from app.protocols.ekstep.messages import (
    SERVICE,
    Message,
    PunctuateRequest,
    PunctuateResponse,
    SpeechRecognitionRequest,
    SpeechRecognitionResult,
)
from app.protocols.ekstep.speech import OpenSpeech
from app.protocols.ekstep.streaming import AudioStream


def _metadata(context: Context) -> dict[str, str]:
    return {k.lower(): v for k, v in context.invocation_metadata() or () if isinstance(v, str)}


class SpeechRecognizerServicer:
    def __init__(self, state: Any) -> None:
        self.speech = OpenSpeech(state)

    async def recognize(self, request: Any, context: Context) -> Any:
        outputs = await self.speech.recognize(request, [])
        return SpeechRecognitionResult(status="SUCCESS", output=[{"source": text} for text in outputs])

    async def punctuate(self, request: Any, context: Context) -> Any:
        text = await self.speech.punctuate(request.text, request.language, request.enabledItn)
        return PunctuateResponse(text=text, language=request.language)

    async def recognize_audio(self, requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        metadata = _metadata(context)
        partials = metadata.get("partials", "").lower() in ("1", "true", "yes")
        stream = AudioStream(self.speech, partials=partials, language=metadata.get("language"))
        async for response in stream.responses(requests):
            yield response

    def methods(self) -> list[Method]:
        return [
            Method("recognize_audio", self.recognize_audio, Message, streaming=True),
            Method("punctuate", self.punctuate, PunctuateRequest),
            Method("recognize", self.recognize, SpeechRecognitionRequest),
        ]


def handlers(calls: Calls, state: Any) -> list[Any]:
    return [calls.service(SERVICE, SpeechRecognizerServicer(state).methods())]

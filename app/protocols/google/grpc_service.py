"""google.cloud.speech.v1 (and v1p1beta1) Speech and google.longrunning.Operations over gRPC.

The messages are the ones google-cloud-speech and googleapis-common-protos ship; each request is
turned into proto3 JSON and handed to the same methods the REST router calls
(app/protocols/google/speech.py, streaming.py), and their JSON answers are parsed back into the
response messages: REST and gRPC cannot drift apart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from google.cloud.speech_v1.types import cloud_speech as v1
from google.cloud.speech_v1p1beta1.types import cloud_speech as v1p1beta1
from google.longrunning import operations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2, json_format
from google.protobuf.message import Message

from app.grpc.calls import Calls, Context, Method, config_then_audio
from app.protocols.google.speech import GoogleSpeech
from app.protocols.google.streaming import GoogleStream

VERSIONS: dict[str, Any] = {"v1": v1, "v1p1beta1": v1p1beta1}
OPERATIONS = "google.longrunning.Operations"
WAIT_DEFAULT_SECONDS = 60.0


def speech_service(version: str) -> str:
    return f"google.cloud.speech.{version}.Speech"


def _pb(proto_plus: Any) -> type[Message]:
    message: type[Message] = proto_plus.pb()
    return message


def _dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _parsed(answer: dict[str, Any], message: type[Message]) -> Message:
    return json_format.ParseDict(answer, message())


class SpeechServicer:
    def __init__(self, state: Any, version: str) -> None:
        self.speech = GoogleSpeech(state, version)
        self.types = VERSIONS[version]

    def _body(self, request: Any) -> dict[str, Any]:
        audio: dict[str, Any] = {}
        source = request.audio.WhichOneof("audio_source")
        if source == "content":
            audio["content"] = request.audio.content
        elif source == "uri":
            audio["uri"] = request.audio.uri
        body = {"config": _dict(request.config), "audio": audio}
        if "output_config" in request.DESCRIPTOR.fields_by_name and request.HasField("output_config"):
            body["outputConfig"] = _dict(request.output_config)
        return body

    async def recognize(self, request: Any, context: Context) -> Message:
        answer = await self.speech.recognize(await asyncio.to_thread(self._body, request))
        return await asyncio.to_thread(_parsed, answer, _pb(self.types.RecognizeResponse))

    async def long_running(self, request: Any, context: Context) -> Message:
        answer = await self.speech.long_running(await asyncio.to_thread(self._body, request))
        return _parsed(answer, operations_pb2.Operation)

    async def streaming(self, requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Message]:
        opened = await config_then_audio(requests)
        if opened is None:
            return
        first, audio = opened
        stream = GoogleStream(self.speech, _dict(first.streaming_config))
        response = _pb(self.types.StreamingRecognizeResponse)
        async for answer in stream.responses(audio):
            yield _parsed(answer, response)

    def methods(self) -> list[Method]:
        t = self.types
        return [
            Method("Recognize", self.recognize, _pb(t.RecognizeRequest)),
            Method("LongRunningRecognize", self.long_running, _pb(t.LongRunningRecognizeRequest)),
            Method("StreamingRecognize", self.streaming, _pb(t.StreamingRecognizeRequest), streaming=True),
        ]


class OperationsServicer:
    """Get, List, Cancel and Wait over the job store REST uses (Delete is not offered: done
    operations expire after ASR_JOB_RETENTION_SECONDS)."""

    def __init__(self, state: Any) -> None:
        self.speech = GoogleSpeech(state, "v1")

    async def get(self, request: operations_pb2.GetOperationRequest, context: Context) -> Message:
        return _parsed(await self.speech.get_operation(request.name), operations_pb2.Operation)

    async def listing(self, request: operations_pb2.ListOperationsRequest, context: Context) -> Message:
        answer = await self.speech.list_operations(request.page_size or 50, request.page_token or None)
        return await asyncio.to_thread(_parsed, answer, operations_pb2.ListOperationsResponse)

    async def cancel(self, request: operations_pb2.CancelOperationRequest, context: Context) -> Message:
        await self.speech.cancel_operation(request.name)
        return empty_pb2.Empty()

    async def wait(self, request: operations_pb2.WaitOperationRequest, context: Context) -> Message:
        await self.speech.get_operation(request.name)  # NOT_FOUND first
        timeout = request.timeout.ToTimedelta().total_seconds() if request.HasField("timeout") else 0
        await self.speech.jobs.wait(request.name, timeout or WAIT_DEFAULT_SECONDS)
        return await self.get(operations_pb2.GetOperationRequest(name=request.name), context)

    def methods(self) -> list[Method]:
        return [
            Method("GetOperation", self.get, operations_pb2.GetOperationRequest),
            Method("ListOperations", self.listing, operations_pb2.ListOperationsRequest),
            Method("CancelOperation", self.cancel, operations_pb2.CancelOperationRequest),
            Method("WaitOperation", self.wait, operations_pb2.WaitOperationRequest),
        ]


def handlers(calls: Calls, state: Any) -> list[Any]:
    services = [calls.service(speech_service(v), SpeechServicer(state, v).methods()) for v in VERSIONS]
    return [*services, calls.service(OPERATIONS, OperationsServicer(state).methods())]


def describe_services() -> list[str]:
    """Add the Speech services to the descriptor pool (google-cloud-speech ships their messages
    but, as a client, not the services), so reflection can describe them; their full names."""
    pool = descriptor_pool.Default()
    names = []
    for version, module in VERSIONS.items():
        name = speech_service(version)
        names.append(name)
        try:
            pool.FindServiceByName(name)
            continue
        except KeyError:
            pass
        messages = _pb(module.RecognizeRequest).DESCRIPTOR.file
        package = f"google.cloud.speech.{version}"
        service = descriptor_pb2.ServiceDescriptorProto(name="Speech")
        for method, request, response, streaming in (
            ("Recognize", "RecognizeRequest", f"{package}.RecognizeResponse", False),
            ("LongRunningRecognize", "LongRunningRecognizeRequest", "google.longrunning.Operation", False),
            ("StreamingRecognize", "StreamingRecognizeRequest", f"{package}.StreamingRecognizeResponse", True),
        ):
            service.method.add(
                name=method,
                input_type=f".{package}.{request}",
                output_type=f".{response}",
                client_streaming=streaming,
                server_streaming=streaming,
            )
        file = descriptor_pb2.FileDescriptorProto(
            name=f"asr_server/google_speech_{version}_service.proto",
            package=package,
            dependency=[messages.name, operations_pb2.DESCRIPTOR.name],
            service=[service],
            syntax="proto3",
        )
        pool.Add(file)
    return [*names, OPERATIONS]

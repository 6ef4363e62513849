"""The Open API's messages, compiled from proto/ekstep/speech_recognition.proto when first imported.

protoc (the one grpcio-tools ships) writes the file's descriptor set; its messages join the default
descriptor pool, so json_format and server reflection know them like any generated module's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).parent / "proto"
PROTO_FILE = "ekstep/speech_recognition.proto"
PACKAGE = "ekstep.speech_recognition"
SERVICE = f"{PACKAGE}.SpeechRecognizer"


def _compiled() -> descriptor_pb2.FileDescriptorProto:
    fd, out = tempfile.mkstemp(suffix=".pb")
    os.close(fd)
    try:
        code = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"--descriptor_set_out={out}", PROTO_FILE])
        if code != 0:
            raise RuntimeError(f"protoc could not compile {PROTO_ROOT / PROTO_FILE} (exit {code})")
        files = descriptor_pb2.FileDescriptorSet.FromString(Path(out).read_bytes())
    finally:
        os.unlink(out)
    return files.file[0]


def _load() -> dict[str, Any]:
    pool = descriptor_pool.Default()
    try:
        file = pool.FindFileByName(PROTO_FILE)
    except KeyError:
        pool.Add(_compiled())
        file = pool.FindFileByName(PROTO_FILE)
    return {name: message_factory.GetMessageClass(d) for name, d in file.message_types_by_name.items()}


_CLASSES = _load()
Message: Any = _CLASSES["Message"]
Response: Any = _CLASSES["Response"]
PunctuateRequest: Any = _CLASSES["PunctuateRequest"]
PunctuateResponse: Any = _CLASSES["PunctuateResponse"]
SpeechRecognitionRequest: Any = _CLASSES["SpeechRecognitionRequest"]
SpeechRecognitionResult: Any = _CLASSES["SpeechRecognitionResult"]
LANGUAGE_CODES: tuple[str, ...] = tuple(
    v.name for v in _CLASSES["Language"].DESCRIPTOR.enum_types_by_name["LanguageCode"].values
)

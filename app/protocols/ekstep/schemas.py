"""The Open API's JSON bodies as pydantic models: the API reference's schemas, and the punctuate
body's checks (strict types: a string "false" is refused, not read as true). recognize bodies are
parsed into the proto's message itself (json_format), as the seed's transcoder does."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


class Language(BaseModel):
    sourceLanguage: str | None = Field(default=None, description="Bound from the path when absent.")
    name: str | None = None


class TranscriptionFormat(BaseModel):
    value: Literal["transcript", "srt", "alternatives"] = "transcript"


class RecognitionConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    language: Language | None = None
    transcriptionFormat: TranscriptionFormat | None = None
    audioFormat: Literal["wav", "pcm", "mp3", "flac"] = "wav"
    channel: Literal["mono", "stereo"] = "mono"
    samplingRate: int | None = Field(default=None, description="Rate of headerless audioContent (16000).")
    punctuation: bool = False
    enableInverseTextNormalization: bool = False
    profanityFilter: bool = False
    postProcessors: list[Literal["itn", "numbers_only", "punctuations"]] = []


class RecognitionAudio(BaseModel):
    audioUri: str | None = None
    audioContent: str | None = Field(default=None, description="base64: a WAV/MP3/FLAC file, or s16le PCM.")


class RecognizeBody(BaseModel):
    config: RecognitionConfig = RecognitionConfig()
    audio: list[RecognitionAudio]


class PunctuateBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: StrictStr = ""
    language: StrictStr | None = Field(default=None, description="Bound from the path.")
    enabledItn: StrictBool | None = None
    enableITN: StrictBool | None = Field(default=None, description="A proxy's spelling of enabledItn.")

    @property
    def itn(self) -> bool:
        return bool(self.enabledItn if self.enabledItn is not None else self.enableITN)

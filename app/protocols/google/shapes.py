"""The nested parts of RecognitionConfig as pydantic models: a value of the wrong type (a string
where an object belongs, an object where a list does) is a 400 naming its place, never a 500. The
flat fields keep their hand-written checks in config.py (enum names or numbers, ranges)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


class _Open(BaseModel):
    """Fields keep the wire's camelCase names; unknown ones are checked by config.py."""

    model_config = ConfigDict(extra="allow")


class SpeechContext(_Open):
    phrases: list[StrictStr] = []
    boost: float | None = None


class Phrase(_Open):
    value: StrictStr = ""
    boost: float | None = None


class PhraseSet(_Open):
    phrases: list[Phrase] = []


class Adaptation(_Open):
    phraseSets: list[PhraseSet] = []
    phraseSetReferences: list[Any] = []
    customClasses: list[Any] = []
    abnfGrammar: dict[str, Any] | None = None


class Diarization(_Open):
    enableSpeakerDiarization: StrictBool = False


class Normalization(_Open):
    entries: list[dict[str, Any]] = []


class ConfigShapes(_Open):
    speechContexts: list[SpeechContext] = []
    adaptation: Adaptation | None = None
    diarizationConfig: Diarization | None = None
    transcriptNormalization: Normalization | None = None
    metadata: dict[str, Any] | None = None
    alternativeLanguageCodes: list[StrictStr] = []


def _flat(kind: str, text: str, **schema: Any) -> Any:
    """A flat field: described for the API reference, checked by config.py (with its own messages)."""

    def describe(field_schema: dict[str, Any]) -> None:
        field_schema.pop("default", None)  # unset means "not given", not a null value
        field_schema.update(type=kind, **schema)

    return Field(default=None, description=text, json_schema_extra=describe)


class RecognitionConfig(ConfigShapes):
    """Google's RecognitionConfig with Mod9's extensions; snake_case names are accepted too."""

    encoding: Any = _flat(
        "string",
        "Audio encoding, by name or number. Unset: read from a WAV or FLAC header.",
        enum=["LINEAR16", "FLAC", "MULAW", "ALAW", "OGG_OPUS", "WEBM_OPUS", "MP3", "LINEAR24", "LINEAR32", "FLOAT32"],
    )
    sampleRateHertz: Any = _flat("integer", "Required for headerless audio; a header must agree.", minimum=8000)
    audioChannelCount: Any = _flat("integer", "Channels of headerless audio.", minimum=1, maximum=8)
    enableSeparateRecognitionPerChannel: Any = _flat("boolean", "Recognise each channel apart (results tagged).")
    languageCode: Any = _flat("string", "BCP-47 tag, e.g. en-US; unset or several (with alternatives): detected.")
    maxAlternatives: Any = _flat("integer", "N-best alternatives per result.", minimum=0)
    profanityFilter: Any = _flat("boolean", "Mask profanities.")
    enableWordTimeOffsets: Any = _flat("boolean", "Word start and end times.")
    enableWordConfidence: Any = _flat("boolean", "Word confidences.")
    enableAutomaticPunctuation: Any = _flat("boolean", "Keep Whisper's punctuation (off: stripped).")
    model: Any = _flat("string", "Google model name (mapped to a local one) or a local model name.")
    useEnhanced: Any = _flat("boolean", "Accepted; every model here is the same one.")
    enableSpokenPunctuation: Any = _flat("boolean", "Refused when true (Whisper cannot honour it).")
    enableSpokenEmojis: Any = _flat("boolean", "Refused when true (Whisper cannot honour it).")
    asrModel: Any = _flat("string", "Mod9: a local model by name.")
    speed: Any = _flat("integer", "Mod9: 1 (slow, accurate) to 9 (fast): the beam size is 10 - speed.", minimum=1)
    intervalsJson: Any = _flat("string", "Mod9: JSON [[start, end], ...] in seconds; only those parts are decoded.")
    maxPhraseAlternatives: Any = _flat("integer", "Mod9: refused (not supported by Whisper).")
    maxWordAlternatives: Any = _flat("integer", "Mod9: refused (not supported by Whisper).")
    optionsJson: Any = _flat("string", "Mod9: refused (engine options are not supported).")
    latency: Any = _flat("number", "Mod9: only meaningful for streaming; refused here.")


class RecognitionAudio(BaseModel):
    content: str | None = Field(default=None, description="The audio file's bytes, base64.")
    uri: str | None = Field(default=None, description="file://, http(s)://, s3:// or gs:// (each one may be off).")


class RecognizeRequest(BaseModel):
    """speech:recognize and speech:longrunningrecognize."""

    config: RecognitionConfig
    audio: RecognitionAudio
